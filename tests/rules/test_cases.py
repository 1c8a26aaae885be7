"""Every folder under tests/cases/rules/ is one case: a new case is a new folder."""

from pathlib import Path

import pytest

from tests.rules.harness import run_case

CASES = Path(__file__).parent.parent / "cases" / "rules"


@pytest.mark.parametrize("folder", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_case(folder: Path) -> None:
    expected, actual = run_case(folder)
    assert actual == expected
