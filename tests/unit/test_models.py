"""BaseModel and soft delete, on SQLite (default) or PostgreSQL (TEST_DATABASE_URL)."""

import os
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shared_core.models import RowDeleted
from shared_core.signals import post_restore, post_soft_delete
from tests.testapp.models import Anthology, Author, Book, Chapter, Node, Review, Sticker

pytestmark = pytest.mark.django_db


def make_author(email: str = "ada@example.com") -> Author:
    return Author.objects.create(name="Ada", email=email)


def make_tree() -> tuple[Author, list[Book], list[Chapter]]:
    author = make_author()
    books = [Book.objects.create(author=author, title=f"B{i}") for i in range(2)]
    chapters = [Chapter.objects.create(book=book, number=n) for book in books for n in range(2)]
    return author, books, chapters


def sql_of(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].upper() for q in ctx.captured_queries]


def test_create_assigns_uuid_in_python_and_issues_one_insert():
    """A new row gets a uuid4 key before saving, and create is a single INSERT."""
    author = Author(name="Ada", email="a@example.com")
    assert isinstance(author.id, uuid.UUID) and author.id.version == 4
    with CaptureQueriesContext(connection) as ctx:
        author.save()
    assert len(ctx.captured_queries) == 1 and sql_of(ctx)[0].startswith("INSERT")


def test_timestamps_are_set_and_updated_at_advances_on_save():
    """created_at and updated_at are set on create; save moves updated_at only."""
    author = make_author()
    created, updated = author.created_at, author.updated_at
    assert created is not None and updated is not None and author.deleted_at is None and not author.is_deleted
    author.name = "Ada L."
    author.save()
    author.refresh_from_db()
    assert author.created_at == created and author.updated_at > updated


def test_instance_delete_is_soft_and_keeps_the_row():
    """instance.delete() hides the row from objects but keeps it in the table."""
    author = make_author()
    with CaptureQueriesContext(connection) as ctx:
        author.delete()
    assert not any(s.startswith("DELETE") for s in sql_of(ctx))
    assert author.is_deleted and author.deleted_at is not None
    assert not Author.objects.filter(pk=author.pk).exists()
    assert Author.all_objects.get(pk=author.pk).is_deleted
    assert Author.objects.deleted().get(pk=author.pk) == author


def test_queryset_delete_is_one_bulk_update_without_sql_delete():
    """queryset.delete() is one UPDATE for the rows plus one per cascade relation, never a DELETE."""
    for i in range(50):
        make_author(f"a{i}@example.com")
    with CaptureQueriesContext(connection) as ctx:
        total, per_model = Author.objects.all().delete()
    statements = sql_of(ctx)
    assert total == 50 and per_model == {"testapp.Author": 50}
    assert not any(s.startswith("DELETE") for s in statements)
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == 2 and '"TESTAPP_BOOK"' in updates[1]
    assert len(statements) <= 4
    assert Author.objects.count() == 0 and Author.all_objects.count() == 50


def test_queryset_soft_delete_returns_the_stamp_that_restores_exactly_it():
    """queryset.soft_delete() returns the batch stamp; restoring by it leaves earlier deletions alone."""
    early, *rest = [make_author(f"s{i}@example.com") for i in range(3)]
    early.delete()
    (total, _), stamp = Author.objects.all().soft_delete()
    assert total == 2 and stamp is not None
    assert Author.all_objects.filter(deleted_at=stamp).restore()[0] == 2
    assert set(Author.objects.all()) == set(rest) and Author.objects.none().soft_delete() == ((0, {}), None)


def test_live_unique_violation_has_code_unique():
    """A live_unique clash in full_clean() is filed under the field with code "unique", so an API can answer 409."""
    make_author("c@example.com")
    with pytest.raises(ValidationError) as info:
        Author(name="B", email="c@example.com").full_clean()
    assert [e.code for e in info.value.error_dict["email"]] == ["unique"]


