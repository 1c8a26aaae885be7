"""The tools the demo tells people to run, as paths that work when pasted: the copy installed
next to this Python (a venv's bin/, after the README's install), else the one on PATH."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def tool_command(name: str, module: str) -> str:
    """A shell-ready command for the console script ``name`` (or ``python -m module``)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside.absolute()))
    found = shutil.which(name)
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(sys.executable)} -m {module}"


def gateway_command() -> str:
    return tool_command("gateway", "gateway")


def aiocoap_client_command() -> str:
    return tool_command("aiocoap-client", "aiocoap.cli.client")
