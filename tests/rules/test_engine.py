"""The sans-IO engine directly: state across reloads and restarts, errors and fail-safe."""

from __future__ import annotations

from pathlib import Path

from gateway.actuators import ActuatorSettings
from gateway.driver import PointSpec
from gateway.model import Reading
from gateway.rules.engine import Engine
from gateway.rules.loader import load_rule_file
from gateway.rules.replay import advance, replay
from gateway.rules.timeofday import SiteTimes

POINTS = {
    "s/a": PointSpec("a"),
    "s/b": PointSpec("b"),
    "out/x": PointSpec("x", writable=True),
    "out/y": PointSpec("y", writable=True),
}
T0 = 1_767_225_600.0

TWO_RULES = """
[[rule]]
name = "hold-a"
condition = "s/a > 5"
for = "5m"
[[rule.action]]
set = "out/x"
value = 1

[[rule]]
name = "hold-b"
condition = "s/b > 5"
for = "5m"
[[rule.action]]
set = "out/y"
value = 1
"""


def rules(tmp_path: Path, text: str, name: str = "r.toml"):
    path = tmp_path / name
    path.write_text(text)
    result = load_rule_file(path, POINTS)
    assert result.ok, result.problems
    return result.rules


def test_reload_keeps_state_of_unchanged_rules_and_resets_edited_ones(tmp_path):
    engine = Engine(SiteTimes(), now=T0)
    engine.load(rules(tmp_path, TWO_RULES))
    engine.feed([Reading("s/a", 9, T0), Reading("s/b", 9, T0)], T0)
    out: list = []
    advance(engine, T0 + 120, out)
    engine.load(rules(tmp_path, TWO_RULES.replace("s/b > 5", "s/b > 6")))
    assert engine.states["hold-a"].hold_until == T0 + 300
    assert engine.states["hold-b"].hold_until is None
    advance(engine, T0 + 300, out)
    assert [(c.rule, c.point) for c in out] == [("hold-a", "out/x")]


def test_exported_state_restores_a_running_for_timer(tmp_path):
    engine = Engine(SiteTimes(), now=T0)
    engine.load(rules(tmp_path, TWO_RULES))
    engine.feed([Reading("s/a", 9, T0)], T0)
    advance(engine, T0 + 240, [])
    saved, _ = engine.take_dirty()

    restarted = Engine(SiteTimes(), now=T0 + 250)
    restarted.load(rules(tmp_path, TWO_RULES), saved)
    restarted.prime([Reading("s/a", 9, T0)])
    out: list = []
    advance(restarted, T0 + 299, out)
    assert out == []
    advance(restarted, T0 + 301, out)
    assert [(c.ts, c.rule) for c in out] == [(T0 + 300, "hold-a")]


def test_saved_state_of_an_edited_rule_is_not_restored(tmp_path):
    engine = Engine(SiteTimes(), now=T0)
    engine.load(rules(tmp_path, TWO_RULES))
    engine.feed([Reading("s/a", 9, T0)], T0)
    saved, _ = engine.take_dirty()
    restarted = Engine(SiteTimes(), now=T0 + 10)
    restarted.load(rules(tmp_path, TWO_RULES.replace('for = "5m"', 'for = "6m"', 1)), saved)
    assert restarted.states["hold-a"].hold_until is None


def test_evaluation_error_applies_failsafe_once_and_recovers(tmp_path):
    text = """
    [[rule]]
    name = "ratio"
    [[rule.action]]
    set = "out/x"
    expr = "100 / s/a"
    """
    engine = Engine(SiteTimes(), {"out/x": ActuatorSettings("out/x", fail_safe=100)}, now=T0)
    engine.load(rules(tmp_path, text.replace("\n    ", "\n")))
    result = replay(
        engine,
        [
            Reading("s/a", 4, T0),
            Reading("s/a", 0, T0 + 1),
            Reading("s/a", 0.0, T0 + 2),
            Reading("s/a", 5, T0 + 3),
        ],
    )
    kinds = [(c.kind, c.value) for c in result.commands]
    assert kinds == [
        ("set", 25.0),
        ("error", "set out/x: division by zero"),
        ("failsafe", 100),
        ("set", 20.0),
        ("info", "recovered: evaluates again; rule in control"),
    ]


def test_virtual_points_feed_other_rules(tmp_path):
    text = """
[[rule]]
name = "sum"
[[rule.action]]
publish = "virtual/total"
expr = "s/a + s/b"

[[rule]]
name = "react"
condition = "virtual/total > 10"
[[rule.action]]
set = "out/x"
value = 1
"""
    engine = Engine(SiteTimes(), now=T0)
    engine.load(rules(tmp_path, text))
    result = replay(engine, [Reading("s/a", 4, T0), Reading("s/b", 3, T0 + 1), Reading("s/b", 8, T0 + 2)])
    assert [(c.kind, c.point, c.value) for c in result.commands] == [
        ("publish", "virtual/total", 7),
        ("publish", "virtual/total", 12),
        ("set", "out/x", 1),
    ]


def test_stale_trigger_fires_once_per_silence(tmp_path):
    text = """
[[rule]]
name = "silent"
[[rule.trigger]]
stale = "s/a"
after = "1m"
[[rule.action]]
event = "silent"
message = "s/a silent"
"""
    engine = Engine(SiteTimes(), now=T0)
    engine.load(rules(tmp_path, text))
    result = replay(engine, [Reading("s/a", 1, T0), Reading("s/a", 2, T0 + 200)], end=T0 + 400)
    assert [c.ts - T0 for c in result.commands] == [60, 260]


CRON = """
[[rule]]
name = "at-ten"
[[rule.trigger]]
cron = "0 10 * * *"
[[rule.action]]
set = "out/x"
value = 1
"""


def test_schedule_missed_during_a_short_outage_fires_at_start(tmp_path):
    engine = Engine(SiteTimes(), now=T0)  # 00:00 UTC
    engine.load(rules(tmp_path, CRON))
    assert engine.states["at-ten"].next_at == {0: T0 + 36000}
    saved, _ = engine.take_dirty()
    out: list = []
    back_soon = Engine(SiteTimes(), now=T0 + 36000 + 600)  # down from 09:55 to 10:10
    back_soon.load(rules(tmp_path, CRON), saved)
    advance(back_soon, back_soon.now, out)
    assert [(c.ts - T0, c.rule) for c in out] == [(36600, "at-ten")]
    back_late = Engine(SiteTimes(), now=T0 + 36000 + 7200)  # down for more than an hour past it
    back_late.load(rules(tmp_path, CRON), saved)
    out = []
    advance(back_late, back_late.now, out)
    assert out == []
