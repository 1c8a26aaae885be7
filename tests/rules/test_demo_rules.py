"""The example rule files shipped with the demo load against the demo's devices, and the demo
site config that names them is valid."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from drivers.simulated.profiles import PROFILES
from gateway.cli import main
from gateway.driver import PointSpec
from gateway.rules.loader import load_rule_file, virtual_points_in
from tests.rules.test_service import FOLLOW

DEMO_DEVICES = {"lamp-1": "streetlight", "lamp-2": "streetlight", "carpark": "parking", "air": "air_quality"}


def demo_points() -> dict[str, PointSpec]:
    return {
        f"{device}/{p.name}": PointSpec(p.name, p.unit, p.kind, p.writable)
        for device, profile in DEMO_DEVICES.items()
        for p in PROFILES[profile]
    }


def test_every_demo_rule_file_loads():
    folder = Path(str(resources.files("gateway.demo").joinpath("rules")))
    files = sorted(folder.glob("*.toml"))
    assert {f.name for f in files} >= {
        "street_lighting.toml",
        "carpark_sign.toml",
        "air_quality.toml",
        "failsafe_lamps.toml",
    }
    virtual = set().union(*(virtual_points_in(tomllib.loads(f.read_text())) for f in files))
    for path in files:
        result = load_rule_file(path, demo_points(), virtual_points=virtual)
        assert result.ok, "\n".join(str(p) for p in result.problems)
        assert result.rules


def test_demo_site_names_the_rules_and_lamp_failsafes():
    from gateway.cli.demo import site_text

    site = tomllib.loads(site_text({"data_dir": "data"}))  # as the demo renders it, without peers
    assert site["rules"]["directory"] == "rules"
    assert site["actuators"]["lamp-1/level"]["fail_safe"] == 100


def test_sun_rules_need_a_site_location(rules_site, tmp_path, capsys):
    from tests.conftest import SITE_HEADER

    rules_site({"follow.toml": FOLLOW})
    (tmp_path / "rules" / "dark.toml").write_text(
        '[[rule]]\nname = "dark"\ncondition = "is_dark()"\n[[rule.trigger]]\nevery = "1m"\n'
        '[[rule.action]]\nset = "lamp/level"\nvalue = 100\n'
    )
    config = tmp_path / "gateway.toml"
    text = config.read_text()
    assert SITE_HEADER.strip().splitlines()[3] in text
    config.write_text(text.replace("latitude = 52.37\n", "").replace("longitude = 4.89\n", ""))
    assert main(["check", "-c", str(config)]) == 1
    assert "rule 'dark': uses sun times, but the site has no location" in capsys.readouterr().err
