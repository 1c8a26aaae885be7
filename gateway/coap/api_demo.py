"""The demo's CoAP API set-up: a free port near 5683 and a demo OSCORE operator.

Used by ``gateway demo`` (see ``CORE_PEERS`` in gateway/cli/demo.py); writes demo-only keys into the demo dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

from ..demo.tools import aiocoap_client_command
from .api import port_is_free
from .numbers import COAP_PORT

DEMO_CLIENT = "demo-operator"
HOST = "127.0.0.1"


def pick_port(first: int = COAP_PORT, tries: int = 50) -> int:
    """CoAP's default port, or the next free one."""
    for port in range(first, first + tries):
        if port_is_free(HOST, port):
            return port
    raise OSError(f"no free UDP port in {first}..{first + tries - 1} on {HOST}")


def write_demo_keys(demo_dir: Path, port: int) -> tuple[Path, Path]:
    """A gateway-side credentials file and the matching aiocoap-client credentials file.

    Keys are made once per demo dir and kept, so the client's OSCORE state stays valid.
    """
    gateway_file = demo_dir / "api-credentials.toml"
    client_dir = demo_dir / "api-client-oscore"
    if not gateway_file.exists() or not (client_dir / "settings.json").exists():
        secret, salt = secrets.token_hex(16), secrets.token_hex(8)
        gateway_file.write_text(
            f"# Demo-only keys of the CoAP API (made by `gateway demo`).\n"
            f'[{DEMO_CLIENT}.oscore]\nsender_id = "01"\nrecipient_id = "02"\n'
            f'master_secret = "{secret}"\nmaster_salt = "{salt}"\n',
            encoding="utf-8",
        )
        os.chmod(gateway_file, 0o600)
        client_dir.mkdir(exist_ok=True)
        (client_dir / "settings.json").write_text(
            json.dumps(
                {"sender-id_hex": "02", "recipient-id_hex": "01", "secret_hex": secret, "salt_hex": salt}
            )
        )
        os.chmod(client_dir / "settings.json", 0o600)
        (client_dir / "sequence.json").unlink(missing_ok=True)
    client_file = demo_dir / "api-client.json"
    client_file.write_text(
        json.dumps({f"coap://{HOST}:{port}/*": {"oscore": {"basedir": str(client_dir) + "/"}}})
    )
    return gateway_file, client_file


@contextlib.asynccontextmanager
async def api_server(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    port = pick_port()
    gateway_file, client_file = write_demo_keys(demo_dir, port)
    base = f"coap://{HOST}:{port}"
    aiocoap_client = aiocoap_client_command()
    # libcoap's -w ends every answer (each Observe notification too) with a newline, so values
    # do not run together on the terminal.
    yield {
        "api_port": str(port),
        "api_credentials": str(gateway_file),
        "announce": "\n".join(
            [
                f"CoAP API: {base}  (try: coap-client-notls -w -A 50 {base}/points/lamp-1/power"
                f" or {aiocoap_client} {base}/.well-known/core)",
                f"  live:   coap-client-notls -w -s 60 -A 0 {base}/points/carpark/occupied",
                f"  page:   coap-client-notls -w -A 110 '{base}/readings?after=0&limit=50'",
                f"  write (OSCORE): {aiocoap_client} --credentials {shlex.quote(str(client_file))} -m PUT"
                f" --payload 40 {base}/points/lamp-1/level",
            ]
        ),
    }
