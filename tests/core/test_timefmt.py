"""Times and numbers for people: the site's zone with its offset, floats without noise, and a
--since that explains itself."""

import datetime as dt

import pytest

from gateway.cli.timefmt import TimeFormat, exact_value, show_value

WINTER = dt.datetime(2026, 12, 2, 5, 0, 1, 250000, tzinfo=dt.UTC).timestamp()
SUMMER = dt.datetime(2026, 7, 1, 5, 0, 0, tzinfo=dt.UTC).timestamp()


def test_times_in_the_site_zone_carry_its_offset_through_daylight_saving():
    times = TimeFormat.for_site("Europe/Amsterdam")
    assert times.iso(WINTER) == "2026-12-02T06:00:01.250+01:00"
    assert times.iso(SUMMER) == "2026-07-01T07:00:00.000+02:00"
    assert times.text(WINTER) == "2026-12-02 06:00:01.250+01:00"


def test_utc_overrides_the_site_zone_and_reads_as_z():
    times = TimeFormat.for_site("Europe/Amsterdam", utc=True)
    assert times.iso(WINTER) == "2026-12-02T05:00:01.250Z"
    assert TimeFormat.for_site("UTC").text(WINTER) == "2026-12-02 05:00:01.250Z"


def test_a_time_without_offset_is_read_in_the_site_zone():
    times = TimeFormat.for_site("Europe/Amsterdam")
    assert times.parse("2026-12-02T06:00:01.250", now=0) == WINTER
    assert times.parse("2026-12-02 05:00:01.250+00:00", now=0) == WINTER
    assert times.parse("2h", now=10_000.0) == 10_000.0 - 7200
    assert TimeFormat.for_site("Europe/Amsterdam", utc=True).parse("2026-12-02T05:00:01.250", 0) == WINTER


@pytest.mark.parametrize("text", ["5 min", "yesterday", "2026-13-01", ""])
def test_a_bad_since_names_the_accepted_forms(text):
    with pytest.raises(ValueError) as caught:
        TimeFormat.for_site("Europe/Amsterdam").parse(text, now=0)
    message = str(caught.value)
    assert "isoformat" not in message
    assert "a duration back from now (30s, 15m, 2h" in message and "2026-12-02T06:00" in message
    assert "without an offset is in Europe/Amsterdam" in message


def test_floats_from_scaled_registers_read_as_people_write_them():
    assert 2301 * 0.1 == 230.10000000000002
    assert show_value(2301 * 0.1) == "230.1"
    assert show_value(0.1 + 0.2) == "0.3"
    assert show_value(40.0) == "40"
    assert show_value(-0.000123456) == "-0.000123456"
    assert show_value(1234567.891) == "1234567.891"
    assert show_value(True) == "true" and show_value(7) == "7" and show_value("FULL") == "FULL"


def test_file_values_read_back_as_the_same_double():
    for value in (2301 * 0.1, 0.1 + 0.2, 1e-300, 2**53 + 0.0, 3.141592653589793):
        assert float(exact_value(value)) == value
    assert exact_value(2301 * 0.1) == "230.10000000000002"
    assert exact_value(False) == "false"
