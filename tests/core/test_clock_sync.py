"""The clock's sync status: timesyncd's flag file when it is there (without loading ctypes),
else the kernel's own word through adjtimex(2). Run in fresh interpreters: the test process
has imported ctypes already."""

from __future__ import annotations

import json

from tests.fresh import run_fresh

PROBE = """
import json, sys
from pathlib import Path
from gateway import clock
clock._TIMESYNCD_FLAG = Path(__FLAG__)
synced = clock.kernel_clock_synced()
print(json.dumps({"synced": synced, "ctypes": "ctypes" in sys.modules,
                  "adjtimex": clock._adjtimex() if "ctypes" in sys.modules else None}))
"""


def test_timesyncd_flag_says_synced_without_ctypes(tmp_path):
    flag = tmp_path / "synchronized"
    flag.touch()
    run = run_fresh(PROBE.replace("__FLAG__", repr(str(flag))))
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == {"synced": True, "ctypes": False, "adjtimex": None}


def test_without_the_flag_the_kernel_is_asked(tmp_path):
    missing = tmp_path / "no-such-flag"
    run = run_fresh(PROBE.replace("__FLAG__", repr(str(missing))))
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    # adjtimex(2) answers a clock state (0..5, TIME_ERROR = 5), and the status follows it
    assert report["ctypes"] is True and 0 <= report["adjtimex"] <= 5
    assert report["synced"] is (report["adjtimex"] != 5)
