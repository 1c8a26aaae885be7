"""A deferred module costs nothing until used: probes of its dunders (inspect, gc, pickling
and warnings machinery ask for ``__file__`` and the like) leave it unloaded, the first real
attribute use loads it, and deferred ``from pkg import f`` functions load it when called.
Run in fresh interpreters: the test process has imported everything already."""

from __future__ import annotations

import json

from tests.fresh import run_fresh

PROBE = """
import gc, inspect, json, sys
from gateway.lazyimport import DeferredModule, defer_import

def real(name):
    return name in sys.modules and not isinstance(sys.modules[name], DeferredModule)

defer_import("calendar")
defer_import("importlib.metadata", functions=("entry_points",))
import calendar
from importlib.metadata import entry_points
probes = [getattr(calendar, "__file__", None), hasattr(calendar, "__version__"), inspect.getmodule(calendar)]
gc.collect()
steps = {"after_probes": [real("calendar"), real("importlib.metadata"), "email" in sys.modules]}
steps["leap"] = calendar.isleap(2028)
steps["after_use"] = [real("calendar"), real("importlib.metadata")]
steps["found"] = bool(entry_points(group="console_scripts"))
steps["after_call"] = real("importlib.metadata")
import importlib.metadata
steps["same_module"] = importlib.metadata is sys.modules["importlib.metadata"]
print(json.dumps(steps))
"""


def test_a_deferred_module_loads_on_first_use_and_not_on_probes():
    run = run_fresh(PROBE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == {
        "after_probes": [False, False, False],
        "leap": True,
        "after_use": [True, False],
        "found": True,
        "after_call": True,
        "same_module": True,
    }


SCOPED_PROBE = """
import json, sys, types
from gateway.lazyimport import DeferredModule, deferred_imports

library = types.ModuleType("library")
with deferred_imports({"calendar": ("isleap",), "fractions": ("Fraction",), "json": ()}):
    # what a library's top does while the stand-ins are there
    exec("import calendar\\nfrom calendar import isleap\\nfrom fractions import Fraction", library.__dict__)
    inside = [isinstance(sys.modules.get("calendar"), DeferredModule), "fractions" in sys.modules]
after_block = ["calendar" in sys.modules, "fractions" in sys.modules, "json" in sys.modules]
# the library reaches the real modules through its stand-ins
leap = library.isleap(2028) and library.calendar.isleap(2024)
half = str(library.Fraction(1, 2))
# and a later importer gets the real modules, classes included
from fractions import Fraction
import calendar
print(json.dumps({"inside": inside, "after_block": after_block, "leap": leap, "half": half,
                  "real_class": isinstance(Fraction, type),
                  "real_module": not isinstance(calendar, DeferredModule)}))
"""


def test_stand_ins_placed_for_a_library_import_leave_sys_modules_after_it():
    run = run_fresh(SCOPED_PROBE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == {
        "inside": [True, True],
        # json was imported already, so it was left alone; the other two left with the block
        "after_block": [False, False, True],
        "leap": True,
        "half": "1/2",
        "real_class": True,
        "real_module": True,
    }
