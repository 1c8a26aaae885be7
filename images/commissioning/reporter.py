"""After the gateway started: rewrite report.txt with its status, upstream and the box's devices."""

from __future__ import annotations

from .importer import ImportResult, load_result
from .paths import Paths
from .probe import probe
from .report import read_release, write_report


def main() -> int:
    paths = Paths.from_environment()
    result = load_result(paths) or ImportResult("no-site-folder", "unknown (import-boot-config did not run)")
    facts = probe(paths.installed / "gateway.toml", read_release(paths.release_file))
    target = write_report(paths, result, facts)
    print(f'gateway-image: {target.name} written import={result.status} status="{facts.gateway}"', flush=True)
    return 0
