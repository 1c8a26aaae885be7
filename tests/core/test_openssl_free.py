"""The daemon runs without the system's OpenSSL (gateway/openssl_free.py): asyncio refuses
TLS with asyncio's own error, pymodbus still imports, hashing still works, and no libssl or
libcrypto is mapped. Each case runs in a fresh interpreter, as the daemon starts."""

from __future__ import annotations

import json

from tests.fresh import run_fresh

PROBE = """
import asyncio, hashlib, hmac, json, sys
from gateway.openssl_free import mapped_openssl_libraries, start_openssl_free, openssl_loaded
started = start_openssl_free()
import ssl
import pymodbus.client  # imports ssl and builds an SSLContext at its import
import asyncio, hashlib, hmac
report = {"started": started, "again": start_openssl_free(), "ssl": type(ssl).__name__,
          "loaded": openssl_loaded(),
          "sha256": hashlib.sha256(b"lamp-1").hexdigest(),
          "sha1": hashlib.sha1(b"x").hexdigest(),  # aiocoap's ETags
          "hmac": hmac.new(b"k", b"m", "sha256").hexdigest(),
          "same": hmac.compare_digest(b"a", b"a")}
try:
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_socket
except RuntimeError as exc:
    report["context"] = str(exc)
try:
    ssl.create_default_context()
except RuntimeError as exc:
    report["default_context"] = str(exc)
async def tls():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.wait_for(loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=True), 10)
    except RuntimeError as exc:
        return str(exc)
    finally:
        server.close()
if started:  # with the real ssl, a handshake against a silent server would wait
    report["asyncio_tls"] = asyncio.run(tls())
report["mapped"] = mapped_openssl_libraries()
print(json.dumps(report))
"""


def probe(source: str) -> dict:
    run = run_fresh(source)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_daemon_process_runs_without_openssl_and_says_so_when_tls_is_asked_for():
    # as the command line does: start_openssl_free before anything imports asyncio
    report = probe(PROBE.replace("import asyncio, hashlib, hmac, json, sys", "import json, sys"))
    assert report["started"] is True and report["again"] is False
    assert report["ssl"] == "NoTLS" and report["loaded"] is False
    assert report["mapped"] == []
    # hashlib's and hmac's built-in SHA-256, as OpenSSL's would give
    assert report["sha256"] == "36156c6b0fcc3c5dd9d754e11171265b6efaf3d889c2231b7d2b9cb4578ba434"
    assert report["sha1"] == "11f6ad8ec52a2984abaafd7c3b516503785c2072"
    assert report["hmac"] == "b60090e3052297aeb5a080889ce2fc4bca957e756faeb4df7d31800ca1e771ec"
    assert report["same"] is True
    assert "runs without OpenSSL" in report["context"] and "GATEWAY_OPENSSL=1" in report["context"]
    assert "runs without OpenSSL" in report["default_context"]
    assert report["asyncio_tls"] == "stdlib ssl module not available"


def test_gateway_openssl_1_keeps_the_real_ssl_for_a_driver_that_needs_tls(monkeypatch):
    monkeypatch.setenv("GATEWAY_OPENSSL", "1")
    report = probe(PROBE.replace("import asyncio, hashlib, hmac, json, sys", "import json, sys"))
    assert report["started"] is False
    assert report["ssl"] == "module" and report["loaded"] is True


def test_a_process_that_imported_asyncio_first_keeps_the_real_ssl():
    report = probe(PROBE)  # asyncio, hashlib and hmac imported before start_openssl_free
    assert report["started"] is False
    assert report["ssl"] == "module" and report["loaded"] is True
    assert report["mapped"] != []  # the maps check sees OpenSSL when it is there
    assert "context" not in report
