from django.db import models


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class Source(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    WORKER = "worker", "Worker"
    CLI = "cli", "CLI"
