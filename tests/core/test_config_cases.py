"""Data-driven config cases: each folder under tests/cases/config holds a gateway.toml and
the exact problems `gateway check` must list for it (expected.err, exit status 2), or the
warnings it must print while the site stays valid (expected.warn, exit status 0), one per line."""

import shutil
from pathlib import Path

import pytest

from gateway.cli import main

CASES = Path(__file__).parent.parent / "cases" / "config"


def cases(expected: str) -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / expected).is_file())


def test_every_case_folder_says_what_to_expect():
    folders = {p.name for p in CASES.iterdir() if p.is_dir()}
    assert folders == set(cases("expected.err")) | set(cases("expected.warn"))


@pytest.mark.parametrize("case", cases("expected.err"))
def test_check_lists_every_problem(case, tmp_path, capsys):
    shutil.copytree(CASES / case, tmp_path / case)
    config = tmp_path / case / "gateway.toml"
    code = main(["check", "--config", str(config)])
    err = capsys.readouterr().err.replace(f"{config}:", "gateway.toml:")
    expected = (CASES / case / "expected.err").read_text().replace("{dir}", str(tmp_path / case))
    expected_lines = [line for line in expected.splitlines() if line.strip()]
    assert code == 2, err  # a site-config problem: the daemon would not start
    listed = [line.strip() for line in err.splitlines()[1:]]
    for line in expected_lines:
        assert any(line in got for got in listed), f"missing problem: {line}\nall:\n{err}"
    if case != "malformed-toml":
        assert len(listed) == len(expected_lines), err


@pytest.mark.parametrize("case", cases("expected.warn"))
def test_check_prints_warnings_and_passes(case, tmp_path, capsys):
    shutil.copytree(CASES / case, tmp_path / case)
    config = tmp_path / case / "gateway.toml"
    code = main(["check", "--config", str(config)])
    captured = capsys.readouterr()
    err = captured.err.replace(f"{config}:", "gateway.toml:")
    expected = (CASES / case / "expected.warn").read_text().replace("{dir}", str(tmp_path / case))
    expected_lines = [line for line in expected.splitlines() if line.strip()]
    assert code == 0, err  # warnings never stop a start
    assert ": OK - site" in captured.out
    assert err.splitlines()[0] == f"{len(expected_lines)} warning{'s' if len(expected_lines) != 1 else ''}" \
        " found (the gateway still starts):"
    listed = [line.strip() for line in err.splitlines()[1:]]
    assert listed == expected_lines, err


def test_valid_config_passes_check(tmp_path, capsys):
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "ok"\ndata_dir = "data"\n[[devices]]\nname = "lamp"\n'
                      'driver = "simulated"\n[devices.options]\nprofile = "streetlight"\n')
    assert main(["check", "--config", str(config)]) == 0
    assert "1 devices, 4 points (1 writable)" in capsys.readouterr().out


def test_missing_file_is_named(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert f"{tmp_path / 'nope.toml'}: file not found" in capsys.readouterr().err
