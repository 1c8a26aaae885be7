"""The last accepted version of every rule file, kept in the data directory.

When a rule file is broken at start (an edit, then a power cut), its last accepted copy runs
instead, so one typo never leaves a cabinet without its rules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

from ..atomicfile import sync_directory, write_atomically

#: folder under the data directory holding one copy per rule file, under the file's own name
FOLDER = "rules-accepted"


class AcceptedCopies:
    """Read and write the accepted copies; ``readonly`` for commands that only report."""

    def __init__(self, data_dir: Path, *, readonly: bool = False):
        self.folder = data_dir / FOLDER
        self.readonly = readonly

    def _copy(self, rule_file: Path) -> Path:
        return self.folder / rule_file.name

    def load(self, rule_file: Path) -> str | None:
        """The accepted text of ``rule_file``, or None if none was ever accepted."""
        try:
            return self._copy(rule_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def accepted_at(self, rule_file: Path) -> str | None:
        """When the copy was written (UTC, ISO), for reports."""
        try:
            mtime = self._copy(rule_file).stat().st_mtime
        except OSError:
            return None
        return dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def save(self, rule_file: Path, text: str) -> None:
        """Keep ``text`` as the accepted version: written whole or not at all (power cuts)."""
        if self.readonly or self.load(rule_file) == text:
            return  # unchanged: spare the SD card a write at every start
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self._copy(rule_file), text)
        self._sync_folder()

    def forget(self, rule_file: Path) -> None:
        """The rule file was removed from the rules directory: its rules must not come back."""
        if self.readonly:
            return
        with contextlib.suppress(FileNotFoundError):
            self._copy(rule_file).unlink()
            self._sync_folder()

    def names(self) -> list[str]:
        try:
            return sorted(p.name for p in self.folder.glob("*.toml") if not p.name.startswith("."))
        except OSError:
            return []

    def _sync_folder(self) -> None:
        sync_directory(self.folder)
