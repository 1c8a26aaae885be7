"""A site pays in memory only for what it configures: `gateway run` of a Modbus + CoAP uplink
site, with real peers, never imports the code of features the site does not use, nor maps
the system's OpenSSL.

The daemon is `gateway run` as the console script runs it, with one hook: at exit it writes
sys.modules, so every module it imported, at start-up or later (a poll, an uplink batch),
is seen. (``-X importtime`` does not see modules loaded through importlib.import_module,
which is how the daemon loads drivers and components.)
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]

#: what such a site must never load; each is some other feature's, and costs memory
NOT_FOR_THIS_SITE = {
    "aiocoap.oscore": "OSCORE (the API's or an OSCORE uplink's)",
    "aiocoap.edhoc": "EDHOC",
    "lakers": "EDHOC",
    "cryptography": "OSCORE and LoRaWAN crypto",
    "filelock": "OSCORE state",
    "quickjs": "LoRaWAN JavaScript codecs",
    "yaml": "LoRaWAN codec files",
    "astral": "rules with sun times",
    "croniter": "rules with cron times",
    "gpiozero": "the GPIO driver",
    "importlib.metadata": "nothing in the daemon (driver discovery reads entry_points.txt)",
    "email": "nothing in the daemon (importlib.metadata pulls it in)",
    "importlib.resources": "nothing in the daemon (only the demo reads its packaged files)",
    "ctypes.util": "nothing in the daemon (the clock's adjtimex uses the libc already loaded)",
    "shutil": "nothing in the daemon (argparse's help width is read with os; with bz2 and lzma)",
    "tempfile": "nothing in the daemon (atomic writes name their own temp file)",
    "zipfile": "nothing in the daemon (importlib.resources pulls it in)",
    "sqlite_utils": "the offline export tool",
    "gateway.rules": "rules",
    "gateway.coap.api": "the CoAP API",
    "drivers.lorawan": "the LoRaWAN driver",
    "drivers.serial": "the serial driver",
    "drivers.gpio": "the GPIO driver",
    "gateway.cli.status": "`gateway status`",
    "gateway.cli.export": "`gateway export`",
}

DAEMON = """
import atexit, json, sys
def record():
    ssl = sys.modules.get("ssl")
    from gateway.openssl_free import mapped_openssl_libraries
    openssl = {"ssl": type(ssl).__name__, "mapped": mapped_openssl_libraries()}
    open(sys.argv[1], "w").write(json.dumps({"modules": sorted(sys.modules), "openssl": openssl}))
atexit.register(record)
from gateway.cli import main
sys.exit(main(["run", "--config", sys.argv[2]]))
"""

SLAVE = """
import sys, time
from modbus_tk import defines, modbus_tcp
server = modbus_tcp.TcpServer(port=int(sys.argv[1]), address="127.0.0.1", timeout_in_sec=0.2)
for unit in (1, 11):
    slave = server.add_slave(unit)
    for name, kind in (("c", defines.COILS), ("d", defines.DISCRETE_INPUTS),
                       ("h", defines.HOLDING_REGISTERS), ("i", defines.ANALOG_INPUTS)):
        slave.add_block(name, kind, 0, 200)
server.start()
print("ready", flush=True)
time.sleep(3600)
"""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site(directory: Path, modbus_port: int, coap_port: int) -> Path:
    path = directory / "gateway.toml"
    path.write_text(f"""
[gateway]
id = "cabinet"
data_dir = "data"

[store]
flush_interval = "50ms"

[[upstreams]]
name = "platform"
uri = "coap://127.0.0.1:{coap_port}/ingest"
linger = "200ms"

[[devices]]
name = "meter"
driver = "modbus"
interval = "200ms"
[devices.options]
profile = "energy_meter"
host = "127.0.0.1"
port = {modbus_port}
unit = 1

[[devices]]
name = "lamp"
driver = "modbus"
interval = "200ms"
[devices.options]
profile = "lamp_controller"
host = "127.0.0.1"
port = {modbus_port}
unit = 11
""")
    return path


def uplinked_devices(out: Path) -> set[str]:
    """Devices whose readings reached the receiver (record names are gateway/device/point)."""
    if not out.exists():
        return set()
    return {
        record[0].split("/")[-2]
        for line in out.read_text().splitlines()
        for record in json.loads(line).get("records", [])
    }


def test_a_modbus_and_uplink_site_imports_nothing_of_other_features(tmp_path: Path):
    modbus_port, coap_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    out, modules_file = tmp_path / "received.jsonl", tmp_path / "modules.json"
    slave = subprocess.Popen(
        [sys.executable, "-c", SLAVE, str(modbus_port)], stdout=subprocess.PIPE, text=True
    )
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.coap_uplink.receiver", "--port", str(coap_port), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    gateway = None
    try:
        assert slave.stdout is not None and slave.stdout.readline().strip() == "ready"
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        gateway = subprocess.Popen(
            [sys.executable, "-c", DAEMON, str(modules_file), str(site(tmp_path, modbus_port, coap_port))],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while (
            uplinked_devices(out) != {"meter", "lamp"}
            and gateway.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        gateway.send_signal(signal.SIGTERM)
        _, err = gateway.communicate(timeout=30)
    finally:
        for proc in (gateway, slave, receiver):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert gateway.returncode == 0, err[-3000:]
    assert uplinked_devices(out) == {"meter", "lamp"}, err[-3000:]  # both devices polled, batches sent
    recorded = json.loads(modules_file.read_text())
    imported = set(recorded["modules"])
    assert {
        "drivers.modbus.driver",
        "gateway.coap.uplink",
        "pymodbus.client",
    } <= imported  # the check sees imports
    loaded = {
        name: why
        for name, why in NOT_FOR_THIS_SITE.items()
        if any(module == name or module.startswith(name + ".") for module in imported)
    }
    assert loaded == {}
    # pymodbus imports ssl; the daemon hands it one without TLS, and never maps OpenSSL's
    # libraries (gateway/openssl_free.py)
    assert recorded["openssl"] == {"ssl": "NoTLS", "mapped": []}
