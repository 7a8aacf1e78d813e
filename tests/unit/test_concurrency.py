"""Soft delete and idempotent creation when two requests race, on real connections in two threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.http import HttpResponse
from django.test import Client
from ninja import Schema
from ninja.responses import Status

from shared_core.api import create_once
from shared_core.models import RowDeleted
from shared_core.signals import post_soft_delete
from tests.testapp.models import Author, Book, Chapter, Receipt

pytestmark = pytest.mark.django_db(transaction=True)

#: Generous bound on any one wait in these tests, on a busy 2-core machine.
WAIT = 30.0


def in_thread(target: Callable[[], Any], name: str | None = None) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` on its own thread and database connection; its result or error lands in the dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = target()
        except BaseException as exc:  # re-raised by the test
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, out


def wait_for_lock_waiter() -> None:
    """Poll PostgreSQL until some other backend is blocked on a row lock."""
    give_up = time.monotonic() + WAIT
    while time.monotonic() < give_up:
        with connection.cursor() as cursor:
            # Inside a transaction PostgreSQL answers from a snapshot of the statistics: drop it first.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError("no other backend ever waited for a lock")


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite serialises writers; deletions cannot interleave")
def test_concurrent_deletes_with_a_receiver_stamp_once_and_restore_whole():
    """Two racing deletions of one parent: one stamps every row once, receivers fire once a row, restore is whole."""
    author = Author.objects.create(name="Ada", email="race@example.com")
    books = [Book.objects.create(author=author, title=str(i)) for i in range(2)]
    chapters = [Chapter.objects.create(book=b, number=n) for b in books for n in range(2)]
    fired: Counter[Any] = Counter()
    first_inside, go = threading.Event(), threading.Event()

    def receiver(sender: type, instance: Any, **kwargs: Any) -> None:
        fired[instance.pk] += 1
        if threading.current_thread().name == "first" and not first_inside.is_set():
            first_inside.set()
            assert go.wait(WAIT)

    post_soft_delete.connect(receiver, dispatch_uid="race-receiver")
    try:
        first, first_out = in_thread(lambda: Author.objects.get(pk=author.pk).delete(), name="first")
        assert first_inside.wait(WAIT)
        second, second_out = in_thread(lambda: Author.objects.get(pk=author.pk).delete())
        wait_for_lock_waiter()
        go.set()
        first.join(WAIT)
        second.join(WAIT)
    finally:
        go.set()
        post_soft_delete.disconnect(dispatch_uid="race-receiver")
    assert "error" not in first_out and "error" not in second_out, (first_out, second_out)
    assert first_out["result"][0] == 7 and second_out["result"] == (0, {})
    rows = [author, *books, *chapters]
    assert fired == Counter({row.pk: 1 for row in rows})
    stamps = {type(r).all_objects.get(pk=r.pk).deleted_at for r in rows}
    assert len(stamps) == 1 and None not in stamps
    assert Author.all_objects.get(pk=author.pk).restore() == (
        7,
        {"testapp.Author": 1, "testapp.Book": 2, "testapp.Chapter": 4},
    )


class ReceiptIn(Schema):
    amount: int


def receipt(amount: int) -> Callable[[dict[str, str | None]], Receipt]:
    return lambda fields: Receipt.objects.create(amount=amount, **fields)


def test_create_once_stores_one_row_and_replays_it():
    """The same key and body twice store one row: 201 first, then 200 with that row, marked Idempotent-Replayed."""
    first_response, again_response = HttpResponse(), HttpResponse()
    first = create_once(first_response, Receipt, "k-1", ReceiptIn(amount=5), receipt(5))
    again = create_once(again_response, Receipt, "k-1", ReceiptIn(amount=5), receipt(5))
    assert (first.status_code, again.status_code) == (201, 200) and again.value == first.value
    assert again_response["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first_response and Receipt.all_objects.count() == 1


def test_create_once_race_loser_replays_the_winner():
    """A request that checked before a racing one committed, then collides, answers with the winner's row."""
    checked, winner_done = threading.Event(), threading.Event()
    after: list[Receipt] = []
    payload = ReceiptIn(amount=1)

    def slow_create(fields: dict[str, str | None]) -> Receipt:
        checked.set()  # our replay check has missed; now let the other request win
        assert winner_done.wait(WAIT)
        return receipt(1)(fields)

    def winner() -> Status[Receipt]:
        assert checked.wait(WAIT)
        try:
            return create_once(HttpResponse(), Receipt, "race", payload, receipt(1))
        finally:
            winner_done.set()

    other, other_out = in_thread(winner)
    response = HttpResponse()
    loser = create_once(response, Receipt, "race", payload, slow_create, after_create=after.append)
    other.join(WAIT)
    assert "error" not in other_out, other_out
    assert other_out["result"].status_code == 201
    assert (loser.status_code, loser.value) == (200, other_out["result"].value)
    assert response["Idempotent-Replayed"] == "true"
    assert Receipt.all_objects.count() == 1 and after == []


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite serialises writers; the two cannot interleave")
def test_a_restore_racing_a_create_of_the_same_unique_value_is_409():
    """A restore that waits on a concurrent, not yet committed create of its email ends in 409, not a 500."""
    old = Author.objects.create(name="old", email="race@example.com")
    old.delete()
    client = Client(HTTP_AUTHORIZATION="Bearer unit-test-service-token")
    with transaction.atomic():
        Author.objects.create(name="new", email="race@example.com")  # holds the unique entry until commit
        restorer, out = in_thread(lambda: client.post(f"/api/t/authors/{old.pk}/restore/"))
        wait_for_lock_waiter()  # the restore checked nothing it could see and now waits on our insert
    restorer.join(WAIT)
    assert "error" not in out, out
    assert out["result"].status_code == 409 and out["result"].json()["error"] == "conflict"
    assert Author.all_objects.get(pk=old.pk).is_deleted


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite serialises writers; the two cannot interleave")
def test_a_save_waiting_behind_an_uncommitted_deletion_finds_the_row_deleted():
    """A save blocked on the row lock of a deletion in progress re-checks liveness when it commits: RowDeleted."""
    author = Author.objects.create(name="Ada", email="save-race@example.com")
    loaded = Author.objects.get(pk=author.pk)
    loaded.name = "Grace"
    with transaction.atomic():
        Author.objects.get(pk=author.pk).soft_delete()  # holds the row until commit
        saver, out = in_thread(loaded.save)
        wait_for_lock_waiter()  # the save's UPDATE now waits on our deletion
    saver.join(WAIT)
    assert isinstance(out.get("error"), RowDeleted), out
    assert Author.all_objects.values_list("is_deleted", "name").get(pk=author.pk) == (True, "Ada")
