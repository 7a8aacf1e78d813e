"""The invariants a soak checks over its history and the rows the services hold at the end.

Each check is sound for concurrent histories: an operation is only taken to come after another when it
started after the other ended, and one whose outcome is unknown (no answer, 5xx) may or may not have taken
effect. A violation is one line naming the row and the operations that show it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devstack import SERVICES
from tests.soak.faults import Outage
from tests.soak.history import History, Op

#: The services an operation's answer waits on besides the one it is sent to (synchronous calls between them).
CALLS: dict[str, frozenset[str]] = {
    "create_ticket": frozenset({"user-service"}),
    "create_file": frozenset({"ticket-service"}),
}
#: Statuses a client may see: success, its own mistakes, and the gateway's clean "not now" (never a 500).
ALLOWED_STATUSES = frozenset(range(200, 300)) | frozenset(range(400, 500)) | {502, 503, 504}


@dataclass
class Final:
    """Every row of each kind at the end, deleted ones included, by id."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


def check(history: History, final: Final, outages: Iterable[Outage] = ()) -> list[str]:
    """Every violated invariant, one line each (empty: none)."""
    return [
        *answers(history),
        *bystanders_kept_answering(history, outages),
        *acknowledged_creates_exist(history, final),
        *idempotent_creates_stored_once(history, final),
        *deletions_hold(history, final),
        *field_updates_hold(history, final),
        *effects_delivered_once(final),
        *children_follow_their_ticket(history, final),
    ]


def answers(history: History) -> Iterable[str]:
    """Every answer is an allowed status, and every error carries the JSON envelope."""
    for op in history.ops:
        if op.status is not None and op.status not in ALLOWED_STATUSES:
            yield f"answer: {op} is not an allowed status ({str(op.body)[:120]})"
        elif op.shape_error:
            yield f"answer: {op} {op.shape_error}"


def bystanders_kept_answering(history: History, outages: Iterable[Outage]) -> Iterable[str]:
    """While a service hung or was partitioned, every other service's list answered 200 each time it was
    read, and every operation started meanwhile that needs nothing of that service was answered, without
    a 5xx."""
    for outage in outages:
        window = f"while {outage.service} {outage.kind} [{outage.start:.3f}-{outage.end:.3f}]"
        probed = {service for service, _ in outage.probes}
        if probed != {s for s in SERVICES if s != outage.service}:
            yield f"{outage.kind}: {window}, only {sorted(probed)} were read"
        for service, status in outage.probes:
            if status != 200:
                yield f"{outage.kind}: {window}, {service}'s list answered {status}"
        for op in history.ops:
            unrelated = outage.service not in {op.service, *CALLS.get(op.kind, ())}
            if unrelated and outage.start <= op.start <= outage.end and (op.status is None or op.status >= 500):
                yield f"{outage.kind}: {op} {window} needs nothing of it"


def _created(history: History, kind: str) -> list[Op]:
    return [op for op in history.of(kind) if op.acked and op.target]


def acknowledged_creates_exist(history: History, final: Final) -> Iterable[str]:
    """No acknowledged create is lost: its row exists at the end (live or deleted)."""
    for kind, rows in (("user", final.users), ("ticket", final.tickets), ("file", final.files)):
        for op in _created(history, f"create_{kind}"):
            if op.target not in rows:
                yield f"lost: {kind} {op.target} was acknowledged by {op} but is not there at the end"


