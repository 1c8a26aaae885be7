"""The tools the demo tells people to run, as paths that work when pasted: the copy installed
next to this Python (a venv's bin/, after the README's install), else the one on PATH."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def tool_command(name: str, module: str) -> str:
    """A shell-ready command for the console script ``name`` (or ``python -m module``)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside.absolute()))
    found = on_path(name)
    if found:
        return shlex.quote(str(found.absolute()))
    return f"{shlex.quote(sys.executable)} -m {module}"


def on_path(name: str) -> Path | None:
    """The executable ``name`` on PATH, as ``shutil.which`` finds it on POSIX; the demo gateway
    does not import shutil (with zlib, bz2 and lzma, about 0.5 MB for the demo's whole run)."""
    for folder in os.get_exec_path():
        candidate = Path(folder or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def gateway_command() -> str:
    return tool_command("gateway", "gateway")


def aiocoap_client_command() -> str:
    return tool_command("aiocoap-client", "aiocoap.cli.client")
