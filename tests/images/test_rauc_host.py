"""images/bundle and the tryboot backend under the host's real RAUC: a signed plain bundle
installed into slot B, the one tryboot, the commit or the rollback, a foreign bundle refused."""

import hashlib
import json
import subprocess

import pytest
from ota import tryboot

from .rauc_host import IMAGES, Card, fake_build, make_key, missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


def sha(path, size=None):
    data = path.read_bytes()
    return hashlib.sha256(data if size is None else data[:size]).hexdigest()


@pytest.fixture
def built(tmp_path):
    """A fake build of version 2.0 and its bundle, signed with a fresh test key."""
    out = tmp_path / "out"
    fake_build(out, "2.0")
    cache = tmp_path / "cache"
    done = subprocess.run(
        [str(IMAGES / "bundle"), "--out", str(out), "--format", "plain", "--cache", str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CI TEST KEY" in done.stderr
    bundle = out / "gateway-2.0.raucb"
    assert done.stdout.strip() == str(bundle) and bundle.exists()
    assert (out / "gateway.raucb").resolve() == bundle
    return out, bundle, cache / "rauc-test-key/cert.pem"


@pytest.fixture
def card(tmp_path, built):
    card = Card(tmp_path / "card", keyring=built[2])
    card.prepare()
    yield card
    card.shutdown()


def autoboot(card):
    return tryboot.parse_autoboot((card.config / "autoboot.txt").read_text())


def install_into_b(card, bundle, out):
    card.boot("A")
    info = card.rauc("info", f"--keyring={card.keyring}", "--output-format=shell", str(bundle))
    assert "RAUC_MF_VERSION='2.0.0'" in info.stdout, (
        "the manifest's version is semver (X.Y as X.Y.0)"
        and "RAUC_MF_COMPATIBLE='city-gateway-rpi'" in info.stdout
    )
    card.rauc("install", str(bundle))
    erofs = out / "gateway-2.0.system.erofs"
    assert sha(card.slot("rootfs.1"), erofs.stat().st_size) == sha(erofs)
    boot_b = out / "gateway-2.0.boot-B.vfat"
    assert sha(card.slot("boot.1"), boot_b.stat().st_size) == sha(boot_b), (
        "slot B got the boot FAT naming system B"
    )
    assert card.slot("rootfs.0").read_bytes().count(0) == card.slot("rootfs.0").stat().st_size, (
        "slot A untouched"
    )
    assert autoboot(card) == tryboot.Autoboot("A", "B"), "the default stays A until B commits"
    assert (card.config / "tryboot.req").read_text() == "B\n"
    tried = json.loads((card.root / "data/update/tried.json").read_text())
    assert tried["slot"] == "B" and tried["version"] == "2.0.0" and tried["from_version"] == "1.0"


def test_a_signed_bundle_installs_into_b_and_commits_from_the_tried_slot(card, built):
    out, bundle, _ = built
    install_into_b(card, bundle, out)
    status = card.rauc("status", "--output-format=shell").stdout
    assert "RAUC_SYSTEM_BOOTED_BOOTNAME='A'" in status
    card.boot("B")  # the firmware's one tryboot
    card.rauc("status", "mark-good")  # what gateway-commit runs once the checks pass
    assert autoboot(card) == tryboot.Autoboot("B", "A")
    assert not (card.config / "tryboot.req").exists()
    card.boot("B")  # an ordinary power-on now stays on B
    assert "RAUC_SYSTEM_BOOTED_BOOTNAME='B'" in card.rauc("status", "--output-format=shell").stdout


def test_a_failed_tried_slot_is_marked_bad_and_the_default_stays(card, built):
    out, bundle, _ = built
    install_into_b(card, bundle, out)
    card.boot("B")
    card.rauc("status", "mark-bad")
    assert autoboot(card) == tryboot.Autoboot("A", "B")
    assert "B=bad" in (card.config / "slot-state.txt").read_text()
    card.boot("A")  # the reboot: the firmware's default
    assert "RAUC_SYSTEM_BOOTED_BOOTNAME='A'" in card.rauc("status", "--output-format=shell").stdout


def test_a_bundle_signed_by_another_key_is_refused_and_nothing_is_written(card, built, tmp_path):
    out, _bundle, _ = built
    cert, key = make_key(tmp_path / "other-key")
    done = subprocess.run(
        [
            str(IMAGES / "bundle"),
            "--out",
            str(out),
            "--format",
            "plain",
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    card.boot("A")
    before = sha(card.config / "autoboot.txt")
    refused = card.rauc("install", str(out / "gateway-2.0.raucb"), check=False)
    assert refused.returncode != 0
    assert (
        "signature" in (refused.stdout + refused.stderr).lower()
        or "verif" in (refused.stdout + refused.stderr).lower()
    )
    assert card.slot("rootfs.1").read_bytes().count(0) == card.slot("rootfs.1").stat().st_size
    assert sha(card.config / "autoboot.txt") == before
    assert not (card.config / "tryboot.req").exists()
