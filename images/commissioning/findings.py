"""What commissioning found wrong in a site folder: file (as the technician sees it), line, message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["site", "rules"]

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True, slots=True)
class Finding:
    file: str  # e.g. "gateway/gateway.toml" (on the card) or "/etc/gateway/..." (installed)
    message: str
    line: int | None = None
    kind: Kind = "site"  # "rules": the daemon keeps the file's last good version

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message, "kind": self.kind}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Finding:
        line = data.get("line")
        return cls(
            str(data["file"]),
            str(data["message"]),
            line if isinstance(line, int) else None,
            "rules" if data.get("kind") == "rules" else "site",
        )


def line_from_message(message: str) -> int | None:
    """tomllib puts the position in its message: '... (at line 19, column 3)'."""
    match = _AT_LINE.search(message)
    return int(match.group(1)) if match else None


def key_line(text: str, table: str, key: str) -> int | None:
    """Line (1-based) of ``key = ...`` inside ``[table]`` ('' for the top level); a best effort."""
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            current = line.strip("[] ").strip()
            continue
        if line.startswith("[["):
            current = line.strip("[] ").strip()
            continue
        if current == table and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return None


def table_line(text: str, table: str) -> int | None:
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip().strip("[] ").strip() == table and raw.strip().startswith("["):
            return number
    return None
