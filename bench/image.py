"""Card image figures as JSON: build time, image size (zstd and raw), boot-to-ready time under
emulation, the gateway's RSS inside the emulated board, bytes written to the card per hour.

    sudo .venv/bin/python bench/image.py          # figures of the last images/build + images/test
    sudo .venv/bin/python bench/image.py --run    # build and boot-test first (as .ci/run does)

The write rate is measured in the guest from /sys/block/vda/stat (sectors written) over a
window of `images/test --write-window` seconds (default 120) while the demo's simulated street
runs (the demo's devices and intervals: ~0.9 readings/s), and extrapolated to an hour. It
counts everything the guest writes (SQLite group commits, the journal, ext4 metadata), as seen
by the emulated disk, not the card's internal write amplification.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", action="store_true", help="run images/build and images/test first")
    parser.add_argument("--build-json", type=Path, default=REPO / "images" / "out" / "build.json")
    parser.add_argument("--test-json", type=Path, default=REPO / "images" / "out" / "test" / "result.json")
    args = parser.parse_args()
    if args.run:
        subprocess.run(["bash", str(REPO / "images" / "build")], check=True)
        subprocess.run([sys.executable, str(REPO / "images" / "test")], check=True)
    build = json.loads(args.build_json.read_text())
    test = json.loads(args.test_json.read_text())
    figures = {
        "build_seconds": build["build_seconds"],
        "base_cached": build.get("base_cached"),
        "image_zst_mib": round(build["image_zst_bytes"] / 2**20, 1),
        "image_raw_mib": round(build["image_bytes"] / 2**20, 1),
        "system_erofs_mib": round(build["system_bytes"] / 2**20, 1),
        "boot_to_ready_s_first_boot": test.get("boot1_to_ready_s"),
        "boot_to_ready_s_second_boot": test.get("boot2_to_ready_s"),
        "gateway_rss_mib_in_guest": round(test["gateway_rss_kib"] / 1024, 1)
        if "gateway_rss_kib" in test
        else None,
        "card_write_window_s": test.get("write_window_s"),
        "card_bytes_written_per_hour": test.get("card_bytes_per_hour"),
        "card_mib_written_per_day": round(test["card_bytes_per_hour"] * 24 / 2**20, 1)
        if "card_bytes_per_hour" in test
        else None,
        "boot_test_passed": test.get("passed"),
        "boot_test_failed": test.get("failed"),
    }
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