def idempotent_creates_stored_once(history: History, final: Final) -> Iterable[str]:
    """A ticket create retried under one Idempotency-Key is stored at most once (exactly once if acknowledged)."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history.of("create_ticket"):
        by_key[op.sent["key"]].append(op)
    stored = Counter(row["title"] for row in final.tickets.values())
    for key, attempts in by_key.items():
        count = stored[key]
        if count > 1:
            yield f"twice: Idempotency-Key {key} stored {count} tickets ({', '.join(map(str, attempts))})"
        elif count == 0 and any(op.acked for op in attempts):
            yield f"lost: Idempotency-Key {key} acknowledged ({', '.join(map(str, attempts))}) but no ticket holds it"


def _setters(history: History, kind: str, target: str) -> tuple[list[Op], list[Op]]:
    """The operations that may have made ``target`` deleted, and those that may have made it live."""
    deleting = [op for op in history.of(f"delete_{kind}") if op.target == target and op.applied_maybe]
    living = [op for op in history.of(f"restore_{kind}", f"create_{kind}") if op.target == target]
    return deleting, [op for op in living if op.applied_maybe]


def _contradicted(final_deleted: bool, deleting: list[Op], living: list[Op], async_undoers: list[Op]) -> Op | None:
    """The latest acknowledged operation the final state contradicts with nothing possibly after it, if any.

    ``async_undoers`` may have taken effect at any time after they started (the outbox carried them).
    """
    confirmed = [op for op in (living if final_deleted else deleting) if op.acked]
    if not confirmed:
        return None
    last = max(confirmed, key=lambda op: op.start)
    undoers = deleting if final_deleted else living
    if async_undoers or any(op.end > last.start for op in undoers):
        return None
    return last


def deletions_hold(history: History, final: Final) -> Iterable[str]:
    """Nothing acknowledged as deleted is live at the end without a restore that may follow it, and the reverse.

    A file is also deleted by its ticket's deletion and brought back by its restore, which the outbox carries
    later: those may come after anything (``children_follow_their_ticket`` checks them against the ticket).
    """
    for kind, rows in (("user", final.users), ("ticket", final.tickets), ("file", final.files)):
        for target, row in rows.items():
            deleting, living = _setters(history, kind, target)
            by_ticket: list[Op] = []
            if kind == "file":
                ticket_deleting, ticket_living = _setters(history, "ticket", row["ticket_id"])
                by_ticket = ticket_deleting if row["is_deleted"] else ticket_living
                by_ticket = [op for op in by_ticket if op.kind != "create_ticket"]
            contradicted = _contradicted(row["is_deleted"], deleting, living, by_ticket)
            if contradicted is not None:
                what = "lost restore" if row["is_deleted"] else "resurrected"
                state = "deleted" if row["is_deleted"] else "live"
                yield f"{what}: {kind} {target} is {state} at the end, after {contradicted}"


def field_updates_hold(history: History, final: Final) -> Iterable[str]:
    """Each user field holds a value some write sent, and no acknowledged write of it came wholly after that one."""
    writes: dict[tuple[str, str], list[tuple[Op, str]]] = defaultdict(list)
    for op in history.of("create_user", "patch_user"):
        if op.target and op.applied_maybe:
            for name, value in op.sent.items():
                writes[(op.target, name)].append((op, value))
    for user_id, row in final.users.items():
        for name in ("name", "email"):
            candidates = writes.get((user_id, name), [])
            sources = [op for op, value in candidates if value == row[name]]
            if not sources:
                yield f"from nowhere: user {user_id} {name}={row[name]!r} was never written"
                continue
            newest = max(op.end for op in sources)
            later = [op for op, _ in candidates if op.acked and op.start > newest]
            if later:
                yield (
                    f"overwritten: user {user_id} {name}={row[name]!r} (by {max(sources, key=lambda o: o.end)}) "
                    f"although {later[0]} wrote it afterwards"
                )


def effects_delivered_once(final: Final) -> Iterable[str]:
    """Each ticket's notification is stored exactly once once delivered, never twice, and none stays pending."""
    per_ticket = Counter(row["ticket_id"] for row in final.notifications.values())
    for ticket_id, count in per_ticket.items():
        if count > 1:
            yield f"twice: ticket {ticket_id} has {count} notifications"
    for ticket_id, ticket in final.tickets.items():
        state, count = ticket["notification"], per_ticket.get(ticket_id, 0)
        if state == "pending":
            yield f"undelivered: ticket {ticket_id}'s notification is still pending after the outbox drained"
        elif state == "delivered" and count != 1:
            yield f"lost: ticket {ticket_id}'s notification is delivered but {count} are stored"
        elif state == "failed" and count:
            yield f"inconsistent: ticket {ticket_id}'s notification is failed but {count} is stored"


def children_follow_their_ticket(history: History, final: Final) -> Iterable[str]:
    """No live file belongs to a deleted ticket; a live ticket's deleted files were each deleted on their own."""
    own_deletes = {op.target for op in history.of("delete_file") if op.applied_maybe}
    for file_id, row in final.files.items():
        ticket = final.tickets.get(row["ticket_id"])
        if ticket is None:
            continue
        if ticket["is_deleted"] and not row["is_deleted"]:
            yield f"orphan: file {file_id} is live but its ticket {row['ticket_id']} is deleted"
        elif not ticket["is_deleted"] and row["is_deleted"] and file_id not in own_deletes:
            yield f"not restored: file {file_id} deleted (not on its own) but its ticket {row['ticket_id']} is live"
