"""What each feature's imports cost the daemon in memory, measured one by one.

Each feature's modules are imported, in order, in a fresh interpreter that has already
imported the gateway's core (``gateway.service``); the figure is the RSS (and anonymous RSS)
they add on top. A site pays only for the features it configures, so this says what a
feature costs a site that uses it. Features share libraries (the LoRaWAN driver and OSCORE
both use cryptography), so a site with several pays less than the sum.

When they load: a driver's modules when a device of that family is configured; rules, the
API and the uplink when their sections are; croniter and astral when a rule uses cron or
sun times; quickjs and yaml when a LoRaWAN device has a JS codec or a codec file. OSCORE
(aiocoap.oscore, cryptography, cbor-diag) is loaded by the API on the first OSCORE-protected
request, by an OSCORE uplink or CoAP device when it starts; lakers only when a peer starts
EDHOC. Never imported by the daemon: filelock (OSCORE state is locked with flock),
importlib.metadata with email (GPIO: gpiozero's entry_points is deferred), statistics and
colorzero (stand-ins while gpiozero imports), tempfile and importlib.resources (stand-ins
while aiocoap.oscore and croniter import) and shutil (argparse's help width is read without
it). Rows written ``module:function(argument)`` import as the daemon does. The core itself
(``core:`` rows) is mostly asyncio, sqlite3 and the gateway's own modules. Every row but the
``plain python:`` ones starts as the daemon does, without OpenSSL (gateway/openssl_free.py):
on plain Python, asyncio's ``import ssl`` and hashlib's ``_hashlib`` map libssl and
libcrypto, which those rows measure.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

#: what a site pulls in by using a feature (modules the daemon imports for it, in order)
FEATURES: dict[str, str | tuple[str, ...]] = {
    "core (gateway.service)": "gateway.service",
    "core: asyncio as the daemon imports it (no ssl)": "asyncio",
    "plain python: asyncio (with ssl)": "asyncio",
    "plain python: ssl alone": "ssl",
    "plain python: hashlib (with _hashlib)": "hashlib",
    "plain python: sqlite3": "sqlite3",
    "driver: simulated": "drivers.simulated",
    "driver: modbus": "drivers.modbus.driver",
    "driver: serial": "drivers.serial.driver",
    "driver: gpio": "drivers.gpio.driver",
    "driver: gpio with gpiozero's mock pins (as the demo)": (
        "drivers.gpio.driver",
        "drivers.gpio.factories:import_gpiozero(gpiozero.pins.mock)",
        "drivers.gpio.factories:import_gpiozero(gpiozero.output_devices)",
        "drivers.gpio.factories:import_gpiozero(gpiozero.input_devices)",
    ),
    "driver: lorawan": "drivers.lorawan.driver",
    "rules": "gateway.rules.component",
    "rules: cron (croniter)": "gateway.rules.timeofday:_croniter()",
    "croniter imported plainly (with importlib.resources)": "croniter",
    "rules: sun times (astral)": "astral.sun",
    "coap uplink": "gateway.coap.uplink",
    "coap api": "gateway.coap.api",
    "aiocoap.oscore imported plainly (with filelock)": "aiocoap.oscore",
    "oscore on the api's first protected request (api already loaded)": (
        "gateway.lazyimport:defer_import(lakers)",
        "gateway.coap.credentials:import_oscore(aiocoap.oscore)",
        "gateway.coap.credentials:import_oscore(aiocoap.oscore_sitewrapper)",
    ),
    "lorawan js codecs (quickjs)": "quickjs",
    "lorawan codec files (yaml)": "yaml",
    "cryptography (AES)": "cryptography.hazmat.primitives.ciphers",
    "pymodbus client": "pymodbus.client",
    "gpiozero whole (not imported: the driver skips its __init__)": "gpiozero",
    "importlib.metadata (not imported: deferred for gpiozero)": "importlib.metadata",
    "filelock (not imported: flock instead)": "filelock",
    "statistics (not imported: deferred for gpiozero)": "statistics",
    "colorzero (not imported: deferred for gpiozero)": "colorzero",
    "tempfile (not imported: deferred for OSCORE, croniter's dateutil)": "tempfile",
    "shutil (not imported: the CLI reads the terminal width itself)": "shutil",
}

PROBE = """
import sys
def rss():
    fields = {}
    for line in open('/proc/self/status'):
        key, _, value = line.partition(':')
        fields[key] = int(value.split()[0]) if value.split() and value.split()[0].isdigit() else 0
    return fields['VmRSS'], fields['RssAnon']
before = rss()
if sys.argv[3] == "daemon":
    from gateway.openssl_free import start_openssl_free
    start_openssl_free()
import importlib
for name in filter(None, sys.argv[1].split(",")):
    importlib.import_module(name)
if sys.argv[1]:  # a feature counts from its base; a core row from bare Python, start-up included
    before = rss()
for name in sys.argv[2].split(","):
    if ":" in name:  # "module:function(argument)": the daemon's own way to import it
        module, _, call = name.partition(":")
        function, _, argument = call.rstrip(")").partition("(")
        getattr(importlib.import_module(module), function)(*filter(None, [argument]))
    else:
        importlib.import_module(name)
after = rss()
print(after[0] - before[0], after[1] - before[1], after[0], len(sys.modules))
"""


def measure(base: str, modules: tuple[str, ...], as_daemon: bool) -> dict[str, float]:
    mode = "daemon" if as_daemon else "plain"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, base, ",".join(modules), mode],
        capture_output=True,
        text=True,
        check=True,
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
        modules = (module,) if isinstance(module, str) else module
        base = "" if feature.startswith(("core", "plain python")) else "gateway.service"
        if "api already loaded" in feature:
            base += ",gateway.coap.api"
        as_daemon = not feature.startswith("plain python")
        figures[feature] = {"module": module, **measure(base, modules, as_daemon)}
    print(json.dumps({"baseline": "python + gateway.service", "added_by_import": figures}, indent=1))


if __name__ == "__main__":
    main()
