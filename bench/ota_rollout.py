"""Fleet rollout time through goosebit on loopback, printed as JSON.

N boxes (separate processes of the real gateway-hawkbit client, registered and polling at
goosebit's interval) get a rollout of one signed plain bundle. Measured from the operator's
`PUT /api/v1/rollouts` until goosebit shows every box finished: each box's poll, download,
digest check, install (a recording stand-in for `rauc install`), and the success it reports
after its tried slot commits (gateway-commit's commit, run as soon as the box asks to reboot;
the commit's own 5 min hold on a real box is not part of this figure).

Needs goosebit in .goosebit-venv (tests/run makes it), rauc, mkfs.erofs, mkfs.vfat and mtools.
Run: .venv/bin/python bench/ota_rollout.py [--boxes 10] [--payload-mib 3] [--poll 00:00:01]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "images"))

from tests.images import goosebit_peer, rauc_host  # noqa: E402
from tests.images.fleet import LIB, Box  # noqa: E402
from tests.images.goosebit_peer import Goosebit, wait_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boxes", type=int, default=10)
    parser.add_argument("--payload-mib", type=float, default=3.0)
    parser.add_argument("--poll", default="00:00:01", help="goosebit's polling interval, HH:MM:SS")
    args = parser.parse_args()
    if (why := goosebit_peer.missing()) is not None:
        raise SystemExit(why)
    with tempfile.TemporaryDirectory(prefix="ota-rollout-") as scratch:
        root = Path(scratch)
        out = root / "out"
        rauc_host.fake_build(out, "2.0", payload_bytes=int(args.payload_mib * (1 << 20)))
        done = subprocess.run(
            [str(LIB / "bundle"), "--out", str(out), "--format", "plain", "--cache", str(root / "cache")],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        bundle = Path(done.stdout.strip())
        bundle_bytes = bundle.stat().st_size
        server = Goosebit(root / "goosebit", poll_time=args.poll)
        boxes = [Box(root / f"box-{i:03d}", f"box-{i:03d}", server.url) for i in range(args.boxes)]
        try:
            server.start()
            software = server.upload(bundle)
            boxes[0].start()  # goosebit's first registrations must not race (see the fleet test)
            wait_for(lambda: boxes[0].id in server.devices(), 60, "the first box")
            for box in boxes[1:]:
                box.start()

            def registered() -> bool:
                devices = server.devices()
                return all(devices.get(b.id, {}).get("last_state") == "Registered" for b in boxes)

            wait_for(registered, 120, "every box to register")
            started = time.monotonic()
            server.rollout(software, "bench")
            pending = {b.id: b for b in boxes}
            while pending:
                for box in list(pending.values()):
                    if box.rebooted:
                        box.reboot_into_tried_slot(healthy=True)
                        del pending[box.id]
                if time.monotonic() - started > 600:
                    raise SystemExit(f"never installed: {sorted(pending)}")
                time.sleep(0.05)
            installed_s = time.monotonic() - started

            def finished() -> bool:
                return all(d["last_state"] == "Finished" for d in server.devices().values())

            wait_for(finished, 600, "every box to report success", interval=0.05)
            reported_s = time.monotonic() - started
            versions = sorted({d["sw_version"] for d in server.devices().values()})
        finally:
            for box in boxes:
                box.stop(signal.SIGKILL)
            server.stop()
    print(
        json.dumps(
            {
                "bench": "ota_rollout",
                "server": "goosebit 0.2.12 (loopback)",
                "boxes": args.boxes,
                "bundle_bytes": bundle_bytes,
                "poll_interval": args.poll,
                "rollout_to_all_installed_s": round(installed_s, 2),
                "rollout_to_all_reported_s": round(reported_s, 2),
                "versions_after": versions,
            }
        )
    )


if __name__ == "__main__":
    main()
