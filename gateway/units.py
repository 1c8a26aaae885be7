"""Parsing of human-written durations ("15m", "500ms") and sizes ("200MB") from config files."""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_SCALE = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(text: str) -> float:
    """Seconds from '250ms', '5s', '15m', '2h', '7d'; compound forms like '1h30m' too."""
    remaining = text.strip()
    if not remaining:
        raise ValueError("empty duration")
    total = 0.0
    for match in re.finditer(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", remaining):
        total += float(match.group(1)) * _DURATION_SCALE[match.group(2)]
    if re.fullmatch(r"(\s*\d+(?:\.\d+)?\s*(ms|s|m|h|d)\s*)+", remaining) is None:
        raise ValueError(f"'{text[:60]}' is not a duration; write e.g. 500ms, 30s, 15m, 2h or 7d")
    return total


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"'{text[:60]}' is not a size; write e.g. 512MB, 2GiB or 1000000")
    unit = (match.group(2) or "B").lower()
    size = float(match.group(1)) * _SIZE_SCALE[unit]
    if size >= 2**63:  # also infinity, from 400 digits: no disk is that large
        raise ValueError(f"'{text[:40]}' is too large a size")
    return int(size)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= scale and seconds % scale == 0:
            return f"{int(seconds // scale)}{unit}"
    return f"{seconds:g}s"
