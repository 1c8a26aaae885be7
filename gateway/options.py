"""Typed reading of one TOML table with every problem reported, unknown keys included.

Config sections, driver options, profiles and rule files all read their tables through
``Table`` so that wrong types, missing keys and misspellings read the same everywhere.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any, TypeVar, overload

from .problems import Problems, did_you_mean
from .units import parse_duration, parse_size

T = TypeVar("T")
D = TypeVar("D")


class _Missing:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Missing()

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a table",
    list: "a list",
}


class Table:
    """One TOML table read with types: each reader records a wrong type, a missing required
    key or an out-of-range value as a problem under the table's key, and ``finish()``
    reports the keys nobody read."""

    def __init__(self, raw: Any, problems: Problems, prefix: str = ""):
        self.problems = problems
        self.prefix = prefix
        self.seen: set[str] = set()
        if isinstance(raw, dict):
            self.raw: dict[str, Any] = raw
        else:
            self.raw = {}
            problems.add(prefix, f"must be a table, got {type(raw).__name__}")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        return name in self.raw

    def error(self, name: str, message: str) -> None:
        self.problems.add(self.key(name), message)

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(name)
        if name not in self.raw:
            if default is REQUIRED:
                self.error(name, "is required")
                return None
            return default
        value = self.raw[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int subclass in Python, but `port = true` is a mistake, not a 1.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            names = [_TYPE_NAMES.get(k, k.__name__) for k in kinds if not (k is int and float in kinds)]
            wanted = " or ".join(names)
            self.error(name, f"must be {wanted}, got {value!r}")
            return None if default is REQUIRED else default
        return value

    # Each reader returns the value, or ``default`` when the key is absent. A required key that
    # is absent or of the wrong kind is a problem and reads as None: the caller's config is
    # refused once the problems are collected, so None never reaches the running gateway.
    @overload
    def str(
        self, name: builtins.str, *, choices: Sequence[builtins.str] | None = None
    ) -> builtins.str | None: ...
    @overload
    def str(
        self, name: builtins.str, default: D, choices: Sequence[builtins.str] | None = None
    ) -> builtins.str | D: ...
    def str(
        self, name: builtins.str, default: Any = REQUIRED, choices: Sequence[builtins.str] | None = None
    ) -> Any:
        value = self._get(name, str, default)
        if choices is not None and isinstance(value, str) and value not in choices:
            self.error(name, f"'{value}' is not one of {', '.join(choices)}{did_you_mean(value, choices)}")
            return None if default is REQUIRED else default
        return value

    @overload
    def int(
        self, name: builtins.str, *, min: builtins.int | None = None, max: builtins.int | None = None
    ) -> builtins.int | None: ...
    @overload
    def int(
        self, name: builtins.str, default: D, min: builtins.int | None = None, max: builtins.int | None = None
    ) -> builtins.int | D: ...
    def int(
        self,
        name: builtins.str,
        default: Any = REQUIRED,
        min: builtins.int | None = None,
        max: builtins.int | None = None,
    ) -> Any:
        value = self._get(name, int, default)
        return self._bounded(name, value, min, max, default)

    @overload
    def float(
        self, name: builtins.str, *, min: builtins.float | None = None, max: builtins.float | None = None
    ) -> builtins.float | None: ...
    @overload
    def float(
        self,
        name: builtins.str,
        default: D,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> builtins.float | D: ...
    def float(
        self,
        name: builtins.str,
        default: Any = REQUIRED,
        min: builtins.float | None = None,
        max: builtins.float | None = None,
    ) -> Any:
        value = self._get(name, (int, float), default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = self._finite(name, value, default)
        return self._bounded(name, value, min, max, default)

    def _finite(self, name: builtins.str, value: builtins.int | builtins.float, default: Any) -> Any:
        """``value`` as a finite float; TOML allows inf, nan and integers of any length."""
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.error(name, f"must be a finite number, got {str(value)[:40]}")
            return None if default is REQUIRED else default
        return number

    @overload
    def bool(self, name: builtins.str) -> builtins.bool | None: ...
    @overload
    def bool(self, name: builtins.str, default: D) -> builtins.bool | D: ...
    def bool(self, name: builtins.str, default: Any = REQUIRED) -> Any:
        return self._get(name, bool, default)

    @overload
    def number_or_str(
        self, name: builtins.str
    ) -> builtins.int | builtins.float | builtins.str | builtins.bool | None: ...
    @overload
    def number_or_str(
        self, name: builtins.str, default: D
    ) -> builtins.int | builtins.float | builtins.str | builtins.bool | D: ...
    def number_or_str(self, name: builtins.str, default: Any = REQUIRED) -> Any:
        return self._get(name, (int, float, str, bool), default)

    @overload
    def duration(self, name: builtins.str, *, min: builtins.float | None = None) -> builtins.float | None: ...
    @overload
    def duration(
        self, name: builtins.str, default: D, min: builtins.float | None = None
    ) -> builtins.float | D: ...
    def duration(self, name: builtins.str, default: Any = REQUIRED, min: builtins.float | None = None) -> Any:
        """Seconds, from a string with its unit ("500ms", "10s", "15m", "1h30m").

        A bare number is refused: ``interval = 10`` reads as seconds to one technician and
        minutes to the next, so the message says what to write instead."""
        raw = self.raw.get(name)
        value = self._get(name, (str, int, float), default)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            try:
                shown = f"{raw:g}"
            except OverflowError:  # an integer of 400 digits has no float form
                shown = f"{str(raw)[:20]}..."
            self.error(
                name,
                f'needs a unit: write "{shown}s" for seconds (or e.g. "500ms",'
                f' "15m", "2h", "7d"), got the bare number {shown}',
            )
            return None if default is REQUIRED else default
        if isinstance(value, str):
            try:
                value = parse_duration(value)
            except ValueError as exc:
                self.error(name, str(exc))
                return None if default is REQUIRED else default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._bounded(name, self._finite(name, value, default), min, None, default)
        return value

    @overload
    def size(self, name: builtins.str) -> builtins.int | None: ...
    @overload
    def size(self, name: builtins.str, default: D) -> builtins.int | D: ...
    def size(self, name: builtins.str, default: Any = REQUIRED) -> Any:
        value = self._get(name, (str, int), default)
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError as exc:
                self.error(name, str(exc))
                return None if default is REQUIRED else default
        return value

    def table(self, name: builtins.str, required: builtins.bool = False) -> Table:
        value = self._get(name, dict, REQUIRED if required else {})
        return Table(value if isinstance(value, dict) else {}, self.problems, self.key(name))

    @overload
    def list(self, name: builtins.str) -> builtins.list[Any] | None: ...
    @overload
    def list(self, name: builtins.str, default: D) -> builtins.list[Any] | D: ...
    def list(self, name: builtins.str, default: Any = REQUIRED) -> Any:
        return self._get(name, list, default)

    def tables(self, name: builtins.str) -> builtins.list[Table]:
        """An array of tables such as [[devices]]; element keys read as name[i]."""
        value = self._get(name, list, [])
        out: builtins.list[Table] = []
        for index, item in enumerate(value or []):
            out.append(Table(item, self.problems, f"{self.key(name)}[{index}]"))
        return out

    def _bounded(self, name: builtins.str, value: Any, min: Any, max: Any, default: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if min is not None and value < min:
                self.error(name, f"must be at least {min}, got {value}")
                return None if default is REQUIRED else default
            if max is not None and value > max:
                self.error(name, f"must be at most {max}, got {value}")
                return None if default is REQUIRED else default
        return value

    def finish(self, extra_known: Sequence[builtins.str] = ()) -> None:
        """Report keys that nobody read: they are typos or options this version lacks."""
        known = sorted(self.seen | set(extra_known))
        for name in self.raw:
            if name not in self.seen and name not in extra_known:
                self.error(name, f"unknown key '{name}'{did_you_mean(name, known)}")
