"""Templated text commands for writable points, such as a car-park sign taking ``FREE 23``.

A template is rendered from the written value once validated; the optional ``expect`` and
``error`` patterns decide from the device's reply lines whether the command was taken.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from gateway.model import Value


class TemplateError(ValueError):
    """The template text is unusable; the message says why."""


def check_template(template: str) -> None:
    """Only ``{value}`` (with an optional format spec such as ``{value:03d}``) may be used."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"malformed template: {exc}") from None
    for _, field, _, conversion in parts:
        if field is None:
            continue
        if field != "value" or conversion:
            raise TemplateError(
                f"template may only use {{value}}, found {{{field}}} (write {{{{ and }}}} for literal braces)"
            )


@dataclass(frozen=True, slots=True)
class CommandTemplate:
    point: str
    template: str
    kind: str = "string"  # string | number | bool
    accept: re.Pattern[str] | None = None
    expect: re.Pattern[str] | None = None
    error: re.Pattern[str] | None = None
    timeout: float = 2.0
    encoding: str = "ascii"
    true_text: str = "ON"
    false_text: str = "OFF"
    unit: str | None = None

    def render(self, value: Value) -> bytes:
        """The bytes to send for ``value``; ValueError with a technician-readable reason."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expects true or false, got {value!r}")
            shown: Value = self.true_text if value else self.false_text
        elif self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expects a number, got {value!r}")
            shown = value
        else:
            shown = value if isinstance(value, str) else str(value)
        if self.accept is not None and not self.accept.fullmatch(str(shown)):
            raise ValueError(f"value {shown!r} is not accepted (must match {self.accept.pattern!r})")
        try:
            text = self.template.format(value=shown)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cannot format {shown!r} with template {self.template!r}: {exc}") from None
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError:
            raise ValueError(f"{text!r} cannot be sent as {self.encoding}") from None
