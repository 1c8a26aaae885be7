"""The circuit breaker's backoff schedule and the RTU CRC check, as pure functions."""

from drivers.modbus.breaker import CircuitBreaker
from drivers.modbus.constants import rtu_frame_gap
from drivers.modbus.wire import crc16, looks_like_reply, rtu_crc_ok, with_crc


def test_breaker_opens_on_first_failure_and_doubles_up_to_the_cap():
    breaker = CircuitBreaker(backoff_min=1.0, backoff_max=4.0)
    assert breaker.allows(0.0)
    assert breaker.failure(0.0) is True  # just went offline
    assert not breaker.allows(0.5)
    assert breaker.allows(1.0)
    periods = []
    now = 1.0
    for _ in range(4):
        assert breaker.failure(now) is False
        periods.append(breaker.retry_at - now)
        now = breaker.retry_at
    assert periods == [2.0, 4.0, 4.0, 4.0]
    assert breaker.success() is True
    assert breaker.allows(now) and not breaker.is_open


def test_breaker_threshold_tolerates_single_glitches():
    breaker = CircuitBreaker(threshold=3)
    assert not breaker.failure(0) and not breaker.failure(0)
    assert breaker.allows(0)
    assert breaker.failure(0) and not breaker.allows(0.1)
    assert breaker.trips == 1


def test_at_most_one_probe_per_backoff_period():
    breaker = CircuitBreaker(backoff_min=2.0, backoff_max=2.0)
    probes = 0
    t = 0.0
    while t < 20.0:  # a poller asking every 100 ms
        if breaker.allows(t):
            probes += 1
            breaker.failure(t)
        t += 0.1
    assert probes <= 11


def test_crc_of_the_reference_frame():
    # Read 10 holding registers from unit 1: 01 03 00 00 00 0A C5 CD
    frame = bytes.fromhex("01030000000A")
    assert crc16(frame) == 0xCDC5
    assert with_crc(frame).hex() == "01030000000ac5cd"
    assert rtu_crc_ok(bytes.fromhex("01030000000AC5CD"))
    assert not rtu_crc_ok(bytes.fromhex("01030000000AC5CE"))
    assert not rtu_crc_ok(b"\x01")


def test_reply_shape_recognises_exceptions_and_other_units():
    assert looks_like_reply(bytes.fromhex("0103020000"), unit=1, function=3)
    assert looks_like_reply(bytes.fromhex("8302"), unit=0x83, function=3) is False
    assert looks_like_reply(bytes.fromhex("018302"), unit=1, function=3)
    assert not looks_like_reply(bytes.fromhex("020302"), unit=1, function=3)


def test_rtu_frame_gap_follows_the_serial_line_guide():
    assert abs(rtu_frame_gap(9600) - 3.5 * 11 / 9600) < 1e-9
    assert rtu_frame_gap(115200) == 0.00175
