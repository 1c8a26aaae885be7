"""The rules directory: which files are loaded, which edits were rejected, and reloading.

A changed file is re-read whole; if it has any problem the previous good version of that
file keeps running and the problems are kept for health and ``gateway check``. At start the
previous good version is the accepted copy in the data directory; a broken file without one
is skipped, and the actuators it would write are held at their fail-safe values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..driver import PointSpec
from ..problems import Problem, Problems
from .accepted import AcceptedCopies
from .loader import (
    RuleFile,
    load_rule_file,
    parse_rule_text,
    parse_toml,
    read_raw,
    virtual_points_in,
    written_points_in,
)
from .model import Rule

Signature = tuple[float, int]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload of the rule directory did: files loaded, removed, rejected or restored."""

    changed: bool
    loaded: tuple[str, ...]
    removed: tuple[str, ...]
    rejected: tuple[str, ...]
    problems: tuple[Problem, ...]
    #: broken files whose accepted copy from the data directory now runs instead
    restored: tuple[str, ...] = ()


class RuleDirectory:
    """The rule files of one directory: which are active, which rejected and which run their
    last accepted copy instead; ``reload`` reads what changed."""

    def __init__(
        self,
        directory: Path,
        points: Mapping[str, PointSpec],
        *,
        site_has_location: bool = True,
        accepted: AcceptedCopies | None = None,
    ):
        self.directory = directory
        self.points = points
        self.site_has_location = site_has_location
        self.accepted = accepted
        self.active: dict[Path, RuleFile] = {}
        self.rejected: dict[Path, RuleFile] = {}
        #: broken files running their accepted copy, and why a copy could not run
        self.restored: set[Path] = set()
        self.copy_problems: dict[Path, list[Problem]] = {}
        self._seen: dict[Path, Signature | None] = {}
        self._listed_once = False
        self._to_save: dict[Path, str] = {}
        self._to_forget: set[Path] = set()

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
        restored: list[str] = []
        removed = [str(p) for p in self._seen if p not in current]
        for path in list(self.active):
            if path not in current:
                del self.active[path]
        for path in list(self.rejected):
            if path not in current:
                del self.rejected[path]
        for path in [Path(p) for p in removed]:
            self.restored.discard(path)
            self.copy_problems.pop(path, None)
            self._to_save.pop(path, None)
            self._to_forget.add(path)  # a removed file's rules must not come back at the next start
        if not self._listed_once and self.accepted is not None:
            self._listed_once = True
            names = {p.name for p in current}
            self._to_forget |= {self.directory / n for n in self.accepted.names() if n not in names}
        edited = [p for p, sig in current.items() if self._seen.get(p, "new") != sig]
        for path in edited:
            others = {p: f for p, f in self.active.items() if p != path}
            taken = {r.name: str(p) for p, f in others.items() for r in f.rules}
            virtual = {v for f in others.values() for r in f.rules for v in r.publishes}
            for p in current:  # files not loaded yet (first load) may publish points too
                if p != path and p not in self.active:
                    raw, _, _ = read_raw(p)
                    virtual |= virtual_points_in(raw)
            result = load_rule_file(
                path,
                self.points,
                virtual_points=virtual,
                taken_names=taken,
                site_has_location=self.site_has_location,
            )
            if result.ok:
                self.active[path] = result
                self.rejected.pop(path, None)
                self.restored.discard(path)
                self.copy_problems.pop(path, None)
                self._to_save[path] = result.text
                self._to_forget.discard(path)
                loaded.append(str(path))
                continue
            self.rejected[path] = result
            rejected.append(str(path))
            if path not in self.active and self._restore(path, virtual, taken):
                restored.append(str(path))
        self._seen = current
        problems = tuple(p for f in self.rejected.values() for p in f.problems)
        return ReloadResult(
            bool(loaded or removed or restored),
            tuple(loaded),
            tuple(removed),
            tuple(rejected),
            problems,
            tuple(restored),
        )

    def _restore(self, path: Path, virtual: set[str], taken: Mapping[str, str]) -> bool:
        """Run the accepted copy of the broken file ``path``, if there is one that still loads."""
        text = self.accepted.load(path) if self.accepted is not None else None
        if text is None:
            return False
        raw, _, problems = parse_toml(text, Problems(str(path)))
        copy = (
            None
            if raw is None
            else parse_rule_text(
                path,
                raw,
                text,
                self.points,
                virtual_points=virtual,
                taken_names=taken,
                site_has_location=self.site_has_location,
            )
        )
        if copy is None or not copy.ok:
            # e.g. the site config no longer has a point the accepted version reads
            self.copy_problems[path] = [
                dataclasses.replace(p, message=f"its last accepted version cannot run either: {p.message}")
                for p in (problems if copy is None else copy.problems)
            ]
            return False
        self.active[path] = copy
        self.restored.add(path)
        self.copy_problems.pop(path, None)
        return True

    @property
    def skipped(self) -> list[Path]:
        """Broken files with no version running: their actuators are held at their fail-safe."""
        return sorted(p for p in self.rejected if p not in self.active)

    def unguarded_writes(self) -> dict[str, str]:
        """Point -> rule file name, for every point a skipped file would write."""
        held: dict[str, str] = {}
        for path in self.skipped:
            for point in sorted(written_points_in(self.rejected[path].text)):
                held.setdefault(point, path.name)
        return held

    def take_pending(self) -> tuple[dict[Path, str], set[Path]]:
        """Accepted texts to keep and removed files to forget since the last call."""
        save, forget = self._to_save, self._to_forget
        self._to_save, self._to_forget = {}, set()
        return save, forget

    def write_copies(self, save: Mapping[Path, str], forget: set[Path]) -> None:
        """Keep what ``take_pending`` returned; blocking file IO, run it off the event loop."""
        if self.accepted is None:
            return
        for path, text in save.items():
            self.accepted.save(path, text)
        for path in forget:
            self.accepted.forget(path)

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
            "rejected": {
                path.name: [str(p) for p in f.problems] for path, f in sorted(self.rejected.items())
            },
            # what runs for each rejected file: the version loaded earlier by this process, the
            # accepted copy from the data directory, or nothing (actuators at their fail-safe)
            "rejected_outcome": {path.name: self.outcome(path) for path in sorted(self.rejected)},
        }

    def outcome(self, path: Path) -> str:
        if path not in self.active:
            return "skipped_failsafe"
        return "accepted_copy_runs" if path in self.restored else "previous_version_kept"
