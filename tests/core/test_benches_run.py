"""The benches that reach into the gateway's internals (the store's schema, the service, the
rules engine) run to their JSON at a small size, so a change inside never leaves one broken
unnoticed: bench/ingest.py once stopped at a schema change. Figures are not judged here;
bench/ prints them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def bench(name: str, *args: str) -> dict:
    run = subprocess.run(
        [sys.executable, f"bench/{name}", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_ingest_runs_the_gateway_and_the_raw_ceiling_on_the_same_rows():
    figures = bench("ingest.py", "--readings", "5000", "--trials", "1")
    assert figures["readings"] == 5000 and figures["synchronous"] == "FULL"
    assert figures["gateway_end_to_end_readings_per_s"] > 0 and figures["raw_ceiling_readings_per_s"] > 0
    assert figures["gateway_peak_rss_mb"] > 0


def test_scale_runs_a_site_through_the_whole_service():
    (size,) = bench("scale.py", "--sizes", "100", "--window", "2")["sizes"]
    assert size["points"] == 100 and size["exit_code"] == 0
    assert size["all_points_seen_after_s"] is not None and size["delivered_upstream_per_s"] > 0


def test_rules_latency_times_every_probe_to_the_wire():
    figures = bench("rules_latency.py", "--probes", "20", "--readings", "1000")
    assert figures["latency_200_rules_1000_readings_per_s"]["probes_written"] == 20
    assert figures["modbus_reading_to_modbus_write_on_the_wire"]["writes_on_the_wire"] == 20
    assert figures["evaluation_500_rules"]["readings"] == 1000
