"""Read the gateway's own source as syntax trees, for the tests that check its structure."""

from __future__ import annotations

import ast
import gc
from pathlib import Path


def parse_file(path: Path) -> ast.Module:
    """``ast.parse`` of a file, with the garbage collector paused while it runs.

    CPython 3.11 can fail the parse with "SystemError: AST constructor recursion depth
    mismatch" when a collection runs finalizers from earlier tests' objects in the middle of
    building the tree (python/cpython#106905); the tree itself does not depend on it."""
    text = path.read_text(encoding="utf-8")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text, str(path))
    finally:
        if was_enabled:
            gc.enable()
