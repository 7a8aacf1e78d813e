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
    # Which deletion of its ticket took the file (TicketDeletion.number); NULL when deleted on its own,
    # at the deleted_at stamp of file-service's own clock.
    ticket_deletion = models.PositiveIntegerField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name


class TicketDeletion(models.Model):
    """The newest deletion of a ticket that file-service was told of, and whether it was undone.

    Ticket-service numbers each deletion of a ticket (1, 2, ...). Its outbox may deliver "delete n" and
    "restore n" late, twice or out of order; comparing numbers, never clocks, makes the outcome the same.
    """

    ticket_id = models.UUIDField(primary_key=True)
    number = models.PositiveIntegerField(default=0)
    restored = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"deletion {self.number} of ticket {self.ticket_id}"
