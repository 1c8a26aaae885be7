"""The API loads OSCORE (aiocoap.oscore, cryptography) only when a protected request arrives,
and runs without lakers (EDHOC) until a peer needs it, and without filelock, tempfile (its
sequence numbers are stored by the gateway's own atomic write) or uuid at all.

The gateway runs in a fresh interpreter (the test process itself has imported everything);
aiocoap-client (a plain read, then the demo's OSCORE write) and a hand-made EDHOC message 1
are the peers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.demo.tools import aiocoap_client_command
from tests.conftest import write_site

from .conftest import api_site_body
from .helpers import client_oscore_dir, free_port, write_credentials

GATEWAY = """
import asyncio, json, socket, sys
from gateway.config import load_config
from gateway.service import Service

async def run(*argv):
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode(errors="replace")

def edhoc_message_1(port):
    # CON POST /.well-known/edhoc, payload CBOR true + one byte: the start of EDHOC message 1
    request = (bytes([0x40, 0x02, 0x12, 0x34]) + bytes([0xBB]) + b".well-known" + bytes([0x05])
               + b"edhoc" + bytes([0xFF, 0xF5, 0x03]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        s.sendto(request, ("127.0.0.1", port))
        code = s.recv(1500)[1]
    return f"{code >> 5}.{code & 0x1F:02d}"

def loaded():
    # filelock._core, lakers.lakers: only the real packages load these (a stand-in may sit
    # in sys.modules under the package's name until first use)
    return sorted(m for m in ("aiocoap.oscore", "cryptography", "filelock._core", "lakers.lakers",
                              "tempfile", "uuid", "shutil")
                  if m in sys.modules)

async def main(config, client, credentials):
    service = Service(load_config(config))
    task = asyncio.create_task(service.run())
    await service.wait_ready()
    base = f"coap://127.0.0.1:{service.config.section('api').port}"
    at_start = loaded()
    read = await run(client, f"{base}/points/lamp/level")
    after_read = loaded()
    written = await run(client, "--credentials", credentials, "-m", "PUT", "--payload", "40",
                        f"{base}/points/lamp/level")
    for _ in range(500):
        if service.hub.latest.get("lamp/level") is not None and service.hub.latest["lamp/level"].value == 40:
            break
        await asyncio.sleep(0.01)
    after_write = "lakers.lakers" in sys.modules
    after_write_loaded = loaded()
    edhoc = await asyncio.to_thread(edhoc_message_1, service.config.section("api").port)
    import lakers
    usable = callable(lakers.EdhocResponder)
    service.stop()
    await asyncio.wait_for(task, 15)
    print(json.dumps({"at_start": at_start, "read": read, "after_read": after_read,
                      "after_write_loaded": after_write_loaded, "write": written, "level": service.hub.latest["lamp/level"].value,
                      "lakers_after_oscore_write": after_write, "edhoc": edhoc,
                      "lakers_usable_later": usable}))

asyncio.run(main(*sys.argv[1:]))
"""


def test_oscore_loads_on_the_first_protected_request_writes_need_no_lakers_and_edhoc_is_answered(
    tmp_path: Path,
):
    write_credentials(tmp_path)
    port = free_port()
    config = write_site(tmp_path, api_site_body(port))
    client_dir = client_oscore_dir(tmp_path)
    credentials = tmp_path / "client.json"
    credentials.write_text(
        json.dumps({f"coap://127.0.0.1:{port}/*": {"oscore": {"basedir": f"{client_dir}/"}}})
    )
    client = aiocoap_client_command().strip("'")
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GATEWAY), str(config), client, str(credentials)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    # a plain read is served with OSCORE configured but not loaded
    assert result["at_start"] == [] and result["read"][0] == 0, result
    assert result["after_read"] == [], result
    assert result["write"][0] == 0 and result["level"] == 40, result
    # the protected write loaded OSCORE (and cryptography), still not filelock, lakers,
    # tempfile or uuid
    assert result["after_write_loaded"] == ["aiocoap.oscore", "cryptography"], result
    assert result["lakers_after_oscore_write"] is False
    # aiocoap's answer when no EDHOC credentials are configured: 4.04, now as before
    assert result["edhoc"] == "4.04"
    assert result["lakers_usable_later"] is True
