"""The demo site's LoRaWAN peer: a simulated concentrator and parking sensor that send real
encrypted ABP frames (Cayenne LPP) to the gateway's network server on a free loopback port.

The sensor's uplink counter is kept in the demo dir, as a real ABP device keeps it in its
flash: the network server refuses a counter it has already seen (``reason=stale``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from .codecs.cayenne import encode_uplink
from .simulator import SimulatedDevice, forwarder

DEMO_GATEWAY = "AA555A000000DE30"
DEMO_DEVICE = SimulatedDevice(
    "70B3D57ED000DE30",
    dev_addr=0x2601DE30,
    nwk_skey=bytes.fromhex("D3A0F1E2C4B5968778695A4B3C2D1E0F"),
    app_skey=bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0"),
)
UPLINK_EVERY_S = 5.0
STAT_EVERY = 6  # uplinks between status reports
#: the simulated sensor's next uplink counter, in the demo dir
COUNTER_FILE = "lorawan-sensor-fcnt"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_counter(path: Path) -> int:
    """The next uplink counter kept at ``path``; 0 for a new (or unreadable) demo dir."""
    try:
        return max(0, int(path.read_text(encoding="ascii").strip()))
    except (OSError, ValueError):
        return 0


def save_counter(path: Path, next_fcnt: int) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(f"{next_fcnt}\n", encoding="ascii")
    os.replace(scratch, path)  # a kill -9 leaves the old value or the new one, never half


async def _send_forever(port: int, uplink_every: float, counter: Path) -> None:
    rng = random.Random(30)
    device = SimulatedDevice(
        DEMO_DEVICE.dev_eui,
        dev_addr=DEMO_DEVICE.dev_addr,
        nwk_skey=DEMO_DEVICE.nwk_skey,
        app_skey=DEMO_DEVICE.app_skey,
        fcnt_up=load_counter(counter),
    )
    occupied = 0
    async with forwarder(DEMO_GATEWAY, ("127.0.0.1", port)) as fwd:
        count = 0
        while True:
            fwd.pull()
            if rng.random() < 0.3:
                occupied = 1 - occupied
            payload = encode_uplink({"presence_1": occupied, "temperature_2": round(rng.uniform(8, 14), 1)})
            # kept before the frame leaves, so no counter is ever sent twice, however we stop
            save_counter(counter, device.fcnt_up + 1)
            fwd.push(fwd.rxpk(device.uplink(1, payload), rssi=rng.uniform(-115, -70), snr=rng.uniform(-5, 9)))
            count += 1
            if count % STAT_EVERY == 1:
                fwd.push(
                    stat={"rxnb": count, "rxok": count, "rxfw": count, "ackr": 100.0, "dwnb": 0, "txnb": 0}
                )
            await asyncio.sleep(uplink_every)


@contextlib.asynccontextmanager
async def packet_forwarder(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    port = free_udp_port()
    keys = resources.files("drivers.lorawan").joinpath("demo-keys.toml")
    task = asyncio.create_task(
        _send_forever(port, UPLINK_EVERY_S, demo_dir / COUNTER_FILE), name="demo-packet-forwarder"
    )
    try:
        yield {
            "lorawan_enabled": "true",
            "lorawan_port": str(port),
            "lorawan_credentials": str(keys),
            "announce": f"LoRaWAN: simulated packet forwarder {DEMO_GATEWAY} -> udp://127.0.0.1:{port}",
        }
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
