"""Which points one upstream receives: ``include`` / ``exclude`` globs over point names.

Sans-IO: a point name in, yes or no out (answers cached per name, point names are few).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..model import StoredReading


@dataclass(frozen=True, slots=True)
class PointFilter:
    """A point goes to the upstream when it matches one ``include`` glob (or ``include`` is
    empty) and no ``exclude`` glob. Globs are shell-style (``*``, ``?``, ``[...]``) and
    case-sensitive; ``*`` also matches ``/``, so ``lamp-*`` takes ``lamp-3/level``."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _cache: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def everything(self) -> bool:
        return not self.include and not self.exclude

    def matches(self, point: str) -> bool:
        if self.everything:
            return True
        known = self._cache.get(point)
        if known is None:
            known = (
                not self.include or any(fnmatch.fnmatchcase(point, p) for p in self.include)
            ) and not any(fnmatch.fnmatchcase(point, p) for p in self.exclude)
            if len(self._cache) < 100_000:
                self._cache[point] = known
        return known

    def select(self, readings: Sequence[StoredReading]) -> list[StoredReading]:
        if self.everything:
            return list(readings)
        return [r for r in readings if self.matches(r.point)]

    def unmatched(self, names: Iterable[str]) -> list[str]:
        """``include`` globs that take none of ``names`` (configured points): likely typos."""
        names = list(names)
        return [p for p in self.include if not any(fnmatch.fnmatchcase(n, p) for n in names)]
