"""The uplink against peers we did not write or that die: libcoap's coap-server, killed receivers."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.coap.dtls import dtls_unavailable
from gateway.coap.senml import BatchId, decode_senml_cbor
from gateway.config import load_config
from gateway.service import Service
from tests.conftest import running, wait_until, write_site

from .receiver import free_udp_port
from .test_uplink_aiocoap import expected, in_point_order, normalized, readings, run

ROOT = Path(__file__).resolve().parents[2]


def upstream(uri: str) -> str:
    return f'''
[[upstreams]]
name = "cloud"
uri = "{uri}"
batch_size = 100
backlog_batch_size = 500
linger = "50ms"
retry_min = "50ms"
retry_max = "300ms"
'''


async def backlog_service(tmp_path: Path, uri: str, count: int) -> Service:
    service = Service(load_config(write_site(tmp_path, upstream(uri))))
    await service.store.open()
    await service.store.put(readings(count))
    await service.store.close()
    return Service(load_config(write_site(tmp_path, upstream(uri))))


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.skipif(shutil.which("coap-server-notls") is None, reason="libcoap3-bin not installed")
def test_libcoap_server_accepts_blockwise_batches(tmp_path):
    port = free_udp_port()
    log_path = tmp_path / "coap-server.log"
    with log_path.open("wb") as log:
        # -d: accept POST/PUT to new paths (dynamic resources); -v 7 logs every PDU.
        server = subprocess.Popen(
            ["coap-server-notls", "-A", "127.0.0.1", "-p", str(port), "-d", "4", "-v", "7"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def main():
            service = await backlog_service(tmp_path, f"coap://127.0.0.1:{port}/ingest", 1200)
            async with running(service):
                await wait_until(
                    lambda: service.components["upstreams"].uplinks["cloud"].batches_sent == 3, timeout=60
                )
                assert await service.store.get_cursor("uplink:cloud") == 1200

        run(main())
        fetched = tmp_path / "last.cbor"
        subprocess.run(
            [
                "coap-client-notls",
                "-m",
                "get",
                "-o",
                str(fetched),
                "-B",
                "10",
                f"coap://127.0.0.1:{port}/ingest",
            ],
            check=True,
            timeout=20,
        )
    finally:
        stop_process(server)
    pack = decode_senml_cbor(fetched.read_bytes(), time_digits=3)
    assert pack.batch == BatchId("test-site", 3)
    assert sorted(normalized((r.name, r.value, r.time) for r in pack.records)) == sorted(
        expected(readings(1200)[1000:])
    )
    log = log_path.read_text(errors="replace")
    posts = [line for line in log.splitlines() if "c:POST" in line and "Uri-Path:ingest" in line]
    assert any("Block1:1/M/1024" in line for line in posts)  # libcoap saw Block1 transfers
    assert all("t:CON" in line for line in posts)
    finals = [line for line in log.splitlines() if "t:ACK c:2.01" in line or "t:ACK c:2.04" in line]
    assert len(finals) == 3  # one final answer per batch


def start_receiver(port: int, out: Path, die_at_batch: int | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.coap_uplink.receiver", "--port", str(port), "--out", str(out)]
    if die_at_batch is not None:
        args += ["--die-at-batch", str(die_at_batch)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stored(out: Path) -> tuple[list[int], list[int], list]:
    batches, duplicates, records = [], [], []
    for line in out.read_text().splitlines():
        entry = json.loads(line)
        if "duplicate" in entry:
            duplicates.append(entry["duplicate"])
        else:
            batches.append(entry["batch"])
            records += [tuple(r) for r in entry["records"]]
    return batches, duplicates, records


def records_in_file(out: Path) -> int:
    return len(stored(out)[2]) if out.exists() else 0


def test_receiver_dying_after_storing_a_batch_costs_one_duplicate_batch(tmp_path):
    port, out = free_udp_port(), tmp_path / "received.jsonl"
    receiver = start_receiver(port, out, die_at_batch=2)
    try:

        async def main():
            nonlocal receiver
            service = await backlog_service(tmp_path, f"coap://127.0.0.1:{port}/ingest", 2000)
            async with running(service):
                await wait_until(lambda: receiver.poll() is not None, timeout=60)
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.last_error is not None, timeout=60)
                assert cloud.cursor == 500  # batch 2 is stored upstream but unacknowledged
                receiver = start_receiver(port, out)
                await wait_until(lambda: records_in_file(out) >= 2000, timeout=60)
                await wait_until(lambda: cloud.cursor == 2000, timeout=60)

        run(main())
    finally:
        stop_process(receiver)
    batches, duplicates, records = stored(out)
    assert batches == [1, 2, 3, 4]
    assert duplicates == [2]
    assert_same_stream(records, readings(2000), 500)


def test_receiver_killed_mid_transfer_loses_nothing_and_keeps_order(tmp_path):
    port, out = free_udp_port(), tmp_path / "received.jsonl"
    receiver = start_receiver(port, out)
    try:

        async def main():
            nonlocal receiver
            service = await backlog_service(tmp_path, f"coap://127.0.0.1:{port}/ingest", 3000)
            async with running(service):
                await wait_until(lambda: records_in_file(out) >= 1000, timeout=60, interval=0.001)
                receiver.send_signal(signal.SIGKILL)  # wherever it is: mid-Block1 or mid-answer
                receiver.wait(10)
                receiver = start_receiver(port, out)
                await wait_until(lambda: records_in_file(out) >= 3000, timeout=60)
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.cursor == 3000, timeout=60)

        run(main())
    finally:
        stop_process(receiver)
    batches, duplicates, records = stored(out)
    assert batches == list(range(1, 7))
    assert len(set(duplicates)) <= 1  # only the batch in flight at the kill
    assert_same_stream(records, readings(3000), 500)


def assert_same_stream(records: list, sent: list, batch_size: int) -> None:
    """Every reading exactly once; batches in order; each point's readings in order."""
    assert len(records) == len(sent)
    for start in range(0, len(sent), batch_size):
        assert sorted(normalized(records[start : start + batch_size])) == sorted(
            expected(sent[start : start + batch_size])
        )
    assert in_point_order(records) == in_point_order(expected(sent))


