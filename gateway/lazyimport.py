"""Stand-ins for modules a library imports at its top but uses only on some paths.

``defer_import(name)`` puts a stand-in in sys.modules; its first attribute use imports the module.
``deferred_imports(...)`` does the same only while a library imports, for a module that others
may import whole later. ``defer_package_init(name)`` lets a package's submodules import without
its ``__init__``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any


def _real(name: str, stand_in: types.ModuleType) -> types.ModuleType:
    real = sys.modules.get(name)
    if real is None or real is stand_in:
        sys.modules.pop(name, None)
        real = importlib.import_module(name)
    return real


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not yet run; its first attribute use imports it.

    Code that imported the stand-in keeps it and reaches the real module through it."""

    _deferred_functions: tuple[str, ...] = ()

    def __getattr__(self, attr: str) -> Any:  # only for names the stand-in itself lacks
        if attr.startswith("__") and (attr != "__path__" or self._deferred_functions):
            # Probes of module dunders (``__file__``, ``__version__``; ``__path__``, which
            # ``from pkg import f`` asks first) must not import it: the stand-in has none.
            # A plain stand-in answers ``__path__``, so a submodule import still works.
            raise AttributeError(attr)
        return getattr(_real(self.__name__, self), attr)


def _deferred_function(stand_in: DeferredModule, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_real(stand_in.__name__, stand_in), attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    return call


def defer_import(name: str, functions: tuple[str, ...] = ()) -> None:
    """Put a stand-in for ``name`` in sys.modules, so ``import name`` costs nothing until used.

    ``functions``: names a library takes with ``from name import f`` at its import; each is a
    function on the stand-in that imports the module when called (the library must import
    no submodule of ``name`` while the stand-in is there). A module that is already
    imported, or cannot be found, is left alone (the real import then fails where it always
    did)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    stand_in = DeferredModule(name)
    stand_in.__spec__ = spec
    for attr in functions:
        setattr(stand_in, attr, _deferred_function(stand_in, attr))
    stand_in._deferred_functions = functions
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)


@contextlib.contextmanager
def deferred_imports(modules: Mapping[str, tuple[str, ...]]) -> Iterator[None]:
    """Stand-ins (as ``defer_import``) for ``modules`` (name -> its ``functions``) while the
    block runs, to be imported by a library there; afterwards every stand-in still unused
    leaves sys.modules. The library keeps its stand-ins (and imports the module through them
    on first use), and anyone importing that module later gets the real one, with the real
    classes behind names the library took as deferred functions."""
    placed = []
    for name, functions in modules.items():
        if name not in sys.modules:
            defer_import(name, functions)
            placed.append(name)
    try:
        yield
    finally:
        for name in placed:
            if isinstance(sys.modules.get(name), DeferredModule):
                # A submodule's stand-in stays its package's attribute, for a library that
                # reaches it through the package; the next real import replaces it there.
                del sys.modules[name]


class DeferredPackage(types.ModuleType):
    """A package whose ``__init__`` has not run yet: its submodules import as usual, and the
    first use of a name of the package's own runs ``__init__``, in this same module object."""

    def __getattr__(self, attr: str) -> Any:  # only for names the package does not have yet
        if attr.startswith("__") or self.__dict__.get("_deferred_init_ran"):
            raise AttributeError(attr)
        self._deferred_init_ran = True
        loader = self.__spec__.loader if self.__spec__ is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            raise AttributeError(attr)
        loader.exec_module(self)
        return object.__getattribute__(self, attr)


def defer_package_init(name: str) -> None:
    """Register package ``name`` without running its ``__init__``, for a package whose
    ``__init__`` imports every part of it (gpiozero's: boards, robots, SPI ADCs, tones and
    fonts) where a user needs a few submodules. ``import name.sub`` then costs only that
    submodule; ``name.attr`` runs ``__init__`` first, so every use of the package still works.
    A package already imported, or not found, is left alone."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    package.__class__ = DeferredPackage
    sys.modules[name] = package
