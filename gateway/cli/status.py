"""``gateway status``: the running daemon's health, for the technician at the cabinet.

Reads the health snapshot the daemon writes to its data directory (see ``gateway.snapshot``),
so it needs neither the CoAP API nor a running event loop. Exit status: 0 healthy,
1 degraded, 2 daemon not running or its state unreadable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..judgement import DEGRADED, OK, update_summary
from ..snapshot import Snapshot, SnapshotUnreadable, read_snapshot
from .common import add_config_arg, load_or_report
from .timefmt import duration, short_time, site_zone, zone_text

EXIT_HEALTHY = 0
EXIT_DEGRADED = 1
EXIT_NOT_RUNNING = 2

#: the uplink's own state names, as a technician would say them
UPLINK_STATES = {
    "idle": "up to date",
    "lingering": "batching",
    "sent": "sent",
    "sending": "sending",
    "backoff": "retrying",
    "starting": "starting",
}

WIDTH = 80
CLEAR = "\x1b[H\x1b[2J"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "status",
        help="show whether the running gateway works, and why not",
        description="Health of the running daemon, read from the snapshot it writes "
        "to its data directory. Exit status: 0 healthy, 1 degraded, "
        "2 not running or unreadable.",
    )
    add_config_arg(parser)
    parser.add_argument("--json", action="store_true", help="print the full health snapshot as JSON")
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="refresh in place every SECONDS (default 2) until Ctrl-C",
    )
    parser.add_argument("--utc", action="store_true", help="show times in UTC instead of the site's zone")
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, check_data_dir=False)
    if config is None:
        return EXIT_NOT_RUNNING
    data_dir = config.site.data_dir
    zone = site_zone(config.site.timezone, utc=args.utc)
    if args.watch is None:
        code, text = report(data_dir, zone, as_json=args.json)
        print(text)
        return code
    code = EXIT_NOT_RUNNING
    try:
        while True:
            code, text = report(data_dir, zone, as_json=args.json)
            sys.stdout.write(CLEAR + text + "\n")
            sys.stdout.flush()
            time.sleep(max(args.watch, 0.2))
    except KeyboardInterrupt:
        return code


def report(
    data_dir: Path, zone: dt.tzinfo, *, as_json: bool = False, now: float | None = None
) -> tuple[int, str]:
    """(exit status, text) for the snapshot in ``data_dir``."""
    now = time.time() if now is None else now
    try:
        snapshot = read_snapshot(data_dir, now)
    except SnapshotUnreadable as exc:
        return EXIT_NOT_RUNNING, _not_running(str(exc), as_json)
    why = _not_running_reason(snapshot, zone, now)
    if why is not None:
        return EXIT_NOT_RUNNING, _not_running(why, as_json)
    health = snapshot.health
    code = EXIT_HEALTHY if health.get("status") == OK else EXIT_DEGRADED
    if as_json:
        return code, json.dumps(
            {
                "running": True,
                "status": health.get("status"),
                "reasons": health.get("reasons", []),
                "snapshot_age_s": round(snapshot.age_s, 1),
                "health": health,
            },
            indent=2,
        )
    return code, render(health, zone, now)


def _not_running_reason(snapshot: Snapshot, zone: dt.tzinfo, now: float) -> str | None:
    pid = snapshot.health.get("snapshot", {}).get("pid")
    if isinstance(pid, int) and not _alive(pid):
        return f"the daemon is not running: process {pid}, which wrote the last health snapshot, has exited"
    if snapshot.stale:
        written = snapshot.health["snapshot"]["written_at"]
        return (
            f"the daemon is not running or not answering: its last health snapshot is "
            f"{duration(snapshot.age_s)} old (written {short_time(written, zone, now)})"
        )
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and owned by the gateway user
        return True
    return True


def _not_running(why: str, as_json: bool) -> str:
    if as_json:
        return json.dumps({"running": False, "status": None, "error": why}, indent=2)
    return "\n".join(
        [*_wrap(f"NOT RUNNING: {why}"), "  see: systemctl status gateway   and   journalctl -u gateway -e"]
    )


# -- the table ---------------------------------------------------------------------------


def render(health: Mapping[str, Any], zone: dt.tzinfo, now: float) -> str:
    gateway = health.get("gateway", {})
    lines: list[str] = []
    title = f"gateway {gateway.get('id', '?')}"
    if gateway.get("name") and gateway.get("name") != gateway.get("id"):
        title += f" ({gateway['name']})"
    right = f"version {gateway.get('version', '?')}, up {duration(gateway.get('uptime_s'))}"
    lines.append(_two_sides(title, right))
    clock = ", clock synced" if gateway.get("clock_synced", True) else " (clock not synced)"
    lines.append(f"times in {zone_text(zone, now)}{clock}")
    status = health.get("status", "?")
    lines.append("")
    lines.append(f"STATUS: {'OK' if status == OK else 'DEGRADED' if status == DEGRADED else status}")
    for reason in health.get("reasons", []):
        lines.extend(_wrap(reason, first="  - ", rest="    "))
    update = update_summary(health.get("update"))
    if update:
        when = health["update"].get("at")
        at = f" ({short_time(when, zone, now)})" if isinstance(when, (int, float)) else ""
        lines.extend(_wrap(f"last update{at}: {update}", first="", rest="  "))
    lines.append("")
    lines.extend(_devices(health.get("devices", {}), zone, now))
    components = health.get("components", {})
    lines.append("")
    lines.extend(_upstreams(components.get("upstreams"), zone, now))
    lines.append("")
    lines.extend(_buffer(health.get("store", {}), health.get("buffer", {})))
    lines.append("")
    lines.extend(_rules(components.get("rules")))
    lines.append("")
    lines.extend(_overrides(health.get("actuation", {}).get("overrides", {}), zone, now))
    return "\n".join(lines)


def _devices(devices: Mapping[str, Any], zone: dt.tzinfo, now: float) -> list[str]:
    lines = [f"{'DEVICE':<17}{'DRIVER':<10}{'STATUS':<12}{'LAST READING':<19}{'READINGS':>10}"]
    if not devices:
        lines.append("  (no devices configured)")
    for name, device in devices.items():
        lines.append(
            f"{_cut(name, 16):<17}{_cut(device.get('driver', ''), 9):<10}{device.get('status', '?'):<12}"
            f"{short_time(device.get('last_reading_at'), zone, now):<19}{device.get('readings', 0):>10}"
        )
        errors = device.get("errors") or {}
        if errors:
            counts = ", ".join(f"{reason} {count}" for reason, count in errors.items())
            lines.extend(_wrap(f"errors: {counts}", first="  ", rest="          "))
        if device.get("last_error"):
            at = device.get("last_error_at")
            when = f" ({short_time(at, zone, now)})" if at else ""
            lines.extend(_wrap(f"last error{when}: {device['last_error']}", first="  ", rest="    "))
    return lines


def _upstreams(upstreams: Mapping[str, Any] | None, zone: dt.tzinfo, now: float) -> list[str]:
    lines = [f"{'UPSTREAM':<18}{'STATE':<10}{'LAG':>20}  {'LAST SUCCESS':<19}"]
    if not upstreams:
        lines.append("  (no upstreams configured)")
        return lines
    for name, up in upstreams.items():
        lag = f"{up.get('lag_readings', 0)} rdg / {duration(up.get('lag_seconds'))}"
        state = UPLINK_STATES.get(up.get("state", "?"), up.get("state", "?"))
        lines.append(
            f"{_cut(name, 17):<18}{_cut(state, 9):<10}{lag:>20}  "
            f"{short_time(up.get('last_success_ts'), zone, now):<19}"
        )
        if up.get("last_error"):
            failures = up.get("failures_in_row", 0)
            tail = f" ({failures} attempts in a row)" if failures else ""
            at = up.get("last_error_ts")
            when = f" ({short_time(at, zone, now)})" if at else ""
            lines.extend(_wrap(f"last error{when}: {up['last_error']}{tail}", first="  ", rest="    "))
    return lines


def _buffer(store: Mapping[str, Any], buffer: Mapping[str, Any]) -> list[str]:
    used = store.get("used_bytes")
    lines = ["BUFFER"]
    soft, hard = store.get("max_bytes"), store.get("hard_max_bytes")
    if used is None:
        lines.append(f"  used: not measured yet (soft quota {_size(soft)}, hard quota {_size(hard)})")
    else:
        lines.append(
            f"  used {_size(used)}: {_share(used, soft)} of the {_size(soft)} soft quota, "
            f"{_share(used, hard)} of the {_size(hard)} hard quota"
        )
    lines.append(
        f"  evicted {store.get('evicted_forwarded', 0)} forwarded, {store.get('evicted_age', 0)} by age; "
        f"dropped {store.get('dropped_unforwarded', 0)} unforwarded, "
        f"{store.get('dropped_readings', 0)} while stalled"
    )
    rate = buffer.get("ingest_readings_per_s")
    hours = buffer.get("hours_left")
    if rate is None:
        lines.append("  ingest rate: not measured yet")
    else:
        left = "unknown" if hours is None else f"{hours:,.1f} h"
        lines.extend(
            _wrap(
                f"ingest {rate:.1f} readings/s ({_size(buffer.get('ingest_bytes_per_s'))}/s): "
                f"{left} of buffer left before unforwarded readings would be dropped",
                first="  ",
                rest="  ",
            )
        )
    if store.get("last_error"):
        lines.extend(_wrap(f"last error: {store['last_error']}", first="  ", rest="    "))
    return lines


def _rules(rules: Mapping[str, Any] | None) -> list[str]:
    if rules is None:
        return ["RULES  (no [rules] section)"]
    files = rules.get("files", {})
    lines = _wrap(f"RULES  {rules.get('directory', '')}", rest="       ")
    rejected = rules.get("rejected", {})
    outcome = rules.get("rejected_outcome", {})
    for name, count in files.items():
        mark = "rejected, older version runs" if name in rejected else "loaded"
        lines.append(f"  {_cut(name, 40):<42}{count:>3} rule{'s' if count != 1 else ' '}  {mark}")
    for name, problems in rejected.items():
        runs = {
            "skipped_failsafe": "skipped; its actuators are at their fail-safe values",
            "accepted_copy_runs": "its last accepted copy runs",
            "previous_version_kept": "the version loaded before runs",
        }.get(outcome.get(name, ""), "")
        if name not in files:
            lines.append(f"  {_cut(name, 40):<42}      rejected")
        lines.extend(_wrap(f"rejected: {runs}", first="    ", rest="      "))
        for problem in problems:
            lines.extend(_wrap(problem, first="    ", rest="      "))
    if not files and not rejected:
        lines.append("  (no rule files)")
    return lines


def _overrides(overrides: Mapping[str, Any], zone: dt.tzinfo, now: float) -> list[str]:
    if not overrides:
        return ["OVERRIDES  none active"]
    lines = ["OVERRIDES"]
    for point, override in overrides.items():
        until = override.get("until")
        until_text = "until cleared" if until is None else f"until {short_time(until, zone, now)}"
        source = f" (by {override['source']})" if override.get("source") else ""
        lines.extend(
            _wrap(f"{point} = {override.get('value')!r} {until_text}{source}", first="  ", rest="    ")
        )
    return lines


# -- helpers -------------------------------------------------------------------------------


def _wrap(text: str, *, first: str = "", rest: str = "  ") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _two_sides(left: str, right: str) -> str:
    room = WIDTH - len(right) - 1
    return f"{_cut(left, room):<{room}} {right}"


def _share(used: Any, quota: Any) -> str:
    if used is None or not quota:
        return "?%"
    return f"{100.0 * float(used) / float(quota):.1f}%"


def _size(value: Any) -> str:
    if value is None:
        return "?"
    number = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(number) < 1000 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1000
    return f"{number:.1f} TB"
