"""Carry a ticket's soft delete and restore to its attachments in file-service, through the outbox.

The receivers run inside the deleting transaction and only enqueue (one row each): the ticket and its
task are committed together or not at all, and a bulk delete of many tickets calls no one while it
holds the database. Each deletion gets the next number of its ticket (``Ticket.deletions``); a restore
undoes the deletion with the ticket's current number.
"""

from datetime import datetime
from typing import Any

from django.db.models import F

from shared_core.signals import post_restore, post_soft_delete
from ticket_service.models import Ticket
from ticket_service.tasks import delete_attachments, restore_attachments


def on_soft_delete(sender: type[Ticket], instance: Ticket, deleted_at: datetime, **kwargs: Any) -> None:
    tickets = Ticket.all_objects.filter(pk=instance.pk)
    tickets.update(deletions=F("deletions") + 1)
    delete_attachments.enqueue(str(instance.pk), tickets.values_list("deletions", flat=True).get())


def on_restore(sender: type[Ticket], instance: Ticket, deleted_at: datetime, **kwargs: Any) -> None:
    restore_attachments.enqueue(str(instance.pk), instance.deletions)


post_soft_delete.connect(on_soft_delete, sender=Ticket, dispatch_uid="ticket-attachments-delete")
post_restore.connect(on_restore, sender=Ticket, dispatch_uid="ticket-attachments-restore")
