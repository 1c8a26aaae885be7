"""The one judgement of the gateway's health (sans-IO) and plain-word error texts."""

from __future__ import annotations

import errno
import socket

import pytest

from gateway.judgement import (
    DEGRADED,
    NEVER_SEEN,
    OFFLINE,
    OK,
    ONLINE,
    STALE,
    STARTING,
    default_stale_after,
    device_status,
    hours_of_buffer_left,
    judge,
    status_line,
)
from gateway.plain import error_reason, plain_error

NOW = 1_800_000_000.0


def device(status: str, **extra: object) -> dict:
    return {"status": status, "last_reading_at": NOW - 1, **extra}


def health(**parts: object) -> dict:
    base: dict = {
        "devices": {"lamp-1": device(ONLINE)},
        "store": {"committed_readings": 10},
        "components": {},
    }
    base.update(parts)
    return base


def status_of(**kwargs: object) -> str:
    args = {
        "state": "running",
        "last_reading_at": NOW - 1,
        "running_since": NOW - 100,
        "stale_after": 30.0,
        "detail": {},
        "now": NOW,
    }
    args.update(kwargs)
    return device_status(**args)  # type: ignore[arg-type]


def test_device_states():
    assert status_of() == ONLINE
    assert status_of(last_reading_at=NOW - 31) == STALE
    assert status_of(last_reading_at=None) == NEVER_SEEN
    assert status_of(last_reading_at=None, running_since=NOW - 5) == STARTING  # a fair wait first
    assert status_of(state="backoff") == OFFLINE
    assert status_of(detail={"online": False}) == OFFLINE  # Modbus: breaker open
    assert status_of(detail={"connected": False}) == OFFLINE  # serial: port gone
    assert status_of(detail={"online": None}) == ONLINE  # not known yet is not down
    assert status_of(last_reading_at=NOW - 10_000, stale_after=None) == ONLINE  # a door contact
    assert status_of(state="disabled") == "disabled"


def test_stale_after_defaults():
    assert default_stale_after(10.0, None) == 30.0  # a few poll intervals
    assert default_stale_after(0.1, None) == 5.0  # never absurdly short
    assert default_stale_after(None, 60.0) == 60.0  # push device: its driver kind's default
    assert default_stale_after(None, None) is None


def test_healthy_gateway_is_ok():
    judgement = judge(health(), NOW)
    assert judgement.status == OK and judgement.reasons == ()
    assert status_line(health(), judgement) == "ok; 1/1 devices online; 10 readings stored"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (
            {"devices": {"meter-1": device(OFFLINE, last_error="connection refused")}},
            "device meter-1 is offline: connection refused",
        ),
        (
            {"devices": {"air-1": device(STALE, last_reading_at=NOW - 300)}},
            "device air-1 is stale: no reading for 5 min",
        ),
        (
            {"devices": {"node-1": device(NEVER_SEEN, last_reading_at=None)}},
            "device node-1 has never sent a reading",
        ),
        (
            {
                "components": {
                    "upstreams": {"cloud": {"failures_in_row": 3, "last_error": "no answer in time"}}
                }
            },
            "upstream cloud is failing (3 attempts in a row): no answer in time",
        ),
        (
            {"components": {"upstreams": {"cloud": {"failures_in_row": 1, "failing_since_ts": NOW - 61}}}},
            "upstream cloud is failing (1 attempts in a row)",
        ),
        (
            {
                "components": {
                    "rules": {"rejected": {"dim.toml": ["dim.toml:3: unknown point 'lamp-1/trafic'"]}}
                }
            },
            "rule file dim.toml is rejected: dim.toml:3: unknown point 'lamp-1/trafic'",
        ),
        ({"store": {"last_error": "disk I/O error"}}, "the buffer cannot commit: disk I/O error"),
        (
            {"store": {"full": True, "last_error": "database or disk is full"}},
            "the buffer cannot commit: the disk is full: database or disk is full",
        ),
    ],
)
def test_each_cause_degrades_with_a_reason(parts, reason):
    h = health(**parts)
    judgement = judge(h, NOW)
    assert judgement.status == DEGRADED and judgement.reasons == (reason,)
    assert status_line(h, judgement).startswith(f"degraded: {reason};")


def test_one_failed_retry_is_not_yet_degraded():
    h = health(components={"upstreams": {"cloud": {"failures_in_row": 1, "failing_since_ts": NOW - 2}}})
    assert judge(h, NOW).status == OK


def test_hours_of_buffer_left():
    store = {"used_bytes": 100_000_000, "hard_max_bytes": 1_000_000_000}
    assert hours_of_buffer_left(store, 25_000.0) == pytest.approx(10.0)
    assert hours_of_buffer_left({**store, "used_bytes": None}, 25_000.0) is None
    assert hours_of_buffer_left(store, 0.0) is None


def raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


class NetworkError(Exception):
    """Stands in for aiocoap's, whose str() is only its class name."""

    def __str__(self) -> str:
        return "Network error: NetworkError"


def test_plain_errors():
    refused = raised_from(NetworkError(), ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert plain_error(refused) == "connection refused: nothing is listening at that address and port"
    assert error_reason(refused) == "connection refused"
    assert plain_error(NetworkError()) == "network error"
    assert plain_error(TimeoutError()) == "no answer in time" and error_reason(TimeoutError()) == "no answer"
    assert plain_error(FileNotFoundError(errno.ENOENT, "No such file", "/dev/ttyUSB0")).startswith(
        "the port does not exist"
    )
    assert plain_error(socket.gaierror(-2, "Name or service not known")).startswith("the host name could not")
    assert plain_error(ValueError("frame too short"), what="air-1") == "air-1: frame too short"
