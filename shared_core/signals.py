"""Signals sent by soft delete and restore, so a service can carry them further.

Both are sent once per row that changed (the root and every cascaded child),
inside the transaction that changed it, with ``sender`` the model class and
the keyword arguments ``instance`` (the row, already updated in memory),
``using`` (the database alias) and ``deleted_at`` (the stamp of the deletion
that was made, or that was undone). Rows are only loaded for a model that has
receivers; without receivers a bulk soft delete stays a bulk UPDATE.

Receivers that call other services should defer the call with
``transaction.on_commit`` so a rolled-back deletion is never announced.
"""

from django.dispatch import Signal

__all__ = ["post_restore", "post_soft_delete"]

#: Sent after a row was soft-deleted (directly or by cascade).
post_soft_delete = Signal()

#: Sent after a row was restored (directly or by cascade).
post_restore = Signal()
