"""RFC 6690 link format, read: the ``/.well-known/core`` of a neighbouring gateway or a
resource directory's answers. Pure code over bytes; errors say where the text breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

#: a link-format document larger than this is refused (a gateway lists a few thousand points)
MAX_LINK_FORMAT = 1024 * 1024


class LinkFormatError(ValueError):
    """A discovery document that is not link format; the message says where it breaks."""


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a document: its target URI and its attributes in order (a name without
    a value has None), as a gateway's discovery lists a resource."""

    target: str
    attributes: tuple[tuple[str, str | None], ...] = ()

    def values(self, name: str) -> list[str]:
        """Every value of attribute ``name``, space-separated lists split (``rt="a b"``)."""
        out: list[str] = []
        for key, value in self.attributes:
            if key == name and value is not None:
                out.extend(value.split())
        return out

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.attributes)


def parse_link_format(payload: bytes) -> list[Link]:
    """``</a>;rt="x";obs,</b>;ct="112 110"`` -> links; raises LinkFormatError."""
    if len(payload) > MAX_LINK_FORMAT:
        raise LinkFormatError(f"document of {len(payload)} bytes is larger than {MAX_LINK_FORMAT}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LinkFormatError(f"not UTF-8 at byte {exc.start}") from None
    links: list[Link] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] != "<":
            raise LinkFormatError(f"expected '<' at character {i}, found {text[i]!r}")
        end = text.find(">", i + 1)
        if end < 0:
            raise LinkFormatError(f"link at character {i} has no closing '>'")
        target = text[i + 1 : end]
        i = end + 1
        attributes: list[tuple[str, str | None]] = []
        while i < n and text[i] == ";":
            i += 1
            start = i
            while i < n and text[i] not in "=;,":
                i += 1
            name = text[start:i].strip()
            if not name:
                raise LinkFormatError(f"empty attribute name at character {start}")
            value: str | None = None
            if i < n and text[i] == "=":
                i += 1
                if i < n and text[i] == '"':
                    close = i + 1
                    parts = []
                    while True:
                        if close >= n:
                            raise LinkFormatError(f"quoted value at character {i} is not closed")
                        if text[close] == "\\" and close + 1 < n:
                            parts.append(text[close + 1])
                            close += 2
                            continue
                        if text[close] == '"':
                            break
                        parts.append(text[close])
                        close += 1
                    value = "".join(parts)
                    i = close + 1
                else:
                    start = i
                    while i < n and text[i] not in ";,":
                        i += 1
                    value = text[start:i].strip()
            attributes.append((name, value))
        links.append(Link(target, tuple(attributes)))
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n:
            if text[i] != ",":
                raise LinkFormatError(f"expected ',' between links at character {i}, found {text[i]!r}")
            i += 1
    return links
