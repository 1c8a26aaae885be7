"""The commit service's unit: it must start while the gateway is still (re)starting."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

from ota import gate

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


def test_each_run_of_the_gateway_leaves_how_it_ended_for_the_gate(tmp_path):
    # The ExecStopPost= line run as systemd would run it: "$$" unescaped to "$", the variables
    # systemd sets for ExecStopPost=, the record's directory moved under tmp_path.
    dropin = unit("gateway.service.d/gateway-exits.conf")
    command = dropin.get("Service", "ExecStopPost")
    assert command.startswith("+/bin/sh -c '") and gate.EXITS_FILE in command
    script = command.removeprefix("+/bin/sh -c '").removesuffix("'").replace("$$", "$")
    script = script.replace("/run/gateway-commit", str(tmp_path / "run"))
    for result, code, status in (("exit-code", "exited", "2"), ("signal", "killed", "SEGV")):
        env = {"PATH": "/usr/bin:/bin", "SERVICE_RESULT": result, "EXIT_CODE": code, "EXIT_STATUS": status}
        subprocess.run(["/bin/sh", "-c", script], env=env, check=True)
    exits = gate.MainExit.parse_lines((tmp_path / "run" / "gateway.service.exits").read_text())
    assert [(e.result, e.exit_status) for e in exits] == [("exit-code", 2), ("signal", 11)]
    assert exits[1].how_it_ended() == "was killed by signal 11 (SIGSEGV)"
