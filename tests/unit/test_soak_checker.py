"""The soak's invariant checker finds each kind of violation in a made-up history, and only those."""

from __future__ import annotations

from typing import Any

import pytest

from tests.soak.checker import Final, check
from tests.soak.faults import Outage
from tests.soak.history import History

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestConfigWarning")


def op(history: History, kind: str, target: str | None, start: float, end: float, status: int | None, **sent: Any):
    made = history.new(0, kind, target, **sent)
    made.start, made.end, made.status = start, end, status
    return made


def user(uid: str, *, deleted: bool = False, name: str = "n0", email: str = "e0") -> dict[str, Any]:
    return {"id": uid, "is_deleted": deleted, "name": name, "email": email}


def ticket(tid: str, *, deleted: bool = False, title: str = "k", notification: str = "delivered") -> dict[str, Any]:
    return {"id": tid, "is_deleted": deleted, "title": title, "notification": notification}


def created_user(history: History) -> None:
    op(history, "create_user", "u", 0, 1, 201, name="n0", email="e0")


def test_a_consistent_history_has_no_violation():
    """Create, patch, delete and restore in order, each reflected at the end: nothing to report."""
    h = History()
    created_user(h)
    op(h, "patch_user", "u", 2, 3, 200, name="n1")
    op(h, "delete_user", "u", 4, 5, 204)
    op(h, "restore_user", "u", 6, 7, 200)
    op(h, "create_ticket", "t", 8, 9, 201, key="k")
    final = Final(
        users={"u": user("u", name="n1")}, tickets={"t": ticket("t")}, notifications={"n": {"ticket_id": "t"}}
    )
    assert check(h, final) == []


def test_a_user_deleted_then_live_without_a_restore_is_resurrected():
    """An acknowledged DELETE, nothing after it that could restore, and a live row: resurrected."""
    h = History()
    created_user(h)
    deleted = op(h, "delete_user", "u", 4, 5, 204)
    op(h, "patch_user", "u", 3, 4.5, 200, name="n1")  # ended after the delete began: not a restore
    (line,) = [v for v in check(h, Final(users={"u": user("u", name="n1")})) if v.startswith("resurrected")]
    assert str(deleted) in line


def test_a_restore_whose_outcome_is_unknown_may_explain_a_live_row():
    """A restore that got no answer may have happened: a live row after it is no violation."""
    h = History()
    created_user(h)
    op(h, "delete_user", "u", 4, 5, 204)
    op(h, "restore_user", "u", 6, 36, None)
    assert check(h, Final(users={"u": user("u")})) == []


def test_an_overwritten_field_update_is_reported():
    """PATCH email acknowledged after the create, yet the create's email is back at the end: overwritten."""
    h = History()
    created_user(h)
    op(h, "patch_user", "u", 2, 3, 200, email="e1")
    op(h, "patch_user", "u", 2.5, 4, 200, name="n1")
    (line,) = check(h, Final(users={"u": user("u", name="n1", email="e0")}))
    assert line.startswith("overwritten") and "email" in line


def test_concurrent_updates_of_one_field_may_end_either_way():
    """Two overlapping PATCHes of one field: whichever value ends up there is fine."""
    h = History()
    created_user(h)
    op(h, "patch_user", "u", 2, 4, 200, name="a")
    op(h, "patch_user", "u", 3, 5, 200, name="b")
    assert check(h, Final(users={"u": user("u", name="a")})) == []
    assert check(h, Final(users={"u": user("u", name="b")})) == []


def test_a_value_no_write_sent_is_reported():
    """A field holding a value no operation wrote: from nowhere."""
    h = History()
    created_user(h)
    assert check(h, Final(users={"u": user("u", name="??")}))[0].startswith("from nowhere")


def test_an_acknowledged_create_missing_at_the_end_is_lost():
    """A 201 whose row is not there at the end: lost."""
    h = History()
    created_user(h)
    assert check(h, Final())[0].startswith("lost: user u")


def test_a_retried_create_stored_twice_is_reported():
    """One Idempotency-Key, two stored tickets: twice."""
    h = History()
    op(h, "create_ticket", None, 0, 5, 504, key="k")
    op(h, "create_ticket", "t1", 6, 7, 201, key="k")
    final = Final(tickets={"t1": ticket("t1"), "t2": ticket("t2")}, notifications={"a": {"ticket_id": "t1"}})
    final.notifications["b"] = {"ticket_id": "t2"}
    assert [v.split(":")[0] for v in check(h, final)] == ["twice"]


def test_a_notification_stored_twice_or_never_delivered_is_reported():
    """Two notifications of one ticket, and one still pending after the drain: both reported."""
    h = History()
    final = Final(
        tickets={"t1": ticket("t1", title="a"), "t2": ticket("t2", title="b", notification="pending")},
        notifications={"n1": {"ticket_id": "t1"}, "n2": {"ticket_id": "t1"}},
    )
    found = sorted(v.split(":")[0] for v in check(h, final))
    assert found == ["lost", "twice", "undelivered"]


