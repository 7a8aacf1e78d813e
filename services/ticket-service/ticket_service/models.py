"""Tickets. A ticket's requester lives in user-service, its attachments in file-service."""

from django.db import models

from shared_core.models import BaseModel, IdempotentModel, live_unique


class Ticket(IdempotentModel, BaseModel):
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

    class Meta:
        constraints = [live_unique("idempotency_caller", "idempotency_key")]

    def __str__(self) -> str:
        return self.title

    @property
    def notified(self) -> bool:
        """Whether the requester's notification has been delivered."""
        return self.notification == self.Notification.DELIVERED
