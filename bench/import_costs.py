"""What each feature's imports cost the daemon in memory, measured one by one.

Each module is imported in a fresh interpreter that has already imported the gateway's core
(``gateway.service``); the figure is the RSS (and anonymous RSS) it adds on top. A site pays
only for the features it configures, so this says what a feature costs a site that uses it.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

#: what a site pulls in by using a feature (module the daemon imports for it)
FEATURES = {
    "core (gateway.service)": "gateway.service",
    "driver: simulated": "drivers.simulated",
    "driver: modbus": "drivers.modbus.driver",
    "driver: serial": "drivers.serial.driver",
    "driver: gpio": "drivers.gpio.driver",
    "driver: lorawan": "drivers.lorawan.driver",
    "rules": "gateway.rules.component",
    "rules: cron (croniter)": "croniter",
    "rules: sun times (astral)": "astral.sun",
    "coap uplink": "gateway.coap.uplink",
    "coap api": "gateway.coap.api",
    "oscore (aiocoap.oscore)": "aiocoap.oscore",
    "lorawan js codecs (quickjs)": "quickjs",
    "lorawan codec files (yaml)": "yaml",
    "cryptography (AES)": "cryptography.hazmat.primitives.ciphers",
    "pymodbus client": "pymodbus.client",
    "gpiozero": "gpiozero",
}

PROBE = """
import sys
def rss():
    fields = {}
    for line in open('/proc/self/status'):
        key, _, value = line.partition(':')
        fields[key] = int(value.split()[0]) if value.split() and value.split()[0].isdigit() else 0
    return fields['VmRSS'], fields['RssAnon']
import importlib
base = sys.argv[1]
if base:
    importlib.import_module(base)
before = rss()
importlib.import_module(sys.argv[2])
after = rss()
print(after[0] - before[0], after[1] - before[1], after[0], len(sys.modules))
"""


def measure(base: str, module: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, base, module], capture_output=True, text=True, check=True
    ).stdout.split()
    rss, anon, total, modules = (int(x) for x in out)
    return {
        "rss_mb": round(rss / 1024, 1),
        "anon_mb": round(anon / 1024, 1),
        "process_rss_mb": round(total / 1024, 1),
        "modules_loaded": modules,
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    figures = {}
    for feature, module in FEATURES.items():
        base = "" if module == "gateway.service" else "gateway.service"
        figures[feature] = {"module": module, **measure(base, module)}
    print(json.dumps({"baseline": "python + gateway.service", "added_by_import": figures}, indent=1))


if __name__ == "__main__":
    main()
