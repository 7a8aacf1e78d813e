"""Content-addressed storage: each blob is written once, atomically, under its sha256."""

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile


def blob_path(sha256: str) -> Path:
    return Path(settings.FILE_STORAGE_DIR) / sha256[:2] / sha256


class StoreFull(Exception):
    """The storage's disk has no room for this blob (nothing of it is left behind)."""


def store(upload: UploadedFile) -> tuple[str, int]:
    """Write ``upload`` into storage and return (sha256, size); an existing blob is kept as it is.

    Raises ``StoreFull`` when the disk is full or over quota; the partial copy is removed first.
    """
    root = Path(settings.FILE_STORAGE_DIR)
    root.mkdir(parents=True, exist_ok=True)
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