def test_a_live_file_of_a_deleted_ticket_is_an_orphan():
    """A deleted ticket with a live file: orphan; a live ticket's file deleted by nobody: not restored."""
    h = History()
    files = {
        "f1": {"id": "f1", "ticket_id": "t1", "is_deleted": False},
        "f2": {"id": "f2", "ticket_id": "t2", "is_deleted": True},
    }
    final = Final(tickets={"t1": ticket("t1", deleted=True), "t2": ticket("t2", title="b")}, files=files)
    final.notifications = {"a": {"ticket_id": "t1"}, "b": {"ticket_id": "t2"}}
    found = sorted(v.split(":")[0] for v in check(h, final))
    assert found == ["not restored", "orphan"]


def test_a_500_or_an_answer_without_the_envelope_is_reported():
    """A 500, and a 404 whose body is not the JSON envelope: both reported as answers."""
    h = History()
    op(h, "read", "x", 0, 1, 500)
    bare = op(h, "read", "y", 0, 1, 404)
    bare.shape_error = "is not JSON"
    assert [v.split(":")[0] for v in check(h, Final())] == ["answer", "answer"]


def test_a_file_deleted_by_its_tickets_deletion_is_no_lost_restore():
    """A file uploaded, then its ticket deleted (the outbox deletes the file later): deleted at the end is fine."""
    h = History()
    op(h, "create_ticket", "t", 0, 1, 201, key="k")
    op(h, "create_file", "f", 2, 3, 201, ticket_id="t")
    op(h, "delete_ticket", "t", 4, 5, 204)
    final = Final(
        tickets={"t": ticket("t", deleted=True)},
        files={"f": {"id": "f", "ticket_id": "t", "is_deleted": True}},
        notifications={"n": {"ticket_id": "t"}},
    )
    assert check(h, final) == []


def test_a_file_deleted_with_no_deletion_of_its_own_or_its_tickets_is_a_lost_restore():
    """A file acknowledged as restored, nothing deleting it afterwards, deleted at the end: lost restore."""
    h = History()
    op(h, "create_ticket", "t", 0, 1, 201, key="k")
    op(h, "create_file", "f", 2, 3, 201, ticket_id="t")
    op(h, "delete_file", "f", 4, 5, 204)
    op(h, "restore_file", "f", 6, 7, 200)
    final = Final(
        tickets={"t": ticket("t")},
        files={"f": {"id": "f", "ticket_id": "t", "is_deleted": True}},
        notifications={"n": {"ticket_id": "t"}},
    )
    assert [v.split(":")[0] for v in check(h, final)] == ["lost restore"]


def hang_of_users(*probes: tuple[str, int | None], kind: str = "hung") -> Outage:
    return Outage("user-service", kind, 10, 20, list(probes))


ALL_READ = (("ticket-service", 200), ("communication-service", 200), ("file-service", 200))


def sent_to(history: History, service: str, kind: str, start: float, status: int | None) -> None:
    op(history, kind, "x", start, start + 1, status, key="k", ticket_id="t").service = service


def test_a_hang_with_every_bystander_answering_has_no_violation():
    """user-service hung: the others' lists answered 200, and only calls that need user-service went unanswered."""
    h = History()
    sent_to(h, "ticket-service", "read", 12, 200)
    sent_to(h, "ticket-service", "create_ticket", 12, 503)  # needs user-service
    sent_to(h, "user-service", "patch_user", 12, None)
    sent_to(h, "file-service", "create_file", 25, None)  # after the hang
    assert check(h, Final(), [hang_of_users(*ALL_READ)]) == []


@pytest.mark.parametrize(
    ("probes", "ops", "found"),
    [
        ((*ALL_READ[:2], ("file-service", None)), [], "file-service's list answered None"),
        (ALL_READ[:2], [], "only ['communication-service', 'ticket-service'] were read"),
        (ALL_READ, [("file-service", "create_file", 15, 504)], "create_file x -> 504"),
        (ALL_READ, [("ticket-service", "delete_ticket", 11, None)], "delete_ticket x -> None"),
    ],
)
@pytest.mark.parametrize("kind", ["hung", "partitioned"])
def test_a_bystander_that_stopped_answering_during_an_outage_is_a_violation(probes, ops, found, kind):
    """During a hang or a partition: a list not answered, a service never read, or an unrelated operation
    without an answer or with a 5xx."""
    h = History()
    for service, op_kind, start, status in ops:
        sent_to(h, service, op_kind, start, status)
    (line,) = check(h, Final(), [hang_of_users(*probes, kind=kind)])
    assert line.startswith(f"{kind}: ") and found in line, line
