"""Which points a command line names: exact ``device/point`` names and shell-style globs
(``lamp-*/level``), checked against the buffer's and the config's points with a did-you-mean."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..problems import did_you_mean

_GLOB_CHARS = re.compile(r"[*?\[]")


def is_glob(pattern: str) -> bool:
    return _GLOB_CHARS.search(pattern) is not None


@dataclass(frozen=True, slots=True)
class SelectionProblem:
    """A pattern of a point selection that finds no readings, in words for the technician."""

    message: str
    #: the name is in neither the buffer nor the config: most likely a typo
    unknown: bool


@dataclass(frozen=True, slots=True)
class PointSelection:
    """The patterns given (none = every point); ``matches`` tests one point name."""

    patterns: tuple[str, ...]

    @property
    def everything(self) -> bool:
        return not self.patterns

    def matches(self, name: str) -> bool:
        return self.everything or any(
            fnmatch.fnmatchcase(name, p) if is_glob(p) else name == p for p in self.patterns
        )

    def select(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if self.matches(n)]

    def problems(self, buffered: Sequence[str], configured: Iterable[str]) -> list[SelectionProblem]:
        """What a technician should hear about patterns that name nothing: a typo gets a
        did-you-mean; a configured point with no reading yet is said plainly."""
        configured = set(configured)
        known = sorted(set(buffered) | configured)
        out: list[SelectionProblem] = []
        for pattern in self.patterns:
            if is_glob(pattern):
                if not any(fnmatch.fnmatchcase(n, pattern) for n in known):
                    out.append(SelectionProblem(f"no point matches '{pattern}'", unknown=True))
            elif pattern not in buffered:
                if pattern in configured:
                    out.append(SelectionProblem(f"no readings for {pattern} yet", unknown=False))
                else:
                    out.append(
                        SelectionProblem(
                            f"no point '{pattern}' in the buffer or the config{did_you_mean(pattern, known)}",
                            unknown=True,
                        )
                    )
        return out
