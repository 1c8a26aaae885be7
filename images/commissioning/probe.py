"""Facts the box finds about itself for report.txt: gateway state and health (over its own CoAP
API), upstream answers, clock, serial ports and other devices, network and data partition.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

from .report import Facts

SYS = Path(os.environ.get("GATEWAY_SYSFS", "/sys"))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def serial_ports(sys_root: Path = SYS) -> list[str]:
    """Serial ports backed by hardware: 'ttyAMA0 (uart-pl011)', 'ttyUSB0 (ftdi_sio)'."""
    ports = []
    for tty in sorted((sys_root / "class" / "tty").glob("*")):
        device = tty / "device"
        if not device.exists():
            continue
        if tty.name.startswith("ttyS") and _read(tty / "type") in ("", "0"):
            continue  # an 8250 slot with no UART behind it
        driver = (device / "driver").resolve().name if (device / "driver").exists() else "?"
        if driver == "port" and (device / ".." / ".." / "driver").exists():
            driver = (device / ".." / ".." / "driver").resolve().name  # serial core port -> UART driver
        ports.append(f"/dev/{tty.name} ({driver})")
    return ports


def devices(sys_root: Path = SYS, dev: Path = Path("/dev")) -> list[str]:
    found = []
    for usb in sorted((sys_root / "bus" / "usb" / "devices").glob("*")):
        vendor = _read(usb / "idVendor")
        if vendor and _read(usb / "bDeviceClass") != "09":  # skip hubs
            found.append(f"USB {vendor}:{_read(usb / 'idProduct')} {_read(usb / 'product')}".rstrip())
    found += [f"GPIO {p.name}" for p in sorted(dev.glob("gpiochip*"))]
    found += [f"I2C {p.name}" for p in sorted(dev.glob("i2c-*"))]
    for watchdog in sorted((sys_root / "class" / "watchdog").glob("watchdog*")):
        found.append(f"watchdog {watchdog.name} ({_read(watchdog / 'identity')})")
    try:
        out = subprocess.run(["ip", "-brief", "address"], capture_output=True, text=True, timeout=5).stdout
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] != "lo":
                found.append(f"network {parts[0]} {parts[1].lower()} {' '.join(parts[2:3])}".rstrip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return found


def clock_state(release: dict[str, str]) -> str:
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    if Path("/run/systemd/timesync/synchronized").exists():
        return f"synchronised with NTP, {stamp}"
    built = int(release.get("SOURCE_DATE_EPOCH", "0") or 0)
    behind = " - behind the image's build date, so certainly wrong" if now < built else ""
    return f"NOT synchronised with NTP (no time server answered yet): {stamp}{behind}"


def unit_state(unit: str) -> str:
    try:
        return (
            subprocess.run(
                ["systemctl", "is-active", unit], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def api_uri(config_path: Path) -> str | None:
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    api = raw.get("api")
    if not isinstance(api, dict):
        return None
    bind = str(api.get("bind", "127.0.0.1"))
    host = "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind
    host = f"[{host}]" if ":" in host else host
    return f"coap://{host}:{int(api.get('port', 5683))}/health"


async def fetch_health(uri: str, timeout: float = 15.0) -> dict[str, Any] | None:
    try:
        import aiocoap  # the gateway's own dependency; present in /opt/gateway
    except ImportError:
        return None
    context = await aiocoap.Context.create_client_context()
    try:
        request = aiocoap.Message(code=aiocoap.GET, uri=uri, accept=50)  # application/json
        response = await asyncio.wait_for(context.request(request).response, timeout)
        if not response.code.is_successful():
            return None
        document = json.loads(response.payload)
        return document if isinstance(document, dict) else None
    except Exception:  # noqa: BLE001 - any failure means "no answer" in the report
        return None
    finally:
        await context.shutdown()


def describe_upstreams(health: dict[str, Any] | None) -> str:
    if health is None:
        return "unknown (the gateway's health could not be read)"
    upstreams = health.get("components", {}).get("upstreams")
    if not isinstance(upstreams, dict) or not upstreams:
        return "none configured"
    parts = []
    for name, state in upstreams.items():
        if state.get("last_success"):
            parts.append(
                f"{name}: answered (last success {state['last_success']}, "
                f"{state.get('readings_sent', 0)} readings sent)"
            )
        else:
            parts.append(
                f"{name}: NO ANSWER yet ({state.get('last_error') or 'no reply'}); "
                "readings stay buffered on the box"
            )
    return "; ".join(parts)


def describe_gateway(state: str, health: dict[str, Any] | None) -> str:
    if health is None:
        return f"gateway service {state}; health not readable over its CoAP API"
    gateway = health.get("gateway", {})
    devices_health = health.get("devices", {})
    running = (
        sum(1 for d in devices_health.values() if isinstance(d, dict) and d.get("state") == "running")
        if isinstance(devices_health, dict)
        else 0
    )
    total = len(devices_health) if isinstance(devices_health, dict) else 0
    return (
        f"gateway service {state}, status {health.get('status', '?')}, id '{gateway.get('id', '?')}', "
        f"{running}/{total} devices running, up {gateway.get('uptime_s', '?')} s"
    )


def upstream_answered(health: dict[str, Any] | None) -> bool:
    upstreams = (health or {}).get("components", {}).get("upstreams")
    return isinstance(upstreams, dict) and any(s.get("last_success") for s in upstreams.values())


def data_partition(path: Path = Path("/data")) -> str | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    return f"{total / 2**20:.0f} MiB, {100 * used / total:.0f}% used" if total else None


def probe(config_path: Path, release: dict[str, str], wait: float = 300.0) -> Facts:
    """Wait (bounded) for the gateway to answer and its upstreams to reply, then collect facts."""
    deadline = time.monotonic() + wait
    uri = api_uri(config_path)
    health = None
    answered_by = None  # when health first answered; upstreams get 30 s more to reply
    state = unit_state("gateway.service")
    while uri is not None and time.monotonic() < deadline:
        state = unit_state("gateway.service")
        if state in ("failed", "inactive"):
            break
        if state != "active":
            time.sleep(3)
            continue
        health = asyncio.run(fetch_health(uri)) or health
        if health is not None:
            upstreams = health.get("components", {}).get("upstreams")
            if not upstreams or upstream_answered(health):
                break
            answered_by = answered_by or time.monotonic()
            if time.monotonic() - answered_by > 30:
                break
        time.sleep(3)
    return Facts(
        gateway=describe_gateway(state, health),
        upstream=describe_upstreams(health),
        clock=clock_state(release),
        serial_ports=tuple(serial_ports()),
        devices=tuple(devices()),
        data_partition=data_partition(),
    )