def test_sliced_queryset_delete_is_refused():
    """Deleting a sliced queryset raises TypeError, as Django does."""
    make_author()
    with pytest.raises(TypeError, match="limit"):
        Author.objects.all()[:1].delete()


def test_queryset_update_advances_updated_at():
    """queryset.update() sets updated_at to now unless the caller sets it."""
    author = make_author()
    before = author.updated_at
    Author.objects.filter(pk=author.pk).update(name="X")
    author.refresh_from_db()
    assert author.updated_at > before
    fixed = timezone.now() - timedelta(days=3)
    Author.objects.filter(pk=author.pk).update(updated_at=fixed)
    author.refresh_from_db()
    assert author.updated_at == fixed


def test_bulk_update_advances_updated_at():
    """bulk_update() writes a fresh updated_at along with the named fields."""
    author = make_author()
    before = author.updated_at
    author.name = "Bulk"
    Author.objects.bulk_update([author], ["name"])
    author.refresh_from_db()
    assert author.name == "Bulk" and author.updated_at > before


def test_cascade_soft_deletes_basemodel_children_at_every_depth():
    """Soft-deleting a parent soft-deletes its CASCADE BaseModel children and grandchildren."""
    author, _books, _chapters = make_tree()
    total, per_model = author.delete()
    assert per_model == {"testapp.Author": 1, "testapp.Book": 2, "testapp.Chapter": 4} and total == 7
    stamps = {row.deleted_at for row in [*Book.all_objects.all(), *Chapter.all_objects.all()]}
    assert stamps == {author.deleted_at}
    assert Book.all_objects.count() == 2 and Chapter.all_objects.count() == 4


def test_cascade_never_nulls_keys_nor_touches_plain_children():
    """SET_NULL keys stay set and plain-model CASCADE children stay untouched."""
    author, books, _ = make_tree()
    sticker = Sticker.objects.create(book=books[0])
    review = Review.objects.create(book=books[0], text="good")
    author.delete()
    sticker.refresh_from_db()
    assert sticker.book_id == books[0].pk and not sticker.is_deleted
    assert Review.objects.get(pk=review.pk).book_id == books[0].pk


def test_cascade_is_bounded_in_statements_not_rows():
    """A cascade over many children costs the same number of statements as over few."""

    def statements_for(n_books: int) -> int:
        author = make_author(f"{n_books}@example.com")
        for i in range(n_books):
            Chapter.objects.create(book=Book.objects.create(author=author, title=str(i)), number=1)
        with CaptureQueriesContext(connection) as ctx:
            author.delete()
        return len(ctx.captured_queries)

    assert statements_for(2) == statements_for(30)


def test_receivers_read_rows_in_bounded_chunks_never_a_key_list(monkeypatch):
    """With receivers, each row is announced once, read in chunks by stamp; no statement lists the keys."""
    monkeypatch.setattr("shared_core._data.softdelete.DEFAULT_SIGNAL_CHUNK_SIZE", 7)
    seen: list[object] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    def statements_for(n_chapters: int) -> list[str]:
        author = make_author(f"{n_chapters}@example.com")
        book = Book.objects.create(author=author, title="b")
        chapters = {Chapter.objects.create(book=book, number=i).pk for i in range(n_chapters)}
        seen.clear()
        with CaptureQueriesContext(connection) as ctx:
            author.delete()
        assert sorted(map(str, seen)) == sorted(map(str, chapters))
        return sql_of(ctx)

    post_soft_delete.connect(receiver, sender=Chapter)
    try:
        few, many = statements_for(3), statements_for(30)
    finally:
        post_soft_delete.disconnect(receiver, sender=Chapter)
    chapter_selects = [s for s in many if s.startswith("SELECT") and '"TESTAPP_CHAPTER"."NUMBER"' in s]
    assert len(chapter_selects) == 5  # 30 rows in chunks of 7: 7, 7, 7, 7, 2
    assert len(many) - len(few) == 4  # the extra chunks, nothing else
    assert max(len(s) for s in many) < 30 * 32  # shorter than the 30 keys alone would be


