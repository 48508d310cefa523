"""Upload handling (filled in by the registry work)."""

from django.core.files.uploadhandler import TemporaryFileUploadHandler


class HashingUploadHandler(TemporaryFileUploadHandler):
    pass
