"""Entry points of installed packages, read from their ``entry_points.txt`` files.

What ``importlib.metadata.entry_points(group=...)`` answers for packages installed in
directories on ``sys.path``, without importing importlib.metadata (with email, zipfile,
csv, ... about 2.7 MB in the daemon). A zip file on the path falls back to it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass

METADATA_DIRS = (".dist-info", ".egg-info")


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """``name = module:attr.attr [extras]`` in one group; ``load()`` imports it."""

    name: str
    value: str
    group: str

    def load(self) -> object:
        """The object the value names, imported; what it is, the caller checks."""
        match = re.fullmatch(
            r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(?P<extras>\[.*\])?\s*", self.value
        )
        if match is None:
            raise ValueError(f"entry point {self.group}:{self.name} has a malformed value {self.value!r}")
        target: object = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            target = getattr(target, attr)
        return target


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _metadata_dirs(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path or ".") as entries:
            found = [entry for entry in entries if entry.name.endswith(METADATA_DIRS)]
    except OSError:
        return []
    return sorted(found, key=lambda entry: entry.name.endswith(".egg-info"))  # as importlib.metadata


def _sections(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), [])
        elif current is not None:
            name, _, value = line.partition("=")
            current.append((name.strip(), value.strip()))
    return sections


def entry_points(group: str) -> list[EntryPoint]:
    """Every installed distribution's entry points in ``group``; the first distribution of
    a name on ``sys.path`` wins, as with importlib.metadata."""
    if any(os.path.isfile(path) for path in sys.path if path):
        from importlib.metadata import entry_points as metadata_entry_points

        return [EntryPoint(ep.name, ep.value, group) for ep in metadata_entry_points(group=group)]
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for path in sys.path:
        for entry in _metadata_dirs(path):
            distribution = _normalized(os.path.splitext(entry.name)[0].partition("-")[0])
            if distribution in seen:
                continue
            seen.add(distribution)
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:  # no entry points, or an egg-info file rather than a directory
                continue
            found += [EntryPoint(name, value, group) for name, value in _sections(text).get(group, [])]
    return found
