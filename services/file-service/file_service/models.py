"""Attachments of tickets. The bytes live in FILE_STORAGE_DIR, named by their sha256, and are never
removed by a soft delete."""

from django.db import models

from shared_core.models import BaseModel


class File(BaseModel):
    ticket_id = models.UUIDField(db_index=True)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.name