def test_restore_brings_back_exactly_what_the_deletion_took():
    """restore() revives the cascade of its deletion but not a child deleted on its own before."""
    author, _books, chapters = make_tree()
    chapters[0].delete()
    earlier_stamp = Chapter.all_objects.get(pk=chapters[0].pk).deleted_at
    author.delete()
    total, per_model = author.restore()
    assert per_model == {"testapp.Author": 1, "testapp.Book": 2, "testapp.Chapter": 3} and total == 6
    assert not author.is_deleted and author.deleted_at is None
    lone = Chapter.all_objects.get(pk=chapters[0].pk)
    assert lone.is_deleted and lone.deleted_at == earlier_stamp
    assert Chapter.objects.count() == 3


def test_restore_of_a_child_leaves_its_deleted_parent_alone():
    """Restoring one cascaded child revives only that child's own subtree."""
    author, books, _chapters = make_tree()
    author.delete()
    book = Book.all_objects.get(pk=books[0].pk)
    assert book.restore() == (3, {"testapp.Book": 1, "testapp.Chapter": 2})
    assert Author.all_objects.get(pk=author.pk).is_deleted
    assert Book.objects.count() == 1


def test_queryset_restore_handles_several_deletions():
    """queryset.restore() restores each root with its own cascade."""
    first, second = make_author("1@example.com"), make_author("2@example.com")
    Book.objects.create(author=first, title="x")
    Book.objects.create(author=second, title="y")
    first.delete()
    second.delete()
    total, per_model = Author.objects.deleted().restore()
    assert total == 4 and per_model == {"testapp.Author": 2, "testapp.Book": 2}
    assert Book.objects.count() == 2


def test_cascade_terminates_on_cyclic_data_and_restores_it():
    """Rows that reference each other in a cycle are deleted and restored once each."""
    a = Node.objects.create()
    b = Node.objects.create(parent=a)
    a.partner = b
    a.save()
    c = Node.objects.create(parent=b)
    assert a.delete() == (3, {"testapp.Node": 3})
    assert Node.objects.count() == 0
    a.restore()
    assert set(Node.objects.values_list("pk", flat=True)) == {a.pk, b.pk, c.pk}


def test_soft_delete_twice_is_a_no_op():
    """Deleting an already deleted row changes nothing and keeps its first stamp."""
    author = make_author()
    author.delete()
    stamp = author.deleted_at
    assert author.delete() == (0, {})
    assert Author.all_objects.get(pk=author.pk).deleted_at == stamp


def test_forward_fk_to_soft_deleted_parent_still_resolves():
    """A child's foreign key to a deleted parent still loads the parent."""
    book = Book.objects.create(author=make_author(), title="t")
    sticker = Sticker.objects.create(book=book)
    book.soft_delete()
    sticker.refresh_from_db()
    assert sticker.book == book and sticker.book.is_deleted
    assert Sticker.objects.select_related("book").get(pk=sticker.pk).book.pk == book.pk


def test_reverse_relations_and_prefetch_hide_deleted_children():
    """Reverse managers and prefetch_related show live children only."""
    author, books, _ = make_tree()
    books[0].delete()
    assert list(author.books.all()) == [books[1]]
    fetched = Author.objects.prefetch_related("books").get(pk=author.pk)
    assert [b.pk for b in fetched.books.all()] == [books[1].pk]
    assert {b.pk for b in author.books.with_deleted()} == {b.pk for b in books}
    assert [b.pk for b in author.books.deleted()] == [books[0].pk]


def test_with_deleted_keeps_other_filters():
    """with_deleted() widens only the live-rows filter, not the caller's own."""
    a, b = make_author("a@example.com"), make_author("b@example.com")
    a.delete()
    b.delete()
    assert list(Author.objects.filter(email="a@example.com").with_deleted()) == [a]
    assert Author.objects.with_deleted().count() == 2
    assert Author.objects.deleted().filter(email="b@example.com").get() == b


