"""Whether the gateway is healthy, judged from its health snapshot: status and plain reasons.

Pure code over the health dict (no I/O, no clock of its own): ``/health``, ``gateway status``
and the systemd ``STATUS=`` line all call ``judge`` so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OK = "ok"
DEGRADED = "degraded"

#: device statuses; only ONLINE (and DISABLED, STARTING) count as delivering
ONLINE = "online"
OFFLINE = "offline"
STALE = "stale"
NEVER_SEEN = "never seen"
STARTING = "starting"
DISABLED = "disabled"
NOT_DELIVERING = (OFFLINE, STALE, NEVER_SEEN)

#: an upstream is failed (not just retrying) after this many attempts in a row ...
UPSTREAM_FAILURES = 3
#: ... or after failing for this long, whichever comes first
UPSTREAM_FAILING_S = 60.0

#: a polled device is stale after this many intervals without a reading, and never sooner
STALE_INTERVALS = 3
MIN_STALE_S = 5.0


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on a health snapshot: ok or degraded, and the plain reasons for it."""

    status: str  # OK | DEGRADED
    reasons: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return self.status == OK


def default_stale_after(interval: float | None, driver_default: float | None) -> float | None:
    """Silence after which a device is stale: a few poll intervals for a polled device, the
    driver kind's own default for a push device (None: silence is normal, e.g. a door contact)."""
    if interval is not None:
        return max(STALE_INTERVALS * interval, MIN_STALE_S)
    return driver_default


def link_down(detail: Mapping[str, Any]) -> bool:
    """What the driver says of its port or connection: Modbus reports ``online``, serial
    links ``connected``; False (not None: not known yet) means the link is down."""
    return detail.get("online") is False or detail.get("connected") is False


def device_status(
    *,
    state: str,
    last_reading_at: float | None,
    running_since: float | None,
    stale_after: float | None,
    detail: Mapping[str, Any],
    now: float,
) -> str:
    """online | offline | stale | never seen | starting | disabled, for one device."""
    if state == "disabled":
        return DISABLED
    if state in ("backoff", "stopped") or link_down(detail):
        return OFFLINE
    if state == "starting" or running_since is None:
        return STARTING
    if last_reading_at is None:
        if stale_after is not None and now - running_since < stale_after:
            return STARTING
        return NEVER_SEEN if stale_after is not None else ONLINE
    if stale_after is not None and now - last_reading_at > stale_after:
        return STALE
    return ONLINE


def upstream_failed(upstream: Mapping[str, Any], now: float) -> bool:
    """Retrying once is normal on a cellular link; failing again and again is not."""
    if upstream.get("failures_in_row", 0) >= UPSTREAM_FAILURES:
        return True
    since = upstream.get("failing_since_ts")
    return since is not None and now - since >= UPSTREAM_FAILING_S


def judge(health: Mapping[str, Any], now: float) -> Judgement:
    """The gateway is degraded when any device is not delivering, any upstream has failed
    beyond ``UPSTREAM_FAILURES``/``UPSTREAM_FAILING_S``, a rule file is rejected, or the
    store cannot commit. Reasons are sentences a technician can act on."""
    reasons: list[str] = []
    for name, device in sorted(health.get("devices", {}).items()):
        status = device.get("status")
        if status not in NOT_DELIVERING:
            continue
        why = device.get("last_error")
        if status == STALE:
            reasons.append(
                f"device {name} is stale: no reading for {_ago(now, device.get('last_reading_at'))}"
            )
        elif status == NEVER_SEEN:
            reasons.append(f"device {name} has never sent a reading" + (f" ({why})" if why else ""))
        else:
            reasons.append(f"device {name} is offline" + (f": {why}" if why else ""))
    components = health.get("components", {})
    for name, upstream in sorted(components.get("upstreams", {}).items()):
        if upstream_failed(upstream, now):
            reasons.append(
                f"upstream {name} is failing ({upstream.get('failures_in_row', 0)} attempts in a row)"
                + (f": {upstream['last_error']}" if upstream.get("last_error") else "")
            )
    rules = components.get("rules", {})
    for file, problems in sorted(rules.get("rejected", {}).items()):
        first = problems[0] if problems else "rejected"
        reasons.append(f"rule file {file} is rejected: {first}")
    store = health.get("store", {})
    if store.get("full"):
        reasons.append("the buffer cannot commit: the disk is full" + _because(store.get("last_error")))
    elif store.get("last_error") or store.get("stalled"):
        reasons.append("the buffer cannot commit" + _because(store.get("last_error") or "writes are stuck"))
    return Judgement(DEGRADED if reasons else OK, tuple(reasons))


def status_line(health: Mapping[str, Any], judgement: Judgement) -> str:
    """The systemd ``STATUS=`` line: short enough for ``systemctl status``."""
    devices = health.get("devices", {})
    online = sum(1 for d in devices.values() if d.get("status") == ONLINE)
    stored = health.get("store", {}).get("committed_readings", 0)
    head = judgement.status
    if judgement.reasons:
        more = f" (+{len(judgement.reasons) - 1} more)" if len(judgement.reasons) > 1 else ""
        head = f"{head}: {judgement.reasons[0]}{more}"
    return f"{head}; {online}/{len(devices)} devices online; {stored} readings stored"


def update_summary(update: Mapping[str, Any] | None) -> str | None:
    """One sentence on the last A/B update (the image's ``update.json``), or None. A rollback
    does not degrade the gateway (the old version runs as it did), but it is said plainly,
    with the check that failed: /health carries the record, ``gateway status`` this line."""
    if not update:
        return None
    version = update.get("version") or "?"
    if update.get("result") == "committed":
        return f"update to {version} committed (slot {update.get('slot', '?')})"
    if update.get("result") == "rolled-back":
        check = update.get("check")
        status = update.get("exit_status")
        detail = (
            (f" [check {check}" + (f", exit status {status}" if status is not None else "") + "]")
            if check
            else ""
        )
        return (
            f"update to {version} was rolled back, running {update.get('from_version') or '?'} again: "
            f"{update.get('reason') or 'no reason recorded'}{detail}"
        )
    return f"update to {version}: {update.get('result', 'unknown result')}"


def hours_of_buffer_left(store: Mapping[str, Any], ingest_bytes_per_s: float | None) -> float | None:
    """Hours until the hard quota is reached at the current ingest rate, should nothing be
    forwarded meanwhile (after which unforwarded readings are dropped, oldest first). A lower
    bound: forwarded readings evicted at the soft quota only make room. None when unknown."""
    used, hard = store.get("used_bytes"), store.get("hard_max_bytes")
    if used is None or hard is None or not ingest_bytes_per_s or ingest_bytes_per_s <= 0:
        return None
    return float(max(hard - used, 0)) / ingest_bytes_per_s / 3600.0


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "ever"
    seconds = max(now - ts, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _because(error: str | None) -> str:
    return f": {error}" if error else ""
