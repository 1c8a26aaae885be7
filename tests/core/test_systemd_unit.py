import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "systemd" / "gateway.service"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_is_a_hardened_notify_service_with_watchdog():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] and s["StateDirectory"] == ["gateway"]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"] and s["PrivateTmp"] == ["yes"]
    assert set(s["SupplementaryGroups"][0].split()) == {"dialout", "gpio"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    gateway_bin = Path(sys.executable).with_name("gateway")
    unit = tmp_path / "gateway.service"
    unit.write_text(UNIT.read_text().replace("/opt/gateway/bin/gateway", str(gateway_bin)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "gateway.service" not in result.stderr, result.stderr


def run_start_check(tmp_path: Path, status: int) -> subprocess.CompletedProcess:
    """Run the unit's ExecStartPre as systemd would, with a `gateway` that exits ``status``."""
    fake = tmp_path / f"gateway-{status}"
    fake.write_text(f'#!/bin/sh\necho checked "$@"\nexit {status}\n')
    fake.chmod(0o755)
    (line,) = unit_settings()["ExecStartPre"]
    argv = [
        arg.replace("$$", "$").replace("/opt/gateway/bin/gateway", str(fake)) for arg in shlex.split(line)
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_start_is_blocked_only_by_a_site_config_problem(tmp_path):
    # `gateway check`: 0 valid, 1 only rule-file problems (the daemon starts), 2 site config
    for status, allowed in ((0, True), (1, True), (2, False)):
        result = run_start_check(tmp_path, status)
        assert "checked check --config /etc/gateway/gateway.toml" in result.stdout
        assert (result.returncode == 0) is allowed, (status, result)
