"""Every driver folder documents itself: a README.md and a sample.toml that `gateway check -c`
accepts on its own (found by glob, so a new driver folder is covered without a new test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

DRIVERS = Path(__file__).parents[2] / "drivers"
FOLDERS = sorted(p for p in DRIVERS.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def test_every_driver_folder_is_found():
    assert {"gpio", "lorawan", "modbus", "serial", "simulated"} <= {p.name for p in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_driver_folder_has_a_readme_and_a_sample(folder):
    assert (folder / "README.md").is_file()
    assert (folder / "sample.toml").is_file()


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_sample_passes_gateway_check_on_its_own(folder, capsys):
    sample = folder / "sample.toml"
    code = main(["check", "-c", str(sample)])
    out, err = capsys.readouterr()
    # 0: valid. Warnings (ports of adapters this machine lacks) are printed and allowed; a
    # sample never relies on a broken rule file, so 1 is not accepted either.
    assert code == 0, err
    assert f"{sample}: OK - site" in out
    assert "problem" not in err, err
