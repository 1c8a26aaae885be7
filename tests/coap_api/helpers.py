"""Shared pieces of the CoAP API tests: free ports, credential files, client contexts."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap

#: gateway side of the test OSCORE context (the client's ids are the other way round)
GATEWAY_ID = "01"
CLIENT_ID = "02"
READER_ID = "03"
SECRET = "0102030405060708090a0b0c0d0e0f10"
SALT = "9e7ca92223786340"
PSK_IDENTITY = "scada-dtls"
PSK_KEY = "dtls-secret-key"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A UDP port nobody listens on right now (and, for DTLS, neither does port-1)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000:
            return port


def write_credentials(directory: Path, *, psk: bool = False) -> Path:
    path = directory / "api-credentials.toml"
    text = f"""
[scada.oscore]
sender_id = "{GATEWAY_ID}"
recipient_id = "{CLIENT_ID}"
master_secret = "{SECRET}"
master_salt = "{SALT}"

[dashboard.oscore]
sender_id = "{GATEWAY_ID}"
recipient_id = "{READER_ID}"
master_secret = "{SECRET}"
master_salt = "{SALT}"
"""
    if psk:
        text += f"""
[field.psk]
identity = "{PSK_IDENTITY}"
key = "{PSK_KEY}"
"""
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def client_oscore_dir(directory: Path, *, sender: str = CLIENT_ID, secret: str = SECRET) -> Path:
    """An aiocoap client security context matching (or, with other values, not matching)."""
    path = directory / f"client-{sender}-{secret[:4]}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "settings.json").write_text(
        json.dumps(
            {
                "sender-id_hex": sender,
                "recipient-id_hex": GATEWAY_ID,
                "secret_hex": secret,
                "salt_hex": SALT,
            }
        )
    )
    return path


@contextlib.asynccontextmanager
async def coap_client(
    oscore_dir: Path | None = None, port: int | None = None
) -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context()
    if oscore_dir is not None:
        ctx.client_credentials.load_from_dict(
            {f"coap://127.0.0.1:{port}/*": {"oscore": {"basedir": str(oscore_dir) + "/"}}}
        )
    try:
        yield ctx
    finally:
        await ctx.shutdown()


async def request(
    ctx: aiocoap.Context, method: aiocoap.numbers.codes.Code, uri: str, **kwargs: object
) -> aiocoap.Message:
    return await ctx.request(aiocoap.Message(code=method, uri=uri, **kwargs)).response
