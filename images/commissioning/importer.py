"""Every boot: check the card's site folder, install it when the site config is valid, apply the
identity, network and SSH settings, take secrets off the card, and leave the verdict for report.txt.

A folder with a site-config problem changes nothing: the previous settings keep running, and
the report names the file on the card and the line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from . import apply
from .check import EXIT_OK, run_check
from .findings import Finding
from .install import Owner, install, remove_secrets_from_card
from .paths import Paths
from .report import write_report
from .sitefolder import (
    IDENTITY,
    NETWORK,
    SITE_CONFIG,
    SSH_KEYS,
    UPDATES,
    Staging,
    check_identity,
    check_network,
    check_ssh_keys,
    check_updates,
    rules_directory,
    stage,
)

Status = Literal["imported", "imported-rule-problems", "rejected", "no-site-folder"]


@dataclass(slots=True)
class ImportResult:
    status: Status
    at: str
    check_exit: int | None = None
    findings: list[Finding] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed_from_card: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("imported", "imported-rule-problems")

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["findings"] = [f.to_json() for f in self.findings]
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ImportResult:
        raw_findings = data.get("findings", [])
        findings = [Finding.from_json(f) for f in raw_findings] if isinstance(raw_findings, list) else []

        def strings(key: str) -> list[str]:
            value = data.get(key, [])
            return [str(v) for v in value] if isinstance(value, list) else []

        exit_status = data.get("check_exit")
        return cls(
            status=data.get("status", "rejected"),
            at=str(data.get("at", "")),  # type: ignore[arg-type]
            check_exit=exit_status if isinstance(exit_status, int) else None,
            findings=findings,
            changed=strings("changed"),
            removed_from_card=strings("removed_from_card"),
            applied=strings("applied"),
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def import_site_folder(paths: Paths) -> ImportResult:
    """Check and install; never raises for a technician's mistake."""
    if not (paths.card / SITE_CONFIG).is_file():
        return ImportResult("no-site-folder", _now())
    rules_dir = rules_directory(paths.card / SITE_CONFIG)
    staging = stage(paths.card, paths.installed, paths.run / "staging", rules_dir)
    try:
        findings: list[Finding] = []
        check_identity(staging, findings)
        network = check_network(staging, findings)
        check_ssh_keys(staging, findings)
        updates = check_updates(staging, findings)
        checked = run_check(paths.gateway_bin, staging, rules_dir)
        findings += checked.findings
        if not checked.site_ok or any(f.kind != "rules" for f in findings):
            return ImportResult("rejected", _now(), checked.exit_status, findings)
        extra = {NETWORK} if network is not None and network.has_secret else set()
        if updates is not None and updates.has_secret:
            extra.add(UPDATES)
        changed = install(staging, paths.installed, Owner.lookup(paths.owner), extra)
        removed = remove_secrets_from_card(paths.card, staging, extra)
        status: Status = (
            "imported" if checked.exit_status == EXIT_OK and not findings else "imported-rule-problems"
        )
        return ImportResult(status, _now(), checked.exit_status, findings, changed, removed)
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)


def apply_installed(paths: Paths) -> list[str]:
    """Hostname, network and SSH keys from the installed settings (whatever this boot's import
    did). Each is applied on its own: one failing never keeps the others (SSH above all) away."""
    staging = Staging(paths.installed, {})
    ignored: list[Finding] = []
    done: list[str] = []
    try:
        hostname = apply.apply_identity(check_identity(staging, ignored), paths.hostname_file)
        if hostname:
            done.append(f"hostname: {hostname}")
    except OSError as exc:
        done.append(f"hostname NOT set: {exc}")
    try:
        done += apply.apply_network(check_network(staging, ignored), paths.network_dir, paths.run)
    except OSError as exc:
        done.append(f"network settings NOT applied: {exc}")
    try:
        keys = apply.apply_ssh_keys(check_ssh_keys(staging, ignored), paths.ssh)
        if keys:
            done.append(f"ssh: {keys} authorized key{'s' if keys != 1 else ''} for root")
    except OSError as exc:
        done.append(f"ssh keys NOT installed: {exc}")
    return done


def save_result(result: ImportResult, paths: Paths) -> None:
    paths.run.mkdir(parents=True, exist_ok=True)
    tmp = paths.result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1))
    os.replace(tmp, paths.result_file)


def load_result(paths: Paths) -> ImportResult | None:
    try:
        return ImportResult.from_json(json.loads(paths.result_file.read_text()))
    except (OSError, ValueError):
        return None


def main() -> int:
    paths = Paths.from_environment()
    result = import_site_folder(paths)
    result.applied = apply_installed(paths)
    save_result(result, paths)
    print(
        f"event=site_folder_{result.status.replace('-', '_')} card={paths.card} "
        f"changed={len(result.changed)} removed_from_card={len(result.removed_from_card)} "
        f"problems={len(result.findings)}",
        flush=True,
    )
    for finding in result.findings:
        print(f"  {finding}", flush=True)
    if paths.card.is_dir():
        try:
            write_report(paths, result, facts=None)
        except OSError as exc:
            print(f'event=report_not_written path={paths.report_file} error="{exc}"', file=sys.stderr)
    return 0


__all__ = ["IDENTITY", "SSH_KEYS", "ImportResult", "import_site_folder", "main"]
