"""The ticket deletions file-service is told of, in the order their numbers give, whatever order they arrive in.

ticket-service numbers each deletion and restore of a ticket (1, 2, ...) and its outbox delivers them at
least once, in any order. A ticket's ``TicketDeletion`` record holds the newest number seen and whether
that deletion was undone; each file a deletion took holds the deletion's number (``ticket_deletion``).
Both functions run in one transaction with the record locked, so two deliveries of one ticket never
interleave, and both answer the deletion's state.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from file_service.models import File, TicketDeletion

__all__ = ["delete", "restore", "ticket_is_deleted"]


def delete(ticket_id: UUID, number: int) -> dict[str, Any]:
    """Deletion ``number`` of the ticket takes its live files, and those an older deletion of it still holds.

    A repeat, a deletion older than one already seen, or one whose restore came first, changes nothing.
    """
    with transaction.atomic():
        record = _record(ticket_id)
        if number > record.number:
            record.number, record.restored = number, False
            record.save(update_fields=["number", "restored", "updated_at"])
            stamp = File.objects.filter(ticket_id=ticket_id).soft_delete().deleted_at
            taken = File.all_objects.filter(ticket_id=ticket_id, is_deleted=True)
            if stamp is not None:
                taken.filter(deleted_at=stamp, ticket_deletion__isnull=True).update(ticket_deletion=number)
            taken.filter(ticket_deletion__lt=number).update(ticket_deletion=number)
        return _state(record, number)


def restore(ticket_id: UUID, number: int) -> dict[str, Any]:
    """Undo deletion ``number``: the files the ticket's deletions hold come back, not those deleted on their own.

    Restore ``n`` after deletion ``n`` means the ticket is live, so every file that deletion ``n`` or an
    older one still holds comes back (an older deletion whose restore was overtaken, say D1, R2, R1, D2).
    A restore that arrives before its deletion marks it undone, so the deletion changes nothing when it
    comes; a restore of a superseded deletion changes nothing.
    """
    with transaction.atomic():
        record = _record(ticket_id)
        if number > record.number or (number == record.number and not record.restored):
            held = File.all_objects.filter(ticket_id=ticket_id, is_deleted=True, ticket_deletion__lte=number)
            ids = list(held.values_list("pk", flat=True))
            File.all_objects.filter(pk__in=ids).restore()
            File.all_objects.filter(pk__in=ids).update(ticket_deletion=None)
            record.number, record.restored = number, True
            record.save(update_fields=["number", "restored", "updated_at"])
        return _state(record, number)


def ticket_is_deleted(ticket_id: UUID) -> bool:
    """Whether the newest deletion of the ticket file-service was told of still holds (locks its record)."""
    record = _record(ticket_id)
    return record.number > 0 and not record.restored


def _record(ticket_id: UUID) -> TicketDeletion:
    """The ticket's deletion record, locked until the transaction ends (made on first use)."""
    TicketDeletion.objects.get_or_create(ticket_id=ticket_id)
    return TicketDeletion.objects.select_for_update().get(ticket_id=ticket_id)


def _state(record: TicketDeletion, number: int) -> dict[str, Any]:
    held = File.all_objects.filter(ticket_id=record.ticket_id, is_deleted=True, ticket_deletion=number).count()
    state = "superseded" if number < record.number else "restored" if record.restored else "deleted"
    return {"deletion": number, "state": state, "files": held}