def test_with_deleted_refuses_ored_querysets():
    """Widening an OR-ed queryset raises instead of returning the wrong rows."""
    combined = Author.objects.filter(name="a") | Author.objects.filter(name="b")
    with pytest.raises(TypeError, match="OR"):
        combined.with_deleted()


def test_live_unique_allows_reuse_after_soft_delete():
    """A live_unique value can be reused once the row holding it is deleted."""
    make_author("same@example.com").delete()
    again = make_author("same@example.com")
    assert Author.all_objects.filter(email="same@example.com").count() == 2
    assert not again.is_deleted


def test_live_unique_rejects_two_live_rows_in_full_clean_and_database():
    """Two live duplicates fail full_clean() with a ValidationError and the INSERT with IntegrityError."""
    make_author("dup@example.com")
    with pytest.raises(ValidationError):
        Author(name="B", email="dup@example.com").full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Author.objects.create(name="B", email="dup@example.com")


def test_live_unique_needs_fields():
    """live_unique() without field names raises a ValueError naming the problem."""
    from shared_core.models import live_unique

    with pytest.raises(ValueError, match="field"):
        live_unique()


def test_hard_delete_is_the_only_real_delete():
    """hard_delete() removes the row and its children physically."""
    author, _, _ = make_tree()
    author.hard_delete()
    assert Author.all_objects.count() == 0 and Book.all_objects.count() == 0 and Chapter.all_objects.count() == 0
    make_tree()
    Author.all_objects.all().hard_delete()
    assert Chapter.all_objects.count() == 0


def test_migrations_see_deleted_rows():
    """The historical models that data migrations use count deleted rows too."""
    make_author("1@example.com")
    make_author("2@example.com").delete()
    historical = ProjectState.from_apps(apps).apps.get_model("testapp", "Author")
    assert historical._default_manager.count() == 2


def test_signals_fire_for_each_deleted_and_restored_row():
    """post_soft_delete and post_restore are sent for the root and each cascaded row, with the deletion's stamp."""
    author, books, chapters = make_tree()
    seen: list[tuple[str, object, bool]] = []

    def on_delete(sender, instance, using, deleted_at, **kwargs):
        seen.append(("delete", instance.pk, instance.is_deleted and deleted_at == instance.deleted_at))

    def on_restore(sender, instance, using, deleted_at, **kwargs):
        seen.append(("restore", instance.pk, instance.is_deleted or deleted_at != stamp))

    post_soft_delete.connect(on_delete)
    post_restore.connect(on_restore)
    try:
        author.delete()
        stamp = author.deleted_at
        author.restore()
    finally:
        post_soft_delete.disconnect(on_delete)
        post_restore.disconnect(on_restore)
    pks = {author.pk, *(b.pk for b in books), *(c.pk for c in chapters)}
    assert {pk for kind, pk, flag in seen if kind == "delete" and flag} == pks
    assert {pk for kind, pk, flag in seen if kind == "restore" and not flag} == pks
    assert len(seen) == 14


def test_admin_delete_selected_action_is_soft(client):
    """The admin's "delete selected" bulk action soft-deletes."""
    authors = [make_author(f"{i}@example.com") for i in range(3)]
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        "/admin/testapp/author/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [str(a.pk) for a in authors]},
        headers={"Authorization": "Bearer unit-test-service-token"},
    )
    assert response.status_code == 302
    assert Author.objects.count() == 0 and Author.all_objects.filter(is_deleted=True).count() == 3


def test_runs_on_the_database_it_was_given():
    """The suite runs on the backend TEST_DATABASE_URL names (SQLite when unset)."""
    wanted = os.environ.get("TEST_DATABASE_URL", "sqlite://").split(":", 1)[0]
    assert connection.vendor == {"sqlite": "sqlite", "postgres": "postgresql"}[wanted]


