"""Notifications sent to users about tickets."""

from django.db import models

from shared_core.models import BaseModel, IdempotentModel, live_unique


class Notification(IdempotentModel, BaseModel):
    ticket_id = models.UUIDField(db_index=True)
    recipient_id = models.UUIDField()
    recipient_email = models.EmailField()
    message = models.TextField()

    class Meta:
        constraints = [live_unique("idempotency_caller", "idempotency_key")]

    def __str__(self) -> str:
        return f"{self.recipient_email}: {self.message[:40]}"
