"""report.txt on the card: what a technician reads on a laptop after the box booted once.

Rendering is a pure function of the import result and the facts probed on the box, so tests
check the text without a device.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .importer import ImportResult
    from .paths import Paths

HEADLINES = {
    "imported": "OK - the site folder was checked and installed",
    "imported-rule-problems": "OK WITH RULE PROBLEMS - site settings installed; each broken rule file "
    "runs its last good version (or none) until fixed",
    "rejected": "REJECTED - nothing was changed; the box keeps running its previous settings",
    "no-site-folder": "NOTHING TO IMPORT - no gateway/gateway.toml on the card; the installed settings run",
}


@dataclass(frozen=True, slots=True)
class Facts:
    """What the box found about itself after the gateway started (probe.py)."""

    gateway: str
    upstream: str
    clock: str
    serial_ports: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    data_partition: str | None = None


def read_release(path: Path) -> dict[str, str]:
    release: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key and value:
                release[key.strip()] = value.strip()
    except OSError:
        pass
    return release


def render(release: dict[str, str], result: ImportResult, facts: Facts | None, written_at: str) -> str:
    lines = [
        "Gateway commissioning report",
        "============================",
        f"Written:  {written_at} (UTC, by the box itself; see Clock below)",
        f"Image:    {release.get('IMAGE_VERSION', 'unknown')} ({release.get('IMAGE_SOURCE', '?')}, "
        f"kernel {release.get('KERNEL', '?')})",
        f"Gateway:  version {release.get('GATEWAY_VERSION', 'unknown')}",
        "",
        f"Import:   {HEADLINES.get(result.status, result.status)}",
        f"          (checked at {result.at}, gateway check exit status {result.check_exit})",
    ]
    if result.findings:
        lines.append("Problems (file:line: what to fix):")
        lines += [f"  {'[rule file] ' if f.kind == 'rules' else ''}{f}" for f in result.findings]
    if result.changed:
        lines.append("Installed on the box: " + ", ".join(result.changed))
    elif result.accepted:
        lines.append("Installed on the box: no changes since the last import")
    if result.removed_from_card:
        lines.append(
            "Removed from this card (secrets; the box keeps its copy, later boots need them no more):"
        )
        lines += [f"  {name}" for name in result.removed_from_card]
    if result.applied:
        lines.append("Applied: " + "; ".join(result.applied))
    lines.append("")
    if facts is None:
        lines += ["Status:   the gateway is starting; this report is rewritten once it runs."]
    else:
        lines += [
            f"Status:   {facts.gateway}",
            f"Upstream: {facts.upstream}",
            f"Clock:    {facts.clock}",
            "Serial ports: " + (", ".join(facts.serial_ports) if facts.serial_ports else "none found"),
            "Devices:  " + (", ".join(facts.devices) if facts.devices else "none found"),
        ]
        if facts.data_partition:
            lines.append(f"Data partition: {facts.data_partition}")
    lines += [
        "",
        "Edit the files in this gateway/ folder and boot the box again to apply them.",
        "The commented *.example files show every setting.",
    ]
    return "\r\n".join(lines) + "\r\n"  # CRLF: Notepad shows it right, everything else too


def write_report(paths: Paths, result: ImportResult, facts: Facts | None) -> Path:
    text = render(
        read_release(paths.release_file), result, facts, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    )
    target = paths.report_file
    tmp = target.with_name("report.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.sync()
    return target
