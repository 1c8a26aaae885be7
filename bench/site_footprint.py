"""RSS and PSS of the gateway process for a site that uses only Modbus and the CoAP uplink.

The memory a site pays depends on what it configures: this is the smallest common street
cabinet (an energy meter and two lamp controllers on Modbus TCP, forwarding upstream over
plain CoAP). The Modbus slave (modbus-tk) and the CoAP receiver run in other processes;
only the gateway process is measured, from /proc.

    .venv/bin/python bench/site_footprint.py [--seconds 20]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import ROOT, cpu_seconds, free_udp_port, memory_mb  # noqa: E402

SLAVE = """
import sys, time
from modbus_tk import defines, modbus_tcp
server = modbus_tcp.TcpServer(port=int(sys.argv[1]), address="127.0.0.1", timeout_in_sec=0.2)
for unit in (1, 11, 12):
    slave = server.add_slave(unit)
    for name, kind in (("c", defines.COILS), ("d", defines.DISCRETE_INPUTS),
                       ("h", defines.HOLDING_REGISTERS), ("i", defines.ANALOG_INPUTS)):
        slave.add_block(name, kind, 0, 200)
server.start()
print("ready", flush=True)
time.sleep(3600)
"""


def site(directory: Path, modbus_port: int, coap_port: int) -> Path:
    devices = "".join(
        f'[[devices]]\nname = "{name}"\ndriver = "modbus"\ninterval = "{interval}"\n[devices.options]\n'
        f'profile = "{profile}"\ntransport = "tcp"\nhost = "127.0.0.1"\nport = {modbus_port}\nunit = {unit}\n'
        for name, profile, unit, interval in (
            ("meter", "energy_meter", 1, "5s"),
            ("lamp-1", "lamp_controller", 11, "5s"),
            ("lamp-2", "lamp_controller", 12, "5s"),
        )
    )
    path = directory / "gateway.toml"
    path.write_text(
        f'[gateway]\nid = "cabinet"\ndata_dir = "data"\nlog_level = "warning"\n\n'
        f'[[upstreams]]\nname = "platform"\nuri = "coap://127.0.0.1:{coap_port}/ingest"\n\n{devices}'
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    coap_port = free_udp_port()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            modbus_port = s.getsockname()[1]
        slave = subprocess.Popen(
            [sys.executable, "-c", SLAVE, str(modbus_port)], stdout=subprocess.PIPE, text=True
        )
        receiver = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "scale.py"), "--serve", str(coap_port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        gateway = None
        try:
            assert slave.stdout is not None and slave.stdout.readline().strip() == "ready"
            assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
            gateway = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "run",
                    "--config",
                    str(site(directory, modbus_port, coap_port)),
                ],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(5.0)
            if gateway.poll() is not None:
                raise SystemExit(gateway.communicate()[1][-2000:])
            cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
            peak_rss = peak_pss = 0.0
            while time.monotonic() - t0 < args.seconds:
                rss, pss = memory_mb(gateway.pid)
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                time.sleep(1.0)
            cpu = cpu_seconds(gateway.pid) - cpu0
            elapsed = time.monotonic() - t0
            modules = Path(f"/proc/{gateway.pid}/maps").read_text()
            hwm_kb = next(
                int(line.split()[1])
                for line in Path(f"/proc/{gateway.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")
            )
            gateway.send_signal(signal.SIGTERM)
            gateway.communicate(timeout=30)
        finally:
            for proc in (gateway, slave, receiver):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    print(
        json.dumps(
            {
                "site": "3 Modbus TCP devices (energy meter, 2 lamp controllers) + plain CoAP uplink",
                "seconds": round(elapsed, 1),
                "gateway_rss_mb_peak": peak_rss,
                "gateway_pss_mb_peak": peak_pss,
                "gateway_vmhwm_mb": round(hwm_kb / 1024, 1),
                "gateway_cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
                "loads_cryptography": "cryptography" in modules,
                "goal_rss_mb": "well under 40",
            }
        )
    )


if __name__ == "__main__":
    main()
