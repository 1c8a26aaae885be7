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
