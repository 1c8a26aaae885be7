"""A fleet rollout through goosebit (hawkBit's DDI API) on loopback: ten boxes run the real
gateway-hawkbit client, each with its own controller id and data partition; an operator uploads a
signed bundle and starts a rollout; one box installs with the host's real RAUC, one loses its
download halfway and resumes it with Range, one is killed with SIGKILL mid-download and resumes,
one fails its health gate in the tried slot and rolls back. What is asserted is what goosebit
stores: each box's state and version, the rollout's counts, the failed box's log."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from . import goosebit_peer, rauc_host
from .fleet import LIB, Box, executable
from .goosebit_peer import FlakyNetwork, Goosebit, wait_for

pytestmark = pytest.mark.skipif(goosebit_peer.missing() is not None, reason=goosebit_peer.missing() or "")

DEVICES = [f"gw-{i:02d}" for i in range(10)]
REAL_RAUC, CUT, KILLED, FAILING = "gw-00", "gw-03", "gw-04", "gw-07"
PAYLOAD = 3 << 20  # a bundle of ~3 MiB: long enough to interrupt on loopback


@pytest.fixture
def bundle(tmp_path):
    out = tmp_path / "out"
    rauc_host.fake_build(out, "2.0", payload_bytes=PAYLOAD)
    done = subprocess.run(
        [str(LIB / "bundle"), "--out", str(out), "--format", "plain", "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()), tmp_path / "cache/rauc-test-key/cert.pem"


@pytest.fixture
def fleet(tmp_path, bundle):
    server = Goosebit(tmp_path / "goosebit")
    network = None
    boxes: list[Box] = []
    card = None
    try:
        server.start()
        network = FlakyNetwork(server.port, cut_first={CUT}, slow={KILLED})
        network.start()
        if rauc_host.missing() is None:
            card = rauc_host.Card(tmp_path / REAL_RAUC, keyring=bundle[1])
            card.prepare()
            card.boot("A")
        for device in DEVICES:
            via = network.url if device in (CUT, KILLED) else server.url
            boxes.append(Box(tmp_path / device, device, via, card if device == REAL_RAUC else None))
        yield server, network, {b.id: b for b in boxes}
    finally:
        for box in boxes:
            box.stop(signal.SIGKILL)
        if card is not None:
            card.shutdown()
        if network is not None:
            network.stop()
        server.stop()


def test_a_rollout_reaches_ten_boxes_resumes_downloads_and_reports_a_rollback(fleet, bundle):
    server, network, boxes = fleet
    path, _ = bundle
    try:
        # goosebit 0.2.12 creates hardware rows with an unguarded get_or_create: two first-ever
        # registrations at the same instant leave duplicates and every later one fails (HTTP 500).
        # So the operator uploads first (that makes the bundle's hardware row) and one box comes
        # online before the others (that makes goosebit's "default" row).
        software = server.upload(path)

        def registered(devices):
            def check():
                known = server.devices()
                return (
                    all(
                        known.get(d, {}).get("hardware", {}).get("model") == "city-gateway-rpi"
                        for d in devices
                    )
                    and known
                )

            return check

        boxes[DEVICES[0]].start()
        wait_for(registered(DEVICES[:1]), 60, f"{DEVICES[0]} to register")
        for device in DEVICES[1:]:
            boxes[device].start()
        known = wait_for(registered(DEVICES), 60, "every box to register")
        assert all(known[d]["sw_version"] == "1.0.0" for d in DEVICES), "X.Y reported as X.Y.0"
        assert all(known[d]["last_state"] == "Registered" for d in DEVICES)

        started = time.monotonic()
        server.rollout(software, "2.0.0 to the fleet")

        wait_for(lambda: boxes[KILLED].partial_bytes() > 512 * 1024, 60, f"{KILLED} to be mid-download")
        boxes[KILLED].stop(signal.SIGKILL)
        killed_at = boxes[KILLED].partial_bytes()
        assert killed_at < path.stat().st_size
        boxes[KILLED].start()

        pending = set(DEVICES)
        while pending:
            for device in sorted(pending):
                if boxes[device].rebooted:
                    boxes[device].reboot_into_tried_slot(healthy=device != FAILING)
                    pending.discard(device)
            assert time.monotonic() - started < 240, f"never installed: {sorted(pending)}"
            time.sleep(0.2)

        def settled():
            devices = server.devices()
            return all(devices[d]["last_state"] in ("Finished", "Error") for d in DEVICES) and devices

        devices = wait_for(settled, 120, "every box to report its result")
        reached_all_s = time.monotonic() - started
    except BaseException:
        for box in boxes.values():
            print(f"--- {box.id}\n{box.log()[-3000:]}")
        print("--- goosebit\n" + server.log.read_text(errors="replace")[-5000:])
        raise

    for device in DEVICES:
        if device == FAILING:
            continue
        assert devices[device]["last_state"] == "Finished", device
        assert devices[device]["sw_version"] == "2.0.0", device
        assert devices[device]["progress"] == 100, device
    assert devices[FAILING]["last_state"] == "Error"
    assert devices[FAILING]["sw_version"] == "1.0.0", "the rolled-back box runs the old version"
    log = server.device_log(FAILING)
    assert "rolled back: gateway.service exited with status 3" in log and "check: gateway.service" in log
    assert "running 1.0 in slot A again" in log

    # Each result reached goosebit once: its log of each box (the details of every feedback of
    # this action) has the final line once, also after three more polls of every box. (The
    # rollout's success_count is no witness: goosebit 0.2.12 increments it read-modify-write,
    # and simultaneous reports lose increments; seen here as 8 of 9.)
    time.sleep(3 * 1.0)
    for device in DEVICES:
        final = "rolled back:" if device == FAILING else "version 2.0.0 committed in slot B"
        assert server.device_log(device).count(final) == 1, (device, server.device_log(device))

    # what each box installed is the uploaded bundle, byte for byte
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for device in DEVICES:
        if device != REAL_RAUC:
            assert (boxes[device].root / "installs.log").read_text().split() == [digest], device
    if boxes[REAL_RAUC].card is not None:
        erofs = path.parent / "gateway-2.0.system.erofs"
        slot = boxes[REAL_RAUC].card.slot("rootfs.1").read_bytes()[: erofs.stat().st_size]
        assert slot == erofs.read_bytes(), "RAUC wrote the bundle's system into slot B"

    # resumed downloads, as goosebit's own access log saw them: the cut box and the killed box
    # fetched the rest with Range (206), and the wire carried less than twice the bundle
    for device in (CUT, KILLED):
        statuses = [status for _, status in server.access_log(device)]
        assert statuses[0] == 200 and 206 in statuses[1:], (device, statuses)
        ranges = [d.range for d in network.downloads if d.device == device]
        assert ranges[0] is None and all(r and r.startswith("bytes=") for r in ranges[1:]), ranges
        sent = sum(d.bytes_sent for d in network.downloads if d.device == device)
        assert sent < 1.5 * path.stat().st_size, (device, sent)
    print(
        json.dumps(
            {
                "bench": "ota_rollout_goosebit",
                "devices": len(DEVICES),
                "bundle_bytes": path.stat().st_size,
                "upload_to_all_reported_s": round(reached_all_s, 1),
                "killed_at_bytes": killed_at,
            }
        )
    )


def test_a_corrupted_download_and_a_refused_bundle_are_reported_and_nothing_is_tried(tmp_path, bundle):
    path, _ = bundle
    server = Goosebit(tmp_path / "goosebit")
    network = FlakyNetwork(0, corrupt={"gw-bad-wire"})
    boxes: list[Box] = []
    try:
        server.start()
        network.upstream = server.port
        network.start()
        refuse = executable(
            tmp_path / "refusing-rauc",
            "#!/bin/sh\necho 'installing' \n"
            "echo 'rauc: Failed to verify bundle: signature verification failed' >&2\nexit 1\n",
        )
        bad_wire = Box(tmp_path / "gw-bad-wire", "gw-bad-wire", network.url)
        refused = Box(tmp_path / "gw-refused", "gw-refused", server.url, install=str(refuse))
        boxes += [bad_wire, refused]
        software = server.upload(path)
        for box in boxes:
            box.start()
            wait_for(
                lambda box=box: server.devices().get(box.id, {}).get("last_state") == "Registered",
                60,
                f"{box.id} to register",
            )
        server.rollout(software, "2.0.0")
        devices = wait_for(
            lambda: all(d["last_state"] == "Error" for d in server.devices().values()) and server.devices(),
            120,
            "both boxes to report a failure",
        )
        logs = {box.id: server.device_log(box.id) for box in boxes}
        (rollout,) = server.rollouts()
    except BaseException:
        for box in boxes:
            print(f"--- {box.id}\n{box.log()[-3000:]}")
        raise
    finally:
        for box in boxes:
            box.stop(signal.SIGKILL)
        network.stop()
        server.stop()
    assert devices["gw-bad-wire"]["sw_version"] == devices["gw-refused"]["sw_version"] == "1.0.0"
    assert "does not match its sha1" in logs["gw-bad-wire"] and "nothing was installed" in logs["gw-bad-wire"]
    assert not (bad_wire.root / "installs.log").exists(), "a bundle that fails its digest never reaches RAUC"
    assert "rauc install failed with exit status 1" in logs["gw-refused"]
    assert "signature verification failed" in logs["gw-refused"]
    for box in boxes:
        assert box.paths.autoboot.read_text() == (LIB / "boot/autoboot.txt").read_text(), box.id
        assert not (box.paths.config / "tryboot.req").exists(), f"{box.id} must not try anything"
        assert (
            not (box.root / "rebooted").exists()
            and not (box.root / "data/update/hawkbit/action.json").exists()
        )
    assert sum(line.startswith("download of ") for line in logs["gw-bad-wire"].splitlines()) == 1
    assert rollout["success_count"] == 0
