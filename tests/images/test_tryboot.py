"""The tryboot logic (images/ota/tryboot.py) and the backend script RAUC runs, on real files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ota import tryboot
from ota.backend import Backend
from ota.files import Paths, write_atomic

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "images/rootfs/usr/lib/gateway-image/rauc-tryboot-backend"
SHIPPED = (REPO / "images/boot/autoboot.txt").read_text()


def test_the_shipped_autoboot_boots_a_and_tries_b():
    assert tryboot.parse_autoboot(SHIPPED) == tryboot.Autoboot("A", "B")


def test_parse_follows_the_firmware_sections_and_ignores_the_rest():
    text = (
        "# comment\n[pi4]\nboot_partition=7\n[all]\ntryboot_a_b=1\nboot_partition = 3 # B\n"
        "[tryboot]\nboot_partition=2\n[none]\nboot_partition=9\n"
    )
    assert tryboot.parse_autoboot(text) == tryboot.Autoboot("B", "A")
    assert tryboot.parse_autoboot("boot_partition=3\n") == tryboot.Autoboot("B", "A")


@pytest.mark.parametrize(
    "text, words",
    [
        ("[tryboot]\nboot_partition=3\n", "no [all] boot_partition"),
        ("[all]\nboot_partition=5\n", "neither slot A (2) nor slot B (3)"),
        ("[all]\nboot_partition=two\n", "line 2"),
    ],
)
def test_parse_refuses_what_the_firmware_could_not_boot(text, words):
    with pytest.raises(tryboot.TrybootError, match=re.escape(words)):
        tryboot.parse_autoboot(text)


def test_render_round_trips_and_keeps_tryboot_a_b():
    for value in (tryboot.Autoboot("A", "B"), tryboot.Autoboot("B", "A")):
        text = value.render()
        assert tryboot.parse_autoboot(text) == value
        assert "tryboot_a_b=1" in text


def test_booted_slot_from_the_cmdline_then_root_then_the_device_tree():
    assert tryboot.booted_slot("console=ttyS1 root=PARTUUID=6a7e0001-05 gateway.slot=B") == "B"
    assert tryboot.booted_slot("root=PARTUUID=6a7e0001-06 ro") == "B"
    assert tryboot.booted_slot("root=PARTUUID=6a7e0001-05 ro") == "A"
    assert tryboot.booted_slot("quiet", dt_partition=3) == "B"
    with pytest.raises(tryboot.TrybootError, match="cannot tell the booted slot"):
        tryboot.booted_slot("root=/dev/vda2")


def test_uncommitted_means_booted_from_a_slot_that_is_not_the_default():
    ab = tryboot.Autoboot("A", "B")
    assert tryboot.boot_state(ab, "A") is tryboot.BootState.COMMITTED
    assert tryboot.boot_state(ab, "B") is tryboot.BootState.UNCOMMITTED
    assert tryboot.commit(ab, "B") == tryboot.Autoboot("B", "A")
    assert tryboot.try_next(ab, "B") == ab
    assert tryboot.try_next(tryboot.Autoboot("B", "B"), "A") == tryboot.Autoboot("B", "A")
    assert tryboot.try_next(ab, "A") == ab  # trying the default is no try


def test_states_file_round_trip_ignores_junk():
    assert tryboot.parse_states("A=good\nB=bad\nC=good\nA=meh\n") == {"A": "good", "B": "bad"}
    assert tryboot.render_states({"B": "bad", "A": "good"}) == "A=good\nB=bad\n"


@pytest.fixture
def card(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "autoboot.txt").write_text(SHIPPED)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS1,115200 root=PARTUUID=6a7e0001-05 rootfstype=erofs ro gateway.slot=A\n")
    return Paths(config=config, cmdline=cmdline, dt_partition=tmp_path / "no-dt", data=tmp_path / "data")


def boot_into(paths, slot):
    part = {"A": 5, "B": 6}[slot]
    paths.cmdline.write_text(f"root=PARTUUID=6a7e0001-0{part} ro gateway.slot={slot}\n")


def test_an_install_tries_the_other_slot_once_and_mark_good_there_commits(card):
    backend = Backend(card)
    backend.set_state("B", "bad")  # RAUC, before writing slot B
    assert backend.get_state("B") == "bad"
    backend.set_primary("B")  # RAUC, after writing it
    assert tryboot.parse_autoboot(card.autoboot.read_text()) == tryboot.Autoboot("A", "B")
    assert card.tryboot_request.read_text() == "B\n"
    assert backend.get_primary() == "A", "the default stays A until the tried slot commits"
    assert backend.get_state("B") == "good"
    boot_into(card, "B")  # the firmware's one tryboot
    assert backend.get_current() == "B"
    backend.set_state("B", "good")  # `rauc status mark-good` from the commit service
    assert tryboot.parse_autoboot(card.autoboot.read_text()) == tryboot.Autoboot("B", "A")
    assert not card.tryboot_request.exists()
    assert backend.get_primary() == "B"


def test_mark_bad_in_the_tried_slot_leaves_the_default_alone(card):
    backend = Backend(card)
    backend.set_primary("B")
    boot_into(card, "B")
    backend.set_state("B", "bad")
    assert tryboot.parse_autoboot(card.autoboot.read_text()).default == "A"
    assert backend.get_state("B") == "bad"
    boot_into(card, "A")  # the next power-on: the default slot
    assert backend.get_primary() == backend.get_current() == "A"


def test_mark_good_in_the_committed_slot_writes_nothing(card):
    before = card.autoboot.read_bytes()
    Backend(card).set_state("A", "good")
    Backend(card).set_primary("A")
    assert card.autoboot.read_bytes() == before
    assert not card.tryboot_request.exists()


def test_an_install_that_starts_cancels_a_pending_try(card):
    backend = Backend(card)
    backend.set_primary("B")
    assert card.tryboot_request.exists()
    backend.set_state("B", "bad")  # a second install into B begins
    assert not card.tryboot_request.exists()


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "autoboot.txt"
    write_atomic(target, "one\n")
    write_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autoboot.txt"]


def run_script(card, *args):
    env = {
        **os.environ,
        "GATEWAY_IMAGE_LIB": str(REPO / "images"),
        "GATEWAY_TRYBOOT_DIR": str(card.config),
        "GATEWAY_TRYBOOT_CMDLINE": str(card.cmdline),
        "GATEWAY_TRYBOOT_DT_PARTITION": str(card.dt_partition),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_the_installed_script_speaks_rauc_s_interface(card):
    assert run_script(card, "get-primary").stdout == "A\n"
    assert run_script(card, "get-current").stdout == "A\n"
    assert run_script(card, "get-state", "B").stdout == "good\n"
    assert run_script(card, "set-primary", "B").returncode == 0
    assert card.tryboot_request.exists()
    unknown = run_script(card, "get-state", "C")
    assert unknown.returncode == 1 and "unknown slot 'C'" in unknown.stderr
    assert run_script(card, "frobnicate").returncode == 2
    card.autoboot.write_text("[all]\nboot_partition=9\n")
    broken = run_script(card, "get-primary")
    assert broken.returncode == 1 and str(card.autoboot) in broken.stderr
