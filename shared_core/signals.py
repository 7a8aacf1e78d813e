"""Signals sent by soft delete and restore, so a service can carry them further.

Both are sent once per row that changed (the root and every cascaded child),
inside the transaction that changed it, once the whole cascade is written,
with ``sender`` the model class and the keyword arguments ``instance`` (the
row as it now is in the database), ``using`` (the database alias) and
``deleted_at`` (the stamp of the deletion that was made, or that was undone).
A row that a concurrent deletion took first is not announced by the second.
Rows are only loaded for a model that has receivers, in chunks of 500
(the internal ``DEFAULT_SIGNAL_CHUNK_SIZE``); without receivers a bulk
soft delete stays one UPDATE per model.

Receivers that call other services should defer the call with
``transaction.on_commit`` so a rolled-back deletion is never announced.
"""

from django.dispatch import Signal

__all__ = ["post_restore", "post_soft_delete"]

#: Sent after a row was soft-deleted (directly or by cascade).
post_soft_delete = Signal()

#: Sent after a row was restored (directly or by cascade).
post_restore = Signal()
