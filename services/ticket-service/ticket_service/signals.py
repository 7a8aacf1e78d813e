"""Carry a ticket's soft delete and restore to its attachments in file-service.

The receivers run inside the deleting transaction: if file-service cannot be
reached, the error rolls the ticket's own change back, so the two services
never disagree. Both calls are idempotent, so they carry an Idempotency-Key
and may be retried.
"""

from datetime import datetime
from typing import Any

from shared_core.signals import post_restore, post_soft_delete
from ticket_service.models import Ticket
from ticket_service.upstreams import files


def _attachments(ticket: Ticket, action: str, payload: dict[str, Any], stamp: datetime) -> None:
    key = f"ticket-{ticket.id}-{action}-{stamp:%Y%m%dT%H%M%S%f}"
    files().post_json(f"/api/tickets/{ticket.id}/files/{action}/", payload, idempotency_key=key)


def delete_attachments(sender: type[Ticket], instance: Ticket, deleted_at: datetime, **kwargs: Any) -> None:
    _attachments(instance, "delete", {}, deleted_at)


def restore_attachments(sender: type[Ticket], instance: Ticket, deleted_at: datetime, **kwargs: Any) -> None:
    # Attachments were deleted by the same request, just after the ticket: restore those deleted since.
    _attachments(instance, "restore", {"since": deleted_at.isoformat()}, deleted_at)


post_soft_delete.connect(delete_attachments, sender=Ticket, dispatch_uid="ticket-attachments-delete")
post_restore.connect(restore_attachments, sender=Ticket, dispatch_uid="ticket-attachments-restore")
