"""Tickets. A ticket's requester lives in user-service, its attachments in file-service."""

from django.db import models

from shared_core.models import BaseModel, live_unique


class Ticket(BaseModel):
    class Notification(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    requester_id = models.UUIDField(db_index=True)
    # Set by the outbox task that delivers it (ticket_service.tasks), never by the request that creates the ticket.
    notification = models.CharField(max_length=16, choices=Notification.choices, default=Notification.PENDING)
    # How many times the ticket was deleted: deletion n is what file-service is told to take, and to give back.
    deletions = models.PositiveIntegerField(default=0, editable=False)
    # NULL, not "", for "no key": NULLs never collide in the live_unique constraint.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True, editable=False)  # noqa: DJ001
    # The sha256 of the first request's body: the same key with another body is refused (shared_core.api).
    idempotency_fingerprint = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001

    class Meta:
        constraints = [live_unique("idempotency_key")]

    def __str__(self) -> str:
        return self.title

    @property
    def notified(self) -> bool:
        """Whether the requester's notification has been delivered."""
        return self.notification == self.Notification.DELIVERED
