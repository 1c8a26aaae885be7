"""Run test code in a fresh interpreter: what it imports, and what its memory does, is not
shaped by the tests that ran before it in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_fresh(source: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -c source`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