def test_multi_table_child_hides_deleted_rows_and_widens():
    """A multi-table child of a BaseModel hides its deleted rows, with_deleted() shows them, restore works."""
    author = make_author()
    anthology = Anthology.objects.create(author=author, title="A", editor="E")
    anthology.delete()
    assert not Anthology.objects.filter(pk=anthology.pk).exists()
    assert Anthology.objects.with_deleted().get(pk=anthology.pk).is_deleted
    assert list(Anthology.objects.deleted()) == [anthology]
    anthology.restore()
    assert Anthology.objects.get(pk=anthology.pk).editor == "E"


def test_related_is_deleted_filter_is_not_widened():
    """with_deleted() drops only the model's own live filter, not a filter on a related model's is_deleted."""
    author = make_author()
    book = Book.objects.create(author=author, title="t")
    author.soft_delete()
    book.restore()
    assert list(Book.objects.filter(author__is_deleted=False).with_deleted()) == []
    assert list(Book.objects.filter(author__is_deleted=True).with_deleted()) == [book]


def test_private_query_hooks_match_the_public_filters_at_the_locked_django():
    """The cached live lookup and with_deleted() build exactly the SQL of filter(is_deleted=False) and its absence.

    Both edit ``query.where`` directly (a private structure) for speed; if a Django upgrade changes it, this fails.
    """
    author = make_author()
    assert str(Author.objects.all().query) == str(Author.all_objects.filter(is_deleted=False).query)
    assert str(Author.objects.filter(name="A").query) == str(
        Author.all_objects.filter(is_deleted=False, name="A").query
    )
    assert str(author.books.with_deleted().query) == str(Book.all_objects.filter(author=author).query)
    nested = Book.objects.filter(author__in=Author.objects.all()) | Book.objects.filter(title="x")
    public = Book.all_objects.filter(is_deleted=False).filter(author__in=Author.all_objects.filter(is_deleted=False))
    assert str(nested.query) == str((public | Book.all_objects.filter(is_deleted=False, title="x")).query)
    assert str(Author.objects.all().query) == str(Author.all_objects.filter(is_deleted=False).query)  # not mutated


def test_save_racing_a_soft_delete_raises_and_never_brings_the_row_back():
    """A row loaded, then soft-deleted elsewhere, then saved: RowDeleted, and the row stays deleted."""
    author = make_author()
    loaded = Author.objects.get(pk=author.pk)
    Author.objects.get(pk=author.pk).soft_delete()
    loaded.name = "Changed"
    with pytest.raises(RowDeleted, match=str(author.pk)), transaction.atomic():
        loaded.save()
    row = Author.all_objects.get(pk=author.pk)
    assert (row.is_deleted, row.name) == (True, "Ada")


def test_two_saves_of_different_fields_both_keep_their_change():
    """Two copies of one row change different fields: the later save does not undo the earlier one."""
    author = make_author()
    first, second = Author.objects.get(pk=author.pk), Author.objects.get(pk=author.pk)
    first.name = "Grace"
    first.save()
    second.email = "grace@example.com"
    second.save()
    row = Author.objects.get(pk=author.pk)
    assert (row.name, row.email) == ("Grace", "grace@example.com")


def test_save_of_a_loaded_row_writes_only_changed_fields_and_updated_at():
    """The UPDATE names the changed field and updated_at, and requires the row to be live."""
    loaded = Author.objects.get(pk=make_author().pk)
    loaded.name = "Grace"
    with CaptureQueriesContext(connection) as ctx:
        loaded.save()
    (update,) = [q for q in sql_of(ctx) if q.startswith("UPDATE")]
    assert '"NAME"' in update and '"UPDATED_AT"' in update
    assert '"EMAIL"' not in update and '"IS_DELETED" = ' not in update.split("WHERE")[0]
    assert '"IS_DELETED"' in update.split("WHERE")[1]


