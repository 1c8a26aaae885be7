"""Stand-ins for modules a library imports at its top but uses only on some paths.

``defer_import(name)`` puts a stand-in in sys.modules; its first attribute use imports the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not yet run; its first attribute use imports it.

    Code that imported the stand-in keeps it and reaches the real module through it."""

    def __getattr__(self, attr: str) -> Any:  # only for names the stand-in itself lacks
        real = sys.modules.get(self.__name__)
        if real is None or real is self:
            sys.modules.pop(self.__name__, None)
            real = importlib.import_module(self.__name__)
        return getattr(real, attr)


def defer_import(name: str) -> None:
    """Put a stand-in for ``name`` in sys.modules, so ``import name`` costs nothing until used.

    A module that is already imported, or cannot be found, is left alone (the real import
    then fails where it always did)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = DeferredModule(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)
