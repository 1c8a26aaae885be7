"""Cron schedules load croniter on first use, without importlib.resources (and the tempfile,
shutil, bz2 and lzma it brings), which croniter's dateutil imports for tz files croniter never
reads. Run in a fresh interpreter: the test process has imported everything."""

from __future__ import annotations

import json

from tests.fresh import run_fresh

PROBE = """
import datetime as dt, json, sys
from gateway.lazyimport import DeferredModule
from gateway.rules.timeofday import SiteTimes, check_cron

def real(name):
    return name in sys.modules and not isinstance(sys.modules[name], DeferredModule)

site = SiteTimes(timezone="Europe/Berlin")
after = dt.datetime(2026, 12, 3, 21, 30, tzinfo=dt.UTC).timestamp()
at = dt.datetime.fromtimestamp(site.next_cron("0 23 * * *", after), dt.UTC).isoformat()
report = {"valid": check_cron("*/15 * * * 1-5"), "invalid": bool(check_cron("every night")),
          "next": at, "croniter": real("croniter"),
          "unloaded": [m for m in ("importlib.resources", "tempfile", "shutil", "bz2") if real(m)]}
import importlib.resources  # whoever needs it later gets the real one
report["later"] = importlib.resources.files("gateway").joinpath("demo").is_dir()
print(json.dumps(report))
"""


def test_cron_schedules_load_croniter_without_importlib_resources():
    run = run_fresh(PROBE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == {
        "valid": None,
        "invalid": True,
        "next": "2026-12-03T22:00:00+00:00",  # 23:00 in Berlin (UTC+1 in December)
        "croniter": True,
        "unloaded": [],
        "later": True,
    }