def test_saving_twice_writes_the_second_change_only():
    """After a save, the saved values count as loaded: the next save writes only what changed after it."""
    loaded = Author.objects.get(pk=make_author().pk)
    loaded.name = "Grace"
    loaded.save()
    other = Author.objects.get(pk=loaded.pk)
    other.name = "Hopper"
    other.save()
    loaded.email = "new@example.com"
    loaded.save()
    assert Author.objects.values_list("name", "email").get(pk=loaded.pk) == ("Hopper", "new@example.com")


def test_save_of_a_deleted_row_loaded_as_deleted_still_works():
    """A deleted row loaded through all_objects can be changed by save (no live condition applies)."""
    author = make_author()
    author.soft_delete()
    loaded = Author.all_objects.get(pk=author.pk)
    loaded.name = "Archived"
    loaded.save()
    assert Author.all_objects.values_list("name", "is_deleted").get(pk=author.pk) == ("Archived", True)


def test_a_row_created_here_then_changed_writes_only_the_change():
    """create() then a change and save(): the UPDATE names that field (and updated_at), not the others."""
    author = make_author()
    author.name = "Grace"
    with CaptureQueriesContext(connection) as ctx:
        author.save()
    (update,) = [q for q in sql_of(ctx) if q.startswith("UPDATE")]
    assert '"NAME"' in update and '"EMAIL"' not in update.split("WHERE")[0]


def test_a_restore_that_lost_the_race_holds_the_live_row():
    """Two copies of a deleted row restored in turn: the second restores nothing and holds the live row."""
    author = make_author()
    author.soft_delete()
    first, second = Author.all_objects.get(pk=author.pk), Author.all_objects.get(pk=author.pk)
    assert first.restore()[0] == 1
    Author.objects.filter(pk=author.pk).update(name="Renamed")
    assert second.restore() == (0, {})
    assert (second.is_deleted, second.deleted_at, second.name) == (False, None, "Renamed")


def test_a_delete_that_lost_the_race_holds_the_deleted_row():
    """Two copies of a live row deleted in turn: the second deletes nothing and holds the first's stamp."""
    author = make_author()
    first, second = Author.objects.get(pk=author.pk), Author.objects.get(pk=author.pk)
    first.soft_delete()
    assert second.soft_delete() == (0, {})
    assert (second.is_deleted, second.deleted_at) == (True, first.deleted_at)


def test_a_save_refused_for_a_deleted_row_leaves_no_change_behind():
    """After RowDeleted, the instance's updated_at is as loaded: changed_fields() lists only what was set."""
    author = make_author()
    loaded = Author.objects.get(pk=author.pk)
    Author.objects.get(pk=author.pk).soft_delete()
    with pytest.raises(RowDeleted), transaction.atomic():
        loaded.save()
    assert loaded.changed_fields() == []


def test_a_restore_receiver_that_writes_rows_never_hides_later_ones(monkeypatch):
    """A post_restore receiver that updates every chapter of the book: each restored chapter is still announced."""
    monkeypatch.setattr("shared_core._data.softdelete.DEFAULT_SIGNAL_CHUNK_SIZE", 2)
    author = make_author()
    book = Book.objects.create(author=author, title="b")
    chapters = {Chapter.objects.create(book=book, number=i).pk for i in range(5)}
    author.delete()
    seen: list[object] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)
        assert (instance.is_deleted, instance.deleted_at) == (False, None)
        Chapter.objects.filter(book_id=instance.book_id).update(number=99)

    post_restore.connect(receiver, sender=Chapter)
    try:
        Author.all_objects.get(pk=author.pk).restore()
    finally:
        post_restore.disconnect(receiver, sender=Chapter)
    assert sorted(map(str, seen)) == sorted(map(str, chapters))
    assert not Chapter.all_objects.filter(deleted_at__isnull=False).exists()
