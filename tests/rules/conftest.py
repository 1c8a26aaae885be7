"""A small site for rule tests: a writable lamp and sensor points published by the test."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config
from tests.conftest import write_site

RULES_SITE = """
[[devices]]
name = "lamp"
driver = "simulated"
interval = "1h"
[devices.options]
[[devices.options.points]]
name = "level"
unit = "%"
writable = true
initial = 0

[[devices]]
name = "sensor"
driver = "simulated"
enabled = false
[devices.options]
[[devices.options.points]]
name = "traffic"
[[devices.options.points]]
name = "door"
kind = "bool"

[rules]
directory = "rules"
reload_interval = "2s"
"""


@pytest.fixture
def rules_site(tmp_path: Path):
    """rules_site({"a.toml": text}, extra_config) -> GatewayConfig with those rule files."""

    def make(files: dict[str, str], extra: str = "") -> GatewayConfig:
        rules = tmp_path / "rules"
        rules.mkdir(exist_ok=True)
        for name, text in files.items():
            (rules / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config(write_site(tmp_path, RULES_SITE + textwrap.dedent(extra)))

    return make
