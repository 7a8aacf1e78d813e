"""ticket-service's side effects on its neighbours: outbox tasks (shared_core.outbox), enqueued with the write.

Each runs at least once; the Idempotency-Key names the effect (this ticket's notification, deletion n of
this ticket), so a repeat stores nothing twice, and file-service orders deletions by their number, so
tasks that run late or out of order still leave the ticket's files as the ticket is.
"""

from django_tasks import TaskContext, task

from shared_core.clients import HTTPStatusError, upstream
from shared_core.outbox import is_transient
from ticket_service.models import Ticket


@task(takes_context=True, queue_name="notifications")
def notify_requester(context: TaskContext, ticket_id: str) -> None:
    """Ask communication-service to notify the ticket's requester, then mark the notification delivered."""
    ticket = Ticket.all_objects.get(pk=ticket_id)
    payload = {
        "ticket_id": ticket_id,
        "recipient_id": str(ticket.requester_id),
        "message": f"Ticket created: {ticket.title}",
    }
    try:
        upstream("communication-service").post_json(
            "/api/notifications/", payload, idempotency_key=f"ticket-{ticket_id}-created"
        )
    except HTTPStatusError as exc:
        if not is_transient(exc):  # the requester is gone, say: no attempt will deliver it
            Ticket.all_objects.filter(pk=ticket_id).update(notification=Ticket.Notification.FAILED)
        raise
    Ticket.all_objects.filter(pk=ticket_id).update(notification=Ticket.Notification.DELIVERED)


@task(queue_name="attachments")
def delete_attachments(ticket_id: str, deletion: int) -> None:
    """Have file-service soft-delete the ticket's live files as deletion ``deletion`` of the ticket."""
    key = f"ticket-{ticket_id}-deletion-{deletion}-delete"
    upstream("file-service").post_json(
        f"/api/tickets/{ticket_id}/files/delete/", {"deletion": deletion}, idempotency_key=key
    )


@task(queue_name="attachments")
def restore_attachments(ticket_id: str, deletion: int) -> None:
    """Have file-service restore exactly the files that deletion ``deletion`` of the ticket took."""
    key = f"ticket-{ticket_id}-deletion-{deletion}-restore"
    upstream("file-service").post_json(
        f"/api/tickets/{ticket_id}/files/restore/", {"deletion": deletion}, idempotency_key=key
    )
