"""DTLS-PSK on the API (aiocoap's tinydtls server), checked with libcoap's OpenSSL client."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from aiocoap.numbers.codes import Code

from gateway.coap.dtls import dtls_unavailable
from gateway.service import Service
from tests.conftest import running, wait_until

from .helpers import PSK_IDENTITY, PSK_KEY, coap_client, free_port, request

CLIENT = shutil.which("coap-client-openssl")
pytestmark = [
    pytest.mark.skipif(CLIENT is None, reason="coap-client-openssl (libcoap3-bin) not installed"),
    pytest.mark.skipif(dtls_unavailable() is not None, reason=str(dtls_unavailable())),
]


async def coaps(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        CLIENT, "-B", "4", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def test_dtls_psk_client_reads_private_resources_and_writes(api_site):
    dtls_port = free_port()
    config, port, _ = api_site(
        psk=True, public='["discovery"]', extra=f"dtls_port = {dtls_port}", clients='field = "control"'
    )
    uri = f"coaps://127.0.0.1:{dtls_port}"

    async def scenario():
        service = Service(config)
        async with running(service):
            assert f"coaps://127.0.0.1:{dtls_port}" in service.components["api"].health()["listening"]
            await wait_until(lambda: "lamp/level" in service.hub.latest)
            rc, out = await coaps("-u", PSK_IDENTITY, "-k", PSK_KEY, "-A", "50", f"{uri}/health")
            assert rc == 0 and '"store"' in out, out
            rc, out = await coaps(
                "-u", PSK_IDENTITY, "-k", PSK_KEY, "-m", "put", "-e", "42", f"{uri}/points/lamp/level"
            )
            assert rc == 0 and "4.0" not in out, out
            await wait_until(lambda: service.hub.latest["lamp/level"].value == 42.0)

            # wrong key: the handshake fails, nothing is served and nothing is written
            rc, out = await coaps(
                "-u", PSK_IDENTITY, "-k", "not-the-key", "-m", "put", "-e", "7", f"{uri}/points/lamp/level"
            )
            assert '"store"' not in out
            # plain CoAP on the other port: health is not public here
            async with coap_client() as plain:
                refused = await request(plain, Code.GET, f"coap://127.0.0.1:{port}/health")
                assert refused.code == Code.UNAUTHORIZED
            await asyncio.sleep(0.5)
            assert service.hub.latest["lamp/level"].value == 42.0

    asyncio.run(scenario())
