"""Sans-IO parser for ASCII sensors and counters: lines matched by regexes with named groups.

Each named group maps to a point with a type, scale, offset and unit; lines that match no
pattern and no ``ignore`` pattern are reported as bad frames carrying their text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gateway.model import Value

from . import line_constants as C
from .events import BadFrame, Event, Frame, Junk, Sample


@dataclass(frozen=True, slots=True)
class LineField:
    name: str
    group: str
    type: str = "float"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    true_values: tuple[str, ...] = C.DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = C.DEFAULT_FALSE_VALUES

    def convert(self, text: str) -> Value:
        """The point value for the group's ``text``; ValueError when it is not one."""
        text = text.strip()
        if self.type == "string":
            return text
        if self.type == "bool":
            folded = text.casefold()
            if folded in self.true_values:
                return True
            if folded in self.false_values:
                return False
            raise ValueError(f"{self.name}: {text!r} is neither a true nor a false value")
        if self.type == "int":
            number = int(text, 10)
            if self.scale == 1.0 and self.offset == 0.0:
                return number
            return round(self._scaled(number, text))
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {text!r} is not a finite number")
        return self._scaled(value, text) if (self.scale != 1.0 or self.offset != 0.0) else value

    def _scaled(self, number: float, text: str) -> float:
        # A 400-digit count cannot become a float, and 1e300 times a scale may overflow.
        try:
            value = number * self.scale + self.offset
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {text!r} scaled is out of range")
        return value


@dataclass(frozen=True, slots=True)
class LineRules:
    patterns: tuple[re.Pattern[str], ...]
    fields: tuple[LineField, ...]
    ignore: tuple[re.Pattern[str], ...] = ()
    terminator: bytes = C.DEFAULT_TERMINATOR.encode()
    encoding: str = C.DEFAULT_ENCODING
    max_length: int = C.DEFAULT_MAX_LINE


class LineParser:
    def __init__(self, rules: LineRules) -> None:
        self.rules = rules
        self._buf = bytearray()
        self._by_group = {f.group: f for f in rules.fields}
        # A "\n" terminator also accepts "\r\n": most devices send that.
        self._strip = b"\r" if rules.terminator == b"\n" else b""
        self._discarding = False

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[Event]:
        buf = self._buf
        buf += data
        out: list[Event] = []
        term = self.rules.terminator
        pos = 0
        while True:
            end = buf.find(term, pos)
            if end < 0:
                if len(buf) - pos > self.rules.max_length:
                    if not self._discarding:
                        out.append(BadFrame("overlong", len(buf) - pos))
                        self._discarding = True
                    else:
                        out.append(Junk(len(buf) - pos))
                    pos = len(buf)
                break
            raw = bytes(buf[pos:end])
            pos = end + len(term)
            if self._discarding:
                # The tail of an overlong line: its start is already counted.
                self._discarding = False
                out.append(Junk(len(raw) + len(term)))
                continue
            if self._strip:
                raw = raw.rstrip(self._strip)
            if not raw:
                continue
            if len(raw) > self.rules.max_length:
                out.append(BadFrame("overlong", len(raw)))
                continue
            out.append(self._line(raw))
        del buf[:pos]
        return out

    def _line(self, raw: bytes) -> Event:
        try:
            text = raw.decode(self.rules.encoding)
        except (UnicodeDecodeError, LookupError):
            return BadFrame("encoding", len(raw), raw.decode("ascii", "replace"))
        if any(p.search(text) for p in self.rules.ignore):
            return Frame("ignored", text=text)
        for pattern in self.rules.patterns:
            match = pattern.search(text)
            if match is None:
                continue
            samples = []
            for group, value in match.groupdict().items():
                field = self._by_group.get(group)
                if field is None or value is None:
                    continue
                try:
                    samples.append(Sample(field.name, field.convert(value), field.unit))
                except ValueError:
                    return BadFrame("bad_value", len(raw), text)
            return Frame("line", tuple(samples), text=text)
        return BadFrame("no_match", len(raw), text)
