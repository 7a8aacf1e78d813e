"""One deadline over SQL too: each statement of a request is bounded by the budget it has left.

``RequestContextMiddleware`` runs the view inside ``statement_deadline(deadline)``
when the request carries ``X-Request-Deadline``. Through Django's documented
``connection.execute_wrapper()`` every statement then:

- raises ``DeadlineExceeded`` before it is sent, once the budget is spent (any database);
- on PostgreSQL, runs under ``statement_timeout`` set to the budget left, so a
  slow statement is cut by the server at the deadline and raises
  ``DeadlineExceeded`` (the middleware answers 504).

The cost, only for requests that carry a deadline: one ``set_config`` round
trip before each PostgreSQL statement (a per-statement value, because a
rolled-back transaction also rolls back a session setting), and one
``RESET statement_timeout`` per connection at the end. Both go to the
driver's cursor directly, so execute wrappers (the per-request query count of
``shared_core._ops.metrics``) see only the application's statements.

``schema_is_current()`` tells readiness whether this code's migrations are
all applied, so a replica that started before its release migrated waits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Final

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from shared_core.context import Deadline, DeadlineExceeded

__all__ = ["QUERY_CANCELED_SQLSTATE", "cut_at_deadline", "schema_is_current", "statement_deadline"]

#: PostgreSQL's SQLSTATE for a statement cancelled by ``statement_timeout``.
QUERY_CANCELED_SQLSTATE: Final = "57014"
#: Inside a transaction the value is transaction-local (``is_local``), so neither a commit nor a rollback
#: carries it past the transaction; outside one it is the session's until ``reset``.
_SET_TIMEOUT: Final = "SELECT set_config('statement_timeout', %s, %s)"
_current_schemas: set[str] = set()


def cut_at_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL cancelling a statement at ``statement_timeout``.

    Besides the statements this module wraps, that includes the COMMIT that
    ends a transaction: it runs under the last timeout set, is cut by it as
    well, and then the transaction is rolled back.
    """
    return isinstance(exc, DatabaseError) and getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED_SQLSTATE


def schema_is_current(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether every migration this code has is applied on ``alias`` (the code's schema is not ahead of it).

    Once true it stays true for the process without asking again: migrations only move forward while a
    release runs. Raises ``DatabaseError`` when the database does not answer.
    """
    if alias in _current_schemas:
        return True
    executor = MigrationExecutor(connections[alias])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return False
    _current_schemas.add(alias)
    return True


def _own_statement(connection: BaseDatabaseWrapper, raw_cursor: Any, sql: str, params: Any = None) -> None:
    """Run this module's own statement on the driver's cursor: no execute wrapper (the query count, say) sees it.

    Driver errors still become Django's ``DatabaseError`` family, as for any statement.
    """
    with connection.wrap_database_errors:
        raw_cursor.execute(sql, params)


class _StatementDeadline:
    """An execute wrapper that fits every statement into the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.touched: set[BaseDatabaseWrapper] = set()

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceeded("the request's deadline was spent before a database statement")
        connection: BaseDatabaseWrapper = context["connection"]
        if connection.vendor != "postgresql":
            return execute(sql, params, many, context)
        budget = f"{max(1, math.ceil(remaining * 1000))}ms"
        _own_statement(connection, context["cursor"].cursor, _SET_TIMEOUT, [budget, connection.in_atomic_block])
        self.touched.add(connection)
        try:
            return execute(sql, params, many, context)
        except DatabaseError as exc:
            if cut_at_deadline(exc):
                raise DeadlineExceeded("a database statement was cut at the request's deadline") from exc
            raise

    def reset(self) -> None:
        """Give each connection it bounded its default ``statement_timeout`` back (best effort).

        Also inside a transaction that is still open, so its later statements run unbounded: the RESET is
        part of that transaction, and a rollback of it leaves only what was set before it began (nothing
        of ours, when the whole deadline ran inside it). A transaction already failed is left alone: its
        rollback undoes the transaction-local values.
        """
        for connection in self.touched:
            if connection.connection is None or connection.needs_rollback:
                continue
            try:
                with connection.cursor() as cursor:
                    _own_statement(connection, cursor.cursor, "RESET statement_timeout")
            except DatabaseError:
                if not connection.in_atomic_block:  # closing would break the caller's transaction
                    connection.close_if_unusable_or_obsolete()


@contextmanager
def statement_deadline(deadline: Deadline | None) -> Iterator[None]:
    """Bound every statement on every database by ``deadline`` inside the block; ``None`` bounds nothing."""
    if deadline is None:
        yield
        return
    wrapper = _StatementDeadline(deadline)
    try:
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(wrapper))
            yield
    finally:
        wrapper.reset()
