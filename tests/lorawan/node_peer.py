"""Runs the lora-packet cross-check helper under node, installing it on first use."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def require_lora_packet() -> None:
    """Skip when node/npm are absent; install the locked npm packages when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the lora-packet cross-check")
    if not (NODE_DIR / "node_modules" / "lora-packet").is_dir():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci in {NODE_DIR} failed:\n{result.stderr[-2000:]}")


def lora_packet(requests: list[dict]) -> list[dict]:
    require_lora_packet()
    result = subprocess.run(
        ["node", "crosscheck.js"],
        cwd=NODE_DIR,
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    for request, answer in zip(requests, answers, strict=True):
        assert "error" not in answer, f"lora-packet failed on {request}: {answer['error']}"
    return answers
