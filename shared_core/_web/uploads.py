"""Uploads spooled to disk within a budget, and removed as soon as their request ends.

``service_settings`` installs ``SpoolUploadHandler`` after Django's memory
handler: a file part larger than ``FILE_UPLOAD_MAX_MEMORY_SIZE`` is written to
``FILE_UPLOAD_TEMP_DIR`` (when unset, ``DEFAULT_SPOOL_DIR``, made on first
use), a directory of its own, never the rest of ``/tmp`` that the process
needs to run. A service that keeps uploads sets it to a directory on the
volume it keeps them in (file-service: ``/data/uploads``), so storing one is
a link, not a copy, and uploads are bounded by that volume, not by ``/tmp``.

Contract:

- Before a part is spooled, the room it may need (the request's
  ``Content-Length``, at most ``FILE_UPLOAD_MAX_BYTES``) is reserved on disk
  with ``posix_fallocate`` under an exclusive lock on the directory. When the
  files already there plus this one would pass ``FILE_UPLOAD_SPOOL_BYTES``
  (``0``: no budget but the disk's), or would leave the file system less free
  room than ``FILE_UPLOAD_SPOOL_RESERVE_BYTES``, or the file system has no
  room, ``UploadSpoolFull`` is raised: the API answers 507
  ``insufficient_storage`` and nothing is left behind. A full disk is
  therefore a clean refusal, never a worker dying mid-write, and the reserve
  keeps room for what else writes there (a database on the same volume).
- A part that grows past ``FILE_UPLOAD_MAX_BYTES`` is refused at that byte
  (``RequestDataTooBig``, a 413), not after the whole body was spooled.
- Every spooled file is closed and removed when its request ends, however it
  ended (the parser failed half-way, the client went away, the view raised):
  ``RequestContextMiddleware`` calls ``release()``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler
from django.http import HttpRequest

__all__ = [
    "DEFAULT_SPOOL_BYTES",
    "DEFAULT_SPOOL_DIR",
    "DEFAULT_SPOOL_RESERVE_BYTES",
    "SpoolUploadHandler",
    "UploadSpoolFull",
    "release",
    "spool_usage",
]

#: Where uploads are spooled unless ``FILE_UPLOAD_TEMP_DIR`` says otherwise.
DEFAULT_SPOOL_DIR: Final = "/tmp/uploads"  # noqa: S108 - the container's private tmpfs, in a directory of its own
#: Bytes all uploads being spooled at once may take; ``FILE_UPLOAD_SPOOL_BYTES`` (``0``: as much as the disk has).
DEFAULT_SPOOL_BYTES: Final = 32 * 1024 * 1024
#: Free bytes uploads leave on the spool's file system; ``FILE_UPLOAD_SPOOL_RESERVE_BYTES``.
DEFAULT_SPOOL_RESERVE_BYTES: Final = 16 * 1024 * 1024
_LOCK_NAME: Final = ".lock"


class UploadSpoolFull(Exception):
    """No room to spool this upload now (budget or disk): answered 507, worth retrying later."""


def spool_usage(directory: str | os.PathLike[str]) -> int:
    """Bytes the files in ``directory`` take on disk (what is allocated, reserved room included)."""
    used = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name != _LOCK_NAME and entry.is_file(follow_symlinks=False):
                try:
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                except FileNotFoundError:  # removed by its request meanwhile
                    continue
    return used


class _SpooledFile(TemporaryUploadedFile):
    """Django's temporary upload, in ``directory`` rather than ``FILE_UPLOAD_TEMP_DIR`` (which may be unset)."""

    def __init__(self, directory: Path, name: str, content_type: str | None, charset: str | None, extra: Any) -> None:
        suffix = ".upload" + os.path.splitext(name)[1][:32]
        file = tempfile.NamedTemporaryFile(suffix=suffix, dir=directory)  # noqa: SIM115 - closed with the upload
        UploadedFile.__init__(self, file, name, content_type, 0, charset, extra)


class SpoolUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler with a reservation, a size limit and removal at the request's end."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = DEFAULT_SPOOL_BYTES
        self.request_length: int | None = None
        self.received = 0
        self.spooled: list[Any] = []

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        # FILE_UPLOAD_MAX_BYTES (service_settings sets it); unset, no part may be larger than the spool's budget.
        self.limit = int(getattr(settings, "FILE_UPLOAD_MAX_BYTES", DEFAULT_SPOOL_BYTES))
        self.request_length = content_length
        if self.request is not None:
            self.request.__dict__.setdefault("_spool_handlers", []).append(self)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        self.received = 0
        directory = Path(getattr(settings, "FILE_UPLOAD_TEMP_DIR", None) or DEFAULT_SPOOL_DIR)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        budget = int(getattr(settings, "FILE_UPLOAD_SPOOL_BYTES", DEFAULT_SPOOL_BYTES))
        reserve = int(getattr(settings, "FILE_UPLOAD_SPOOL_RESERVE_BYTES", DEFAULT_SPOOL_RESERVE_BYTES))
        room = min(self.request_length or self.limit, self.limit) or 1
        if budget and room > budget:
            raise UploadSpoolFull(f"an upload of {room} bytes is larger than the spool's budget of {budget} bytes")
        with open(directory / _LOCK_NAME, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if budget and spool_usage(directory) + room > budget:
                raise UploadSpoolFull("uploads in progress fill the spool's budget; retry later")
            disk = os.statvfs(directory)
            if disk.f_bavail * disk.f_frsize - room < reserve:
                raise UploadSpoolFull("the spool's disk has no room for this upload above its reserve; retry later")
            FileUploadHandler.new_file(self, *args, **kwargs)
            name = self.file_name or "upload"
            self.file = _SpooledFile(directory, name, self.content_type, self.charset, self.content_type_extra)
            self.spooled.append(self.file)
            try:
                os.posix_fallocate(self.file.fileno(), 0, room)
            except OSError:
                self.discard()
                raise UploadSpoolFull("the spool's disk has no room for this upload; retry later") from None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise RequestDataTooBig(f"the file is larger than {self.limit} bytes")
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> Any:
        os.ftruncate(self.file.fileno(), file_size)  # give back the reserved room it did not use
        return super().file_complete(file_size)

    def discard(self) -> None:
        """Close and remove every file this handler spooled (idempotent)."""
        while self.spooled:
            file = self.spooled.pop()
            path = file.temporary_file_path()
            file.close()
            Path(path).unlink(missing_ok=True)


def release(request: HttpRequest) -> None:
    """Remove every file ``request`` spooled (called when its response is done)."""
    for handler in getattr(request, "_spool_handlers", ()):
        handler.discard()
