"""The commit service's unit: it must start while the gateway is still (re)starting."""

from __future__ import annotations

import configparser
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "images" / "rootfs" / "etc" / "systemd" / "system"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string((UNITS / name).read_text())
    return parser


def test_the_commit_service_is_not_ordered_after_a_gateway_that_may_restart_for_ever():
    # gateway.service restarts on failure without a start limit on the image: its start job
    # never ends while it crash-loops, so a unit After= it would never judge (and roll back)
    # the update that broke it. images/test-ota's failing update found this.
    gateway = unit("gateway.service.d/gateway-image.conf")
    assert gateway.get("Unit", "StartLimitIntervalSec") == "0"
    commit = unit("gateway-commit.service")
    after = commit.get("Unit", "After").split()
    assert "gateway.service" not in after
    assert "gateway-import-config.service" in after  # the site config is in place before the gate looks
