"""What the terminal shows besides the rows: the export's progress bar, and the demo console's
point filter and operator events."""

import io
import logging
from types import SimpleNamespace

from gateway.cli.demo_console import ReadingConsole, show_operator_events
from gateway.cli.export import Progress
from gateway.cli.timefmt import TimeFormat
from gateway.logfmt import setup_logging


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_shows_on_a_terminal_only_once_an_export_takes_a_while():
    terminal, clock = Terminal(), Clock()
    progress = Progress(terminal, 0.0, 1000.0, TimeFormat.for_site("UTC"), clock=clock, after=1.0)
    progress.update(100.0, 256)
    assert terminal.getvalue() == ""  # a quick export stays quiet
    clock.now += 1.5
    progress.update(500.0, 512)
    assert "50%" in terminal.getvalue() and "512 readings" in terminal.getvalue()
    assert terminal.getvalue().startswith("\r[###############...............]")
    progress.finish(600)
    assert terminal.getvalue().endswith("100%  600 readings\x1b[K\n")


def test_no_progress_when_standard_error_is_not_a_terminal():
    pipe, clock = io.StringIO(), Clock()
    progress = Progress.on_terminal(pipe, 0.0, 1000.0, TimeFormat.for_site("UTC"))
    progress.clock = clock
    clock.now += 10
    progress.update(500.0, 512)
    progress.finish(600)
    assert pipe.getvalue() == ""


def reading(point, value, ts=1764651601.0, unit=None):
    return SimpleNamespace(point=point, value=value, ts=ts, unit=unit)


def test_demo_console_prints_only_the_points_asked_for_in_the_site_zone():
    console = ReadingConsole("Europe/Amsterdam", ("lamp-*/level",))
    lines = console.lines(
        [
            reading("lamp-1/level", 2301 * 0.1, unit="%"),
            reading("carpark/occupied", 3),
            reading("lamp-2/level", 5.0),
        ]
    )
    assert lines == [
        "06:00:01  lamp-1/level                 230.1 %",
        "06:00:01  lamp-2/level                 5",
    ]
    assert len(ReadingConsole("UTC").lines([reading("a/b", 1), reading("c/d", 2)])) == 2


def test_demo_console_shows_rule_reloads_rejections_and_overrides_at_the_default_level():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("warning", stream)
        show_operator_events()
        logging.getLogger("gateway.rules").info("event=rules_loaded file=%s", "rules/lights.toml")
        logging.getLogger("gateway.rules").error(
            "event=rules_rejected file=%s outcome=%s problem=%r", "rules/bad.toml", "skipped", "line 3: bad"
        )
        logging.getLogger("gateway.actuation").info("event=override_started point=%s", "lamp-1/level")
        logging.getLogger("gateway.actuation").info("event=override_ended point=%s", "lamp-1/level")
        logging.getLogger("gateway.actuation").info("event=write point=%s", "lamp-1/level")
        logging.getLogger("gateway.store").info("event=store_opened")
        logging.getLogger("gateway.store").warning("event=store_slow")
        logging.getLogger("gateway.store").debug("event=debug_detail")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    out = stream.getvalue()
    for shown in (
        "event=rules_loaded",
        "event=rules_rejected",
        "event=override_started",
        "event=override_ended",
        "event=store_slow",
    ):
        assert shown in out
    for hidden in ("event=write", "event=store_opened", "event=debug_detail"):
        assert hidden not in out
