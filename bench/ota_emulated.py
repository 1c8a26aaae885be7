"""A/B update figures under emulation as JSON: bundle size, install time in the guest, reboot to
commit, a failed boot to its rollback being reported, from the last ``images/test-ota``.

    sudo .venv/bin/python bench/ota_emulated.py          # figures of the last images/test-ota
    sudo .venv/bin/python bench/ota_emulated.py --run    # run images/test-ota first

All times are wall-clock seconds on the host while qemu emulates the board (TCG, no KVM; on the
2-core CI machine that is roughly ten times slower than a Pi 4). ``install_s`` is ``rauc install``
of a verity bundle copied to the data partition, as the guest's shell sees it.
``reboot_to_commit_s`` runs from ``systemctl reboot`` in slot A to the commit service's
``event=committed`` in slot B (qemu start + the guest's monotonic clock) and includes the commit
hold of the test bundle (30 s). ``failed_boot_to_rollback_reported_s`` runs from the power-on of
the tried slot whose gateway fails to start to the old slot's ``/health`` (CoAP) naming the
rollback; ``hung_boot_to_rollback_reported_s`` the same for the update that hangs and is reset by
the watchdog.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = (
    "bundle_bytes",
    "bundle_format",
    "install_s",
    "install_s_fail_variant",
    "install_s_schema_hang_variant",
    "bundle_copy_over_ssh_s",
    "reboot_to_commit_s",
    "failed_boot_to_rollback_reported_s",
    "hung_boot_to_rollback_reported_s",
    "bundle_build_s",
    "boots",
    "wall_s",
    "passed",
    "failed",
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", action="store_true", help="run images/test-ota first")
    parser.add_argument("--result", type=Path, default=REPO / "images" / "out" / "test-ota" / "result.json")
    args = parser.parse_args()
    if args.run:
        subprocess.run(
            [sys.executable, str(REPO / "images" / "test-ota"), "--work", str(args.result.parent)],
            check=False,
        )
    result = json.loads(args.result.read_text())
    figures = {key: result.get(key) for key in FIGURES}
    if isinstance(figures["bundle_bytes"], int):
        figures["bundle_mib"] = round(figures["bundle_bytes"] / 2**20, 1)
    print(json.dumps(figures, indent=1))
    return 0 if not result.get("failed") else 1


if __name__ == "__main__":
    sys.exit(main())
