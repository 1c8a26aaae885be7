"""Wiring checks that need a real filesystem: /dev/serial/by-id links compared by the port
behind them, agreeing devices sharing one port, and a missing port warned about, not fatal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from gateway.config import load_config
from gateway.problems import ConfigError
from tests.conftest import write_site


def rtu_meter(name: str, port: str, unit: int, baudrate: int = 9600) -> str:
    return f"""
[[devices]]
name = "{name}"
driver = "modbus"
interval = "10s"
[devices.options]
profile = "energy_meter"
transport = "rtu"
serial_port = "{port}"
unit = {unit}
baudrate = {baudrate}
"""


def test_a_by_id_link_and_the_tty_behind_it_are_one_port(tmp_path):
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-FTDI_RS485-if00-port0").symlink_to(tty)
    body = rtu_meter("meter-a", str(by_id / "usb-FTDI_RS485-if00-port0"), 1) + rtu_meter(
        "meter-b", str(tty), 2, 19200
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write_site(tmp_path, body))
    (problem,) = raised.value.problems
    assert problem.key == "devices[1].options.baudrate"
    assert "device 'meter-b' sets baudrate 19200 but device 'meter-a' sets baudrate 9600" in problem.message
    assert f"{tty} (named {by_id / 'usb-FTDI_RS485-if00-port0'} and {tty})" in problem.message


def test_devices_that_agree_share_a_port_without_warnings(tmp_path):
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    config = load_config(
        write_site(tmp_path, rtu_meter("meter-a", str(tty), 1) + rtu_meter("meter-b", str(tty), 2))
    )
    assert {d.name for d in config.devices} == {"meter-a", "meter-b"}
    assert config.warnings == ()


def test_a_port_that_is_not_there_is_one_warning_naming_every_device_on_it(tmp_path):
    missing = str(tmp_path / "by-id" / "usb-unplugged")
    config = load_config(
        write_site(tmp_path, rtu_meter("meter-a", missing, 1) + rtu_meter("meter-b", missing, 2))
    )
    (warning,) = config.warnings
    assert warning.key == "devices[0].options.serial_port"
    assert (
        f"devices 'meter-a' and 'meter-b': serial port {missing} does not exist right now" in warning.message
    )


def test_the_daemon_starts_with_an_unplugged_port_and_logs_the_warning(tmp_path):
    """Warnings never block a start: `gateway run` logs them and runs the other devices."""
    missing = tmp_path / "by-id" / "usb-unplugged"
    site = write_site(
        tmp_path,
        rtu_meter("meter-a", str(missing), 1)
        + """
[[devices]]
name = "lamp"
driver = "simulated"
interval = "100ms"
[devices.options]
profile = "streetlight"
""",
    )
    err_path = tmp_path / "run.err"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(site)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while "event=ready" not in err_path.read_text():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    log = err_path.read_text()
    assert proc.returncode == 0, log
    (line,) = [line for line in log.splitlines() if "event=config_warning" in line]
    assert "key=devices[0].options.serial_port" in line and "device 'meter-a'" in line
