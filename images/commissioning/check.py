"""Runs ``gateway check`` on the staged site folder and reads its verdict.

Exit status (agreed contract): 0 valid; 1 only rule-file problems (the daemon runs each broken
file's last accepted version); 2 site-config problems (the daemon would not start). A gateway
that still exits 1 for every problem is handled too: status 1 counts as rules-only only when
every problem it lists is in a rule file.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from .findings import Finding, line_from_message
from .sitefolder import SITE_CONFIG, Staging

EXIT_OK, EXIT_RULES, EXIT_SITE = 0, 1, 2
_HEADER = re.compile(r"^\d+ problems? found:")
_PROBLEM = re.compile(r"^\s{2}(?P<file>[^:\s][^:]*?)(?::(?P<line>\d+))?: (?P<message>.*)$")


@dataclass(frozen=True, slots=True)
class CheckResult:
    exit_status: int
    findings: list[Finding] = field(default_factory=list)
    output: str = ""

    @property
    def site_ok(self) -> bool:
        """The site config may be installed (maybe with rule-file problems)."""
        return self.exit_status == EXIT_OK or (
            self.exit_status == EXIT_RULES and all(f.kind == "rules" for f in self.findings)
        )


def parse_problems(output: str, staging: Staging, rules_dir: str) -> list[Finding]:
    """Problems from ``gateway check``'s error output: the indented lines after 'N problems found:'."""
    findings: list[Finding] = []
    root = str(staging.root) + "/"
    lines = output.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if headers:
        lines = lines[headers[0] + 1 :]
    for raw in lines:
        match = _PROBLEM.match(raw)
        if not match:
            continue
        path = match.group("file")
        rel = path[len(root) :] if path.startswith(root) else path
        if rel.startswith(str(staging.root)):
            rel = rel[len(str(staging.root)) :].lstrip("/")
        message = staging.rewrite(match.group("message"))
        line = int(match.group("line")) if match.group("line") else line_from_message(message)
        kind = "rules" if rel.startswith(rules_dir + "/") else "site"
        findings.append(Finding(staging.display(rel), message, line, kind))
    return findings


def run_check(gateway_bin: str, staging: Staging, rules_dir: str, timeout: float = 120.0) -> CheckResult:
    config = staging.root / SITE_CONFIG
    try:
        proc = subprocess.run(
            [gateway_bin, "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=staging.root,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult(EXIT_SITE, [Finding(staging.display(SITE_CONFIG), f"could not be checked: {exc}")])
    output = proc.stdout + proc.stderr
    findings = parse_problems(proc.stderr, staging, rules_dir)
    status = proc.returncode
    if status != EXIT_OK and not findings:
        # A crash or an unexpected message: never install what could not be understood.
        tail = staging.rewrite(output.strip().splitlines()[-1] if output.strip() else f"exit status {status}")
        findings = [Finding(staging.display(SITE_CONFIG), f"gateway check failed: {tail}")]
        status = EXIT_SITE
    if status not in (EXIT_OK, EXIT_RULES):
        status = EXIT_SITE
    return CheckResult(status, findings, staging.rewrite(output))
