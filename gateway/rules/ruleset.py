"""The rules directory: which files are loaded, which edits were rejected, and reloading.

A changed file is re-read whole; if it has any problem the previous good version of that
file keeps running and the problems are kept for health and ``gateway check``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..driver import PointSpec
from ..problems import Problem
from .loader import RuleFile, load_rule_file, read_raw, virtual_points_in
from .model import Rule

Signature = tuple[float, int]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    changed: bool
    loaded: tuple[str, ...]
    removed: tuple[str, ...]
    rejected: tuple[str, ...]
    problems: tuple[Problem, ...]


class RuleDirectory:
    def __init__(self, directory: Path, points: Mapping[str, PointSpec], *, site_has_location: bool = True):
        self.directory = directory
        self.points = points
        self.site_has_location = site_has_location
        self.active: dict[Path, RuleFile] = {}
        self.rejected: dict[Path, RuleFile] = {}
        self._seen: dict[Path, Signature | None] = {}

    def scan(self) -> dict[Path, Signature | None]:
        """(mtime, size) of every ``*.toml`` in the directory: one stat per file, cheap."""
        found: dict[Path, Signature | None] = {}
        try:
            entries = sorted(self.directory.glob("*.toml"))
        except OSError:
            return found
        for path in entries:
            if path.name.startswith("."):
                continue
            try:
                stat = path.stat()
                found[path] = (stat.st_mtime, stat.st_size)
            except OSError:
                found[path] = None
        return found

    def changed(self) -> bool:
        return self.scan() != self._seen

    def reload(self) -> ReloadResult:
        current = self.scan()
        loaded: list[str] = []
        rejected: list[str] = []
        removed = [str(p) for p in self._seen if p not in current]
        for path in list(self.active):
            if path not in current:
                del self.active[path]
        for path in list(self.rejected):
            if path not in current:
                del self.rejected[path]
        edited = [p for p, sig in current.items() if self._seen.get(p, "new") != sig]
        for path in edited:
            others = {p: f for p, f in self.active.items() if p != path}
            taken = {r.name: str(p) for p, f in others.items() for r in f.rules}
            virtual = {v for f in others.values() for r in f.rules for v in r.publishes}
            for p in current:  # files not loaded yet (first load) may publish points too
                if p != path and p not in self.active:
                    raw, _, _ = read_raw(p)
                    virtual |= virtual_points_in(raw)
            result = load_rule_file(path, self.points, virtual_points=virtual, taken_names=taken,
                                    site_has_location=self.site_has_location)
            if result.ok:
                self.active[path] = result
                self.rejected.pop(path, None)
                loaded.append(str(path))
            else:
                self.rejected[path] = result
                rejected.append(str(path))
        self._seen = current
        problems = tuple(p for f in self.rejected.values() for p in f.problems)
        return ReloadResult(bool(loaded or removed), tuple(loaded), tuple(removed), tuple(rejected), problems)

    @property
    def rules(self) -> list[Rule]:
        return [r for path in sorted(self.active) for r in self.active[path].rules]

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.rejected.values() for p in f.problems]

    def health(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "files": {path.name: len(f.rules) for path, f in sorted(self.active.items())},
            "rejected": {path.name: [str(p) for p in f.problems] for path, f in sorted(self.rejected.items())},
        }
