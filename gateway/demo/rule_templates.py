"""The demo's rule files: written from the templates in gateway/demo/rules only where absent,
so a technician's edits survive a re-run; ``reset`` rewrites the ones that differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..driver import package_file
from .tools import gateway_command


@dataclass(frozen=True, slots=True)
class RuleTemplates:
    """What installing the demo's rule templates did in ``directory``."""

    directory: Path
    written: tuple[str, ...]  # absent, or rewritten by --reset
    edited: tuple[str, ...]  # kept as the technician left them (they differ from the template)


def install_rule_templates(demo_dir: Path, reset: bool = False) -> RuleTemplates:
    """Write each rule template that is absent (every one that differs, with ``reset``)."""
    source = package_file("gateway.demo", "rules")
    target = demo_dir / "rules"
    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    edited: list[str] = []
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        if not item.name.endswith(".toml"):
            continue
        template = item.read_text(encoding="utf-8")
        path = target / item.name
        try:
            current: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        except (OSError, UnicodeDecodeError):
            current = ""  # unreadable: the technician's problem to see, or --reset's to fix
        if current == template:
            continue
        if current is None or reset:
            scratch = path.with_name(f".{path.name}.tmp")
            scratch.write_text(template, encoding="utf-8")
            os.replace(scratch, path)  # the rules engine never reads half a file
            written.append(item.name)
        else:
            edited.append(item.name)
    return RuleTemplates(target, tuple(written), tuple(edited))


def rule_template_notes(result: RuleTemplates, reset: bool) -> list[str]:
    if reset:
        restored = ", ".join(result.written) or "none (they matched the templates)"
        return [f"--reset: rule files rewritten from the templates in {result.directory}: {restored}"]
    if result.edited:
        return [
            f"keeping your edited rule files in {result.directory}: {', '.join(result.edited)}"
            f" ({gateway_command()} demo --reset restores the templates)"
        ]
    return []
