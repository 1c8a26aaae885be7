"""The image tests' emulated Pi firmware (images/emulated_board.py): which boot partition it
picks from autoboot.txt, and that the one-shot tryboot flag on p1 is spent before the boot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import emulated_board as board
import pytest
from ota import tryboot

AUTOBOOT = tryboot.Autoboot("A", "B").render()


def test_all_boots_the_default_and_tryboot_the_tried_slot():
    assert board.autoboot_partition(AUTOBOOT, tryboot=False) == 2
    assert board.autoboot_partition(AUTOBOOT, tryboot=True) == 3
    committed = tryboot.Autoboot("B", "A").render()
    assert board.autoboot_partition(committed, tryboot=False) == 3
    assert board.autoboot_partition(committed, tryboot=True) == 2


def test_later_lines_win_and_other_boards_sections_are_ignored():
    text = "[all]\nboot_partition=2\n[pi5]\nboot_partition=9\n[pi4]\nboot_partition=3  # this board\n"
    assert board.autoboot_partition(text, tryboot=False) == 3
    assert board.autoboot_partition("[tryboot]\nboot_partition=3\n", tryboot=True) == 3
    with pytest.raises(AssertionError, match="no boot_partition"):
        board.autoboot_partition("[tryboot]\nboot_partition=3\n", tryboot=False)


@pytest.fixture
def card(tmp_path: Path) -> board.Card:
    """A card file with a partition table and p1 as a FAT holding autoboot.txt."""
    if not (shutil.which("mkfs.vfat") and shutil.which("mcopy") and shutil.which("sfdisk")):
        pytest.skip("needs dosfstools, mtools and fdisk")
    os.environ["MTOOLS_SKIP_CHECK"] = "1"
    path = tmp_path / "card.img"
    fat = tmp_path / "p1.vfat"
    subprocess.run(
        ["mkfs.vfat", "-C", "-n", "GWCONFIG", str(fat), str(8 * 1024)], check=True, capture_output=True
    )
    (tmp_path / "autoboot.txt").write_text(AUTOBOOT)
    subprocess.run(["mcopy", "-i", str(fat), str(tmp_path / "autoboot.txt"), "::autoboot.txt"], check=True)
    with open(path, "wb") as f:
        f.truncate((2048 + 8 * 2048) * 512)
    subprocess.run(
        ["sfdisk", "-q", str(path)],
        input="label: dos\nstart=2048, size=16384, type=c\n",
        text=True,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["dd", f"if={fat}", f"of={path}", "bs=512", "seek=2048", "conv=notrunc", "status=none"], check=True
    )
    return board.Card(path)


def test_the_tryboot_flag_is_cleared_before_the_one_boot_it_selects(card: board.Card, tmp_path: Path):
    assert board.firmware_choose(card) == board.BootChoice(2, False, AUTOBOOT)
    flag = tmp_path / "tryboot.req"
    flag.write_text("B\n")
    card.put(1, flag, board.TRYBOOT_FLAG)
    assert board.firmware_choose(card).partition == 3
    assert not card.exists(1, board.TRYBOOT_FLAG), "a power cut or reset after this boot must not try again"
    assert board.firmware_choose(card) == board.BootChoice(2, False, AUTOBOOT)
