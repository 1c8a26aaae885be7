"""The one path every actuator write takes: overrides, safety limits, the driver, the record.

Rules, the CoAP API and the CLI all write through ``Actuation.write`` so limits and
overrides hold no matter who asks; every write taken, skipped or failed becomes an event,
best effort: a record never waits on the store, and one the store has no room for is counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .actuators import ActuatorSettings
from .clock import Clock
from .devices import Devices
from .driver import WriteError
from .model import Reading, StoredReading, Value
from .overrides import Overrides

log = logging.getLogger("gateway.actuation")

#: where write records go, as JSON text readings (buffered and forwarded like any reading)
EVENT_POINT = "events/actuation"
AUTOMATIC_SOURCES = ("rule:", "failsafe:")
#: commands from an upstream platform: held by a manual override like a rule, and refused
#: (not clamped) outside the point's limits like a person's write, so the platform hears why
REMOTE_SOURCES = ("platform:",)
#: record results that mean a value reached the device
WRITTEN_RESULTS = ("written", "clamped", "ramping")
#: at start, how many write records (newest first) are searched for the last write of each
#: rate- or interval-limited point; a point not written in them starts without a history
RESUME_SCAN_LIMIT = 100_000


class WriteSkipped(WriteError):
    """The write was not sent: an override holds the point, or it is too soon after the last.

    ``retry_at`` (epoch seconds) says when the same write would be accepted, if known."""

    def __init__(self, message: str, retry_at: float | None = None):
        super().__init__(message)
        self.retry_at = retry_at


class LimitError(WriteError):
    """A manual write asked for a value outside the point's configured min..max."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What a write did: the value asked for, the value written, and whether it was clamped
    or is still ramping."""

    point: str
    requested: Value
    written: Value
    result: str  # written | clamped | ramping
    #: when a ramp (max_rate) must continue towards ``requested``; None when it arrived
    retry_at: float | None = None


class Actuation:
    """The one path every write to a device takes (rules, overrides, the API, upstream
    commands): limits, ramps and minimum intervals applied, each write recorded as an
    ``events/actuation`` reading, and the last writes resumed after a restart."""

    def __init__(
        self,
        devices: Devices,
        overrides: Overrides,
        clock: Clock,
        *,
        record: Callable[[Sequence[Reading]], bool] | None = None,
        settings: Mapping[str, ActuatorSettings] | None = None,
    ):
        self.devices = devices
        self.overrides = overrides
        self.clock = clock
        #: set by the service so write records reach the buffer: ``Hub.publish_nowait``,
        #: which never waits and returns False when the store had no room for the record
        self.record = record
        self.settings: Mapping[str, ActuatorSettings] = (
            devices.config.actuators.points if settings is None else settings
        )
        self._last: dict[str, tuple[Value, float]] = {}
        self._applied_overrides: dict[str, float] = {}
        self._unfinished: set[str] = set()  # overrides still ramping or waiting on min_interval
        self.counts = {"written": 0, "clamped": 0, "ramping": 0, "skipped": 0, "failed": 0}
        self.dropped_records = 0  # write records the store had no room for

    def limited_points(self) -> set[str]:
        """Points whose limits depend on the previous write (``max_rate``, ``min_interval``)."""
        return {p for p, s in self.settings.items() if s.max_rate is not None or s.min_interval}

    def last_writes_in(self, records: Iterable[StoredReading]) -> dict[str, tuple[Value, float]]:
        """The newest value and time written to each limited point, from ``events/actuation``
        records newest first (see ``Store.scan_newest``). Pure: runs on the store's reader."""
        wanted = self.limited_points()
        found: dict[str, tuple[Value, float]] = {}
        for scanned, record in enumerate(records):
            if len(found) == len(wanted) or scanned >= RESUME_SCAN_LIMIT:
                break
            try:
                body = json.loads(record.value) if isinstance(record.value, str) else None
            except ValueError:
                continue
            if not isinstance(body, dict) or body.get("result") not in WRITTEN_RESULTS:
                continue
            point, written = body.get("point"), body.get("written", body.get("value"))
            if point in wanted and point not in found and isinstance(written, bool | int | float | str):
                found[point] = (written, record.ts)
        return found

    def resume(self, last_writes: Mapping[str, tuple[Value, float]]) -> None:
        """Start the limits from writes made before this process started (loaded at start-up,
        so no write ever waits on the store). A write stamped later than now (the clock went
        back across the restart) counts as made now, so a limit can never hold a point for
        longer than its own span."""
        now = self.clock.time()
        for point, (value, ts) in last_writes.items():
            if point not in self._last:
                self._last[point] = (value, min(ts, now))
                log.info("event=limits_resumed point=%s value=%r written_at=%s", point, value, _iso(ts))

    def last_value(self, point: str) -> Value | None:
        last = self._last.get(point)
        return None if last is None else last[0]

    async def write(self, point: str, value: Value, *, source: str, reason: str = "") -> WriteOutcome:
        """Write ``value`` to ``point`` on behalf of ``source`` ("rule:<name>", "failsafe:<rule>",
        "api", "cli", "override:<who>", "platform:<upstream>").

        Raises WriteSkipped (override holds, min_interval), LimitError (manual value out of
        range) or WriteError (unknown point, device refused). Every outcome is recorded.
        """
        automatic = source.startswith(AUTOMATIC_SOURCES)
        now = self.clock.time()
        try:
            override = self.overrides.active(point)
            if override is not None and (automatic or source.startswith(REMOTE_SOURCES)):
                raise WriteSkipped(f"{point}: held by a manual override until {_iso(override.until)}")
            written, result, retry_at = self._apply_limits(point, value, automatic, now)
            await self.devices.write(point, written)
        except WriteSkipped as exc:
            self.counts["skipped"] += 1
            log.info(
                "event=write_skipped point=%s value=%r source=%s reason=%r", point, value, source, str(exc)
            )
            self._record(point, value, None, source, "skipped", str(exc), now)
            raise
        except WriteError as exc:
            self.counts["failed"] += 1
            log.warning(
                "event=write_failed point=%s value=%r source=%s error=%r", point, value, source, str(exc)
            )
            self._record(point, value, None, source, "failed", str(exc), now)
            raise
        self._last[point] = (written, now)
        self.counts[result] += 1
        log.info("event=write point=%s value=%r source=%s result=%s", point, written, source, result)
        self._record(point, value, written, source, result, reason, now)
        return WriteOutcome(point, value, written, result, retry_at)

    def _apply_limits(
        self, point: str, value: Value, automatic: bool, now: float
    ) -> tuple[Value, str, float | None]:
        settings = self.settings.get(point)
        if settings is None:
            return value, "written", None
        out_of_range = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (
                (settings.min is not None and value < settings.min)
                or (settings.max is not None and value > settings.max)
            )
        )
        if out_of_range and not automatic:
            raise LimitError(
                f"{point}: {value!r} is outside the allowed range {_fmt(settings.min)}..{_fmt(settings.max)}"
            )
        last = self._last.get(point)
        if last is not None and settings.min_interval and now - last[1] < settings.min_interval:
            raise WriteSkipped(
                f"{point}: last write {now - last[1]:.1f}s ago, min_interval is {settings.min_interval:g}s",
                last[1] + settings.min_interval,
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, "written", None
        result = "written"
        target: float = value
        if out_of_range:
            target = min(
                max(target, settings.min if settings.min is not None else target),
                settings.max if settings.max is not None else target,
            )
            result = "clamped"
        retry_at: float | None = None
        if settings.max_rate is not None and last is not None and isinstance(last[0], int | float):
            allowed = settings.max_rate * (now - last[1])
            delta = target - float(last[0])
            if abs(delta) > allowed:
                target = float(last[0]) + (allowed if delta > 0 else -allowed)
                result = "ramping"
                retry_at = now + max(settings.min_interval, 1.0)
        return (value if result == "written" else target), result, retry_at

    def _record(
        self,
        point: str,
        requested: Value,
        written: Value | None,
        source: str,
        result: str,
        reason: str,
        now: float,
    ) -> None:
        """Best effort and never awaited: street lighting must not wait on its log."""
        if self.record is None:
            return
        body: dict[str, Any] = {"point": point, "value": requested, "source": source, "result": result}
        if written is not None and written != requested:
            body["written"] = written
        if reason:
            body["reason"] = reason
        reading = Reading(
            EVENT_POINT, json.dumps(body, separators=(",", ":")), now, clock_synced=self.clock.synced()
        )
        try:
            if not self.record([reading]):
                self.dropped_records += 1
        except Exception as exc:  # noqa: BLE001 - a record must never break a write
            self.dropped_records += 1
            log.warning("event=record_failed point=%s error=%r", point, str(exc))

    async def sync_overrides(self) -> tuple[list[str], list[str]]:
        """Pick up overrides set by other processes (``gateway override``) and apply them.

        Returns (points newly overridden, points whose override ended or was cleared) so the
        rules engine can step back or take over again.
        """
        await self.overrides.load()
        started: list[str] = []
        active = {o.point: o for o in self.overrides.all()}
        for point, override in active.items():
            if self._applied_overrides.get(point) == override.set_at:
                if point not in self._unfinished:
                    continue
            else:
                self._applied_overrides[point] = override.set_at
                started.append(point)
                log.info(
                    "event=override_started point=%s value=%r until=%s source=%s",
                    point,
                    override.value,
                    _iso(override.until),
                    override.source,
                )
            self._unfinished.discard(point)
            try:
                outcome = await self.write(
                    point,
                    override.value,
                    source=f"override:{override.source}",
                    reason=f"manual override until {_iso(override.until)}",
                )
                if outcome.retry_at is not None:  # ramping under max_rate: continue next round
                    self._unfinished.add(point)
            except WriteSkipped:
                self._unfinished.add(point)  # min_interval: try again next round
            except WriteError:
                pass  # recorded by write(); the override still holds the point for rules
        ended = [p for p in self._applied_overrides if p not in active]
        for point in ended:
            del self._applied_overrides[point]
            self._unfinished.discard(point)
            log.info("event=override_ended point=%s", point)
        return started, ended

    def health(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "dropped_records": self.dropped_records,
            "overrides": self.overrides.health(),
        }


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
