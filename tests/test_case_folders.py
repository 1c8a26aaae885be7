"""The one runner of every data-driven case: each folder under tests/cases/<family>/ is one
case, named with dashes, and its files say what kind it is and what to expect:

- ``gateway.toml`` + ``expected.err``: `gateway check` refuses the site (exit 2) and lists
  exactly these problems, in order, one per line;
- ``gateway.toml`` + ``expected.warn``: `gateway check` passes (exit 0) and prints exactly
  these warnings;
- ``rules.toml`` + ``case.toml`` + ``timeline.txt`` + ``expected.txt``: the rules engine on a
  manual clock replays the timeline and emits exactly these commands; with ``expected.err``
  instead, the rule file is refused with exactly these problems;
- a codec ``*.yaml`` + ``expected.out``: `gateway codecs test` prints exactly this.

In expected files ``{dir}`` stands for the case folder. A folder that fits no kind fails, so a
case is never skipped by accident.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.rules.harness import run_case

CASES = Path(__file__).parent / "cases"
FOLDERS = sorted(p for p in CASES.glob("*/*") if p.is_dir())


def kind_of(folder: Path) -> str | None:
    names = {p.name for p in folder.iterdir()}
    if "gateway.toml" in names and "expected.err" in names:
        return "config-error"
    if "gateway.toml" in names and "expected.warn" in names:
        return "config-warning"
    if {"rules.toml", "case.toml"} <= names and names & {"expected.txt", "expected.err"}:
        return "rules"
    if "expected.out" in names and any(n.endswith((".yaml", ".yml")) for n in names):
        return "codec-examples"
    return None


def expected_lines(path: Path, case_dir: Path) -> list[str]:
    text = path.read_text(encoding="utf-8").replace("{dir}", str(case_dir))
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_case(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", folder.name), f"{folder.name}: case names use dashes"
    kind = kind_of(folder)
    assert kind is not None, f"{folder} says nothing to expect (see this runner's docstring)"
    case_dir = tmp_path / folder.name
    shutil.copytree(folder, case_dir)
    if kind == "config-error":
        code, listed = check(case_dir, capsys)
        assert code == 2, listed  # a site-config problem: the daemon would not start
        assert listed[1:] == expected_lines(case_dir / "expected.err", case_dir)
        assert listed[0] == f"{len(listed) - 1} problem{'s' if len(listed) != 2 else ''} found:"
    elif kind == "config-warning":
        code, listed = check(case_dir, capsys)
        assert code == 0, listed  # warnings never stop a start
        wanted = expected_lines(case_dir / "expected.warn", case_dir)
        assert (
            listed[0]
            == f"{len(wanted)} warning{'s' if len(wanted) != 1 else ''} found (the gateway still starts):"
        )
        assert listed[1:] == wanted
    elif kind == "rules":
        expected, actual = run_case(case_dir)
        assert actual == expected
    else:
        codec = next(p for p in sorted(case_dir.iterdir()) if p.suffix in (".yaml", ".yml"))
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "codecs", "test", str(codec)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        got = [line.replace(str(case_dir) + "/", "") for line in result.stdout.strip().splitlines()]
        assert got == expected_lines(case_dir / "expected.out", case_dir)
        assert result.returncode == (1 if any(line.startswith("FAIL") for line in got) else 0)


def check(case_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`gateway check` of the case's gateway.toml: exit status and the stderr lines, with the
    config's own path shown as gateway.toml."""
    config = case_dir / "gateway.toml"
    code = main(["check", "--config", str(config)])
    err = capsys.readouterr().err.replace(f"{config}:", "gateway.toml:")
    return code, [line.strip() for line in err.splitlines() if line.strip()]


def test_every_family_has_cases() -> None:
    assert {p.parent.name for p in FOLDERS} >= {"config", "lorawan", "modbus", "rules", "serial"}
