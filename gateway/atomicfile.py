"""Whole-or-nothing file writes for what must survive a power cut half way through.

Temp file beside the target, fsync, rename: a reader sees the old content or the new, never half.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, durably (the rename itself is made durable by the caller
    fsyncing the directory where that matters)."""
    tmp = path.with_name(f".{path.name}.tmp")
    # io.open, not the builtin: it still works from __del__ while the interpreter shuts down,
    # where OSCORE contexts store their sequence numbers (as aiocoap's own code does)
    with io.open(tmp, "w", encoding="utf-8") as handle:  # noqa: UP020
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sync_directory(folder: Path) -> None:
    """fsync ``folder``, so the renames made in it survive a power cut (best effort: a
    filesystem that cannot sync a directory leaves the renames to its own schedule)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
