"""The uplink's reaction to answers, and its backoff, without any network."""

from __future__ import annotations

import random

from gateway.coap import numbers
from gateway.coap.uplink_policy import Action, Backoff, decide


def code(pair: tuple[int, int]) -> int:
    return numbers.raw_code(pair)


def test_every_success_class_code_delivers():
    for pair in (numbers.CODE_CREATED, numbers.CODE_CHANGED, numbers.CODE_CONTENT):
        assert decide(code(pair), None).action is Action.DELIVERED


def test_back_pressure_honours_max_age_and_defaults_to_60s():
    assert decide(code(numbers.CODE_SERVICE_UNAVAILABLE), 30).server_delay == 30
    assert decide(code(numbers.CODE_TOO_MANY_REQUESTS), 5).server_delay == 5
    assert decide(code(numbers.CODE_SERVICE_UNAVAILABLE), None).server_delay == 60


def test_back_pressure_with_max_age_zero_falls_back_to_own_backoff():
    for pair in (numbers.CODE_SERVICE_UNAVAILABLE, numbers.CODE_TOO_MANY_REQUESTS):
        decision = decide(code(pair), 0)
        assert decision.action is Action.RETRY and decision.server_delay is None


def test_other_errors_retry_with_own_backoff_and_too_large_shrinks():
    assert decide(code(numbers.CODE_INTERNAL_SERVER_ERROR), 10).server_delay is None
    assert decide(code(numbers.CODE_BAD_REQUEST), None).action is Action.RETRY
    assert decide(code(numbers.CODE_REQUEST_ENTITY_TOO_LARGE), None).action is Action.SHRINK


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets():
    backoff = Backoff(1.0, 20.0, random.Random(4))
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        ceiling = min(20.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_code_text():
    assert numbers.code_text(0x44) == "2.04"
    assert numbers.code_text(code(numbers.CODE_SERVICE_UNAVAILABLE)) == "5.03"
