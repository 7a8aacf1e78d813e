"""Content-addressed storage: each blob is written once, atomically, under its sha256."""

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile


def blob_path(sha256: str) -> Path:
    return Path(settings.FILE_STORAGE_DIR) / sha256[:2] / sha256


class StoreFull(Exception):
    """The storage's disk has no room for this blob (nothing of it is left behind)."""


def store(upload: UploadedFile) -> tuple[str, int]:
    """Write ``upload`` into storage and return (sha256, size); an existing blob is kept as it is.

    An upload spooled on the storage's own file system (``FILE_UPLOAD_TEMP_DIR`` on its volume) is
    linked into place, not copied: the last step is one atomic link. Any other is copied to a temporary
    file beside the blobs and renamed into place. Raises ``StoreFull`` when the disk is full or over
    quota; the partial copy is removed first.
    """
    root = Path(settings.FILE_STORAGE_DIR)
    root.mkdir(parents=True, exist_ok=True)
    spooled = _spooled_beside(upload, root)
    if spooled is not None:
        return _link(upload, spooled)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in upload.chunks():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        target = blob_path(digest.hexdigest())
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFull("the file store has no room for this file") from None
        raise
    return digest.hexdigest(), size


def _spooled_beside(upload: UploadedFile, root: Path) -> Path | None:
    """The path of ``upload``'s spool file when it is on ``root``'s file system, else ``None``."""
    if not isinstance(upload, TemporaryUploadedFile):
        return None
    path = Path(upload.temporary_file_path())
    return path if path.stat().st_dev == root.stat().st_dev else None


def _link(upload: UploadedFile, spooled: Path) -> tuple[str, int]:
    """Hash the spooled file, make it durable, and link it in as its blob (the spool file goes with its request)."""
    digest, size = hashlib.sha256(), 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.file.flush()
    os.fsync(upload.fileno())
    target = blob_path(digest.hexdigest())
    try:
        target.parent.mkdir(exist_ok=True)
        os.link(spooled, target)
    except FileExistsError:
        pass  # the same bytes are stored already
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a new directory's block, on a full disk
            raise StoreFull("the file store has no room for this file") from None
        raise
    return digest.hexdigest(), size
