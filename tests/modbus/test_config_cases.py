"""Data-driven start-up errors: each folder under tests/cases/modbus is a site config (plus any
profile files) and expected.err, whose every line must appear in the error text."""

from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.problems import ConfigError

CASES = Path(__file__).parent.parent / "cases" / "modbus"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "expected.err").exists()))
def test_config_case(case):
    folder = CASES / case
    with pytest.raises(ConfigError) as caught:
        load_config(folder / "gateway.toml", check_data_dir=False)
    text = str(caught.value)
    for line in (folder / "expected.err").read_text(encoding="utf-8").splitlines():
        if line.strip():
            assert line.strip() in text, f"missing from the error text:\n  {line}\n--- got ---\n{text}"
