"""Base model fields shared by the domain apps."""

from django.db import models


class TimestampedModel(models.Model):
    """Created and updated times, set by the database layer."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