@pytest.mark.skipif(shutil.which("coap-server-gnutls") is None, reason="libcoap3-bin not installed")
@pytest.mark.skipif(dtls_unavailable() is not None, reason=str(dtls_unavailable()))
def test_dtls_psk_uplink_to_libcoap_gnutls_server(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_udp_port()  # libcoap serves DTLS on port + 1
    credentials = tmp_path / "credentials.toml"
    credentials.write_text('[cloud.psk]\nidentity = "gw-1"\nkey = "sesame-key"\n')
    credentials.chmod(0o600)
    log_path = tmp_path / "coap-server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                "coap-server-gnutls",
                "-A",
                "127.0.0.1",
                "-p",
                str(port),
                "-d",
                "4",
                "-k",
                "sesame-key",
                "-v",
                "7",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def main():
            config = f"""
[[upstreams]]
name = "cloud"
uri = "coaps://127.0.0.1:{port + 1}/ingest"
security = "dtls-psk"
credentials_file = "credentials.toml"
linger = "50ms"
retry_min = "100ms"
retry_max = "500ms"
timeout = "10s"
"""
            service = Service(load_config(write_site(tmp_path, config)))
            async with running(service):
                await service.hub.publish(readings(300))
                cloud = service.components["upstreams"].uplinks["cloud"]
                await wait_until(lambda: cloud.cursor == 300, timeout=30)

        run(main())
        fetched = tmp_path / "last.cbor"
        # The notls client reads the stored batch back over plain CoAP on the base port.
        subprocess.run(
            [
                "coap-client-notls",
                "-m",
                "get",
                "-o",
                str(fetched),
                "-B",
                "10",
                f"coap://127.0.0.1:{port}/ingest",
            ],
            check=True,
            timeout=20,
        )
    finally:
        stop_process(server)
    log = log_path.read_text(errors="replace")
    assert "DTLS: session" in log  # it really went over DTLS
    assert "sesame-key" not in caplog.text  # and the key is in no log line of ours
    pack = decode_senml_cbor(fetched.read_bytes(), time_digits=3)
    assert pack.batch == BatchId("test-site", 1) and len(pack.records) == 300
