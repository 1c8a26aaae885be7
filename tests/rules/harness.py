"""Runs one data-driven rules case: a folder with case.toml, rules.toml, timeline.txt and
expected.txt (or expected.err), through the sans-IO engine on a simulated clock."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gateway.actuators import parse_actuators_section
from gateway.driver import PointSpec
from gateway.model import Reading
from gateway.problems import Problems
from gateway.rules.engine import Engine
from gateway.rules.loader import load_rule_file
from gateway.rules.replay import format_command, replay
from gateway.rules.timeofday import SiteTimes
from gateway.units import parse_duration

DEFAULT_START = "2026-01-15T12:00:00Z"


@dataclass
class Case:
    folder: Path
    start: float
    times: SiteTimes
    points: dict[str, PointSpec]
    actuators: dict
    stale_after: float


def parse_offset(text: str) -> float:
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    return sign * parse_duration(text.lstrip("+-"))


def load_case(folder: Path) -> Case:
    raw = tomllib.loads((folder / "case.toml").read_text()) if (folder / "case.toml").exists() else {}
    start = dt.datetime.fromisoformat(raw.get("start", DEFAULT_START).replace("Z", "+00:00")).timestamp()
    times = SiteTimes(raw.get("timezone", "UTC"), raw.get("latitude"), raw.get("longitude"))
    points: dict[str, PointSpec] = {}
    for name, description in raw.get("points", {}).items():
        words = description.split()
        points[name] = PointSpec(name.split("/", 1)[1], kind=words[0], writable="writable" in words)
    problems = Problems(str(folder / "case.toml"))
    actuators = parse_actuators_section(raw.get("actuators", {}), problems, points)
    problems.raise_if_any()
    return Case(
        folder, start, times, points, dict(actuators.points), parse_duration(raw.get("stale_after", "5m"))
    )


def read_timeline(path: Path, start: float) -> tuple[list[Reading], float]:
    readings: list[Reading] = []
    end = start
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        offset, point, *rest = line.split(None, 2)
        ts = start + parse_offset(offset)
        end = max(end, ts)
        if point == "end":
            continue
        readings.append(Reading(point, json.loads(rest[0]), ts))
    return readings, end


def read_expected(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            offset, rest = line.split(None, 1)
            out.append(f"{format_offset_norm(offset)} {rest}")
    return out


def format_offset_norm(text: str) -> str:
    return f"{parse_offset(text):+.3f}s"


def run_case(folder: Path) -> tuple[list[str], list[str]]:
    """(expected lines, actual lines) for the case; load errors compare as 'error: ...' lines."""
    case = load_case(folder)
    result = load_rule_file(folder / "rules.toml", case.points)
    if (folder / "expected.err").exists():
        wanted = [
            line.strip()
            for line in (folder / "expected.err").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        got = [str(p).replace(f"{folder}/", "") for p in result.problems]
        return wanted, got or ["(file loaded without error)"]
    assert result.ok, "\n".join(str(p) for p in result.problems)
    engine = Engine(case.times, case.actuators, now=case.start, default_stale_after=case.stale_after)
    engine.load(result.rules)
    readings, end = read_timeline(folder / "timeline.txt", case.start)
    outcome = replay(engine, readings, end=end)
    actual = []
    for command in outcome.commands:
        offset, rest = format_command(command, case.start).split(" ", 1)
        rest = rest.split("  (", 1)[0]
        actual.append(f"{format_offset_norm(offset)} {rest}")
    return read_expected(folder / "expected.txt"), actual
