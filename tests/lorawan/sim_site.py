"""Site configs and simulated devices for the LoRaWAN end-to-end tests (keys are test keys)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.lorawan.server import NetworkServer
from drivers.lorawan.simulator import SimulatedDevice
from gateway.service import Service
from tests.conftest import running, wait_until

ROOT = Path(__file__).resolve().parents[2]
METER_CODEC = ROOT / "drivers" / "lorawan" / "examples" / "water-meter.yaml"

BAY = SimulatedDevice(
    "70B3D57ED0000001",
    dev_addr=0x26011BDA,
    nwk_skey=bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
    app_skey=bytes.fromhex("F0E0D0C0B0A090807060504030201000"),
)
METER_EUI = "70B3D57ED0000002"
METER_APP_EUI = "70B3D57ED00000AA"
METER_APP_KEY = bytes.fromhex("11223344556677889900AABBCCDDEEFF")

CREDENTIALS = f"""
[devices.{BAY.dev_eui}]
activation = "abp"
dev_addr = "{BAY.dev_addr:08X}"
nwk_skey = "{BAY.nwk_skey.hex()}"
app_skey = "{BAY.app_skey.hex()}"

[devices.{METER_EUI}]
activation = "otaa"
app_eui = "{METER_APP_EUI}"
app_key = "{METER_APP_KEY.hex()}"
"""


def devices_toml(
    *, relaxed: bool = False, bay_codec: str = "cayenne", dedup: str = "100ms", meter_region: str = "EU868"
) -> str:
    return f"""
        [[devices]]
        name = "bay"
        driver = "lorawan"
        [devices.options]
        dev_eui = "{BAY.dev_eui}"
        credentials = "keys.toml"
        bind = "127.0.0.1"
        port = 0
        codec = "{bay_codec}"
        dedup_window = "{dedup}"
        relaxed_frame_counter = {"true" if relaxed else "false"}
        [[devices.options.points]]
        name = "presence_1"
        [[devices.options.points]]
        name = "digital_out_4"
        writable = true

        [[devices]]
        name = "meter"
        driver = "lorawan"
        [devices.options]
        dev_eui = "{METER_EUI}"
        credentials = "keys.toml"
        bind = "127.0.0.1"
        port = 0
        codec = "{METER_CODEC}"
        region = "{meter_region}"
        dedup_window = "{dedup}"
        [[devices.options.points]]
        name = "report_interval"
        writable = true
    """


def fresh_bay() -> SimulatedDevice:
    return SimulatedDevice(BAY.dev_eui, dev_addr=BAY.dev_addr, nwk_skey=BAY.nwk_skey, app_skey=BAY.app_skey)


def fresh_meter() -> SimulatedDevice:
    return SimulatedDevice(METER_EUI, app_eui=METER_APP_EUI, app_key=METER_APP_KEY)


@contextlib.asynccontextmanager
async def network(config) -> AsyncIterator[tuple[Service, NetworkServer]]:
    service = Service(config)
    async with running(service):
        shared = service.devices.shared
        await wait_until(
            lambda: (
                shared.get("lorawan", "udp:127.0.0.1:0") is not None
                and len(shared.get("lorawan", "udp:127.0.0.1:0").by_eui) == len(config.devices)
            )
        )
        yield service, shared.get("lorawan", "udp:127.0.0.1:0")


def driver(service: Service, name: str):
    return service.devices.runners[name].driver
