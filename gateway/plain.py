"""Error texts a technician understands, from exceptions raised by sockets, ports and libraries.

Pure code over exception objects: it looks through an exception's causes for the operating
system's reason (errno) and says it in plain words, so health never reads like
``NetworkError: Network error: NetworkError``.
"""

from __future__ import annotations

import errno
import socket

#: errno -> (short reason used for counting, sentence shown to a technician)
_ERRNO_WORDS: dict[int, tuple[str, str]] = {
    errno.ECONNREFUSED: (
        "connection refused",
        "connection refused: nothing is listening at that address and port",
    ),
    errno.ECONNRESET: ("connection reset", "the other side closed the connection"),
    errno.EPIPE: ("connection reset", "the other side closed the connection"),
    errno.EHOSTUNREACH: (
        "host unreachable",
        "host unreachable: it is offline, firewalled or not on this network",
    ),
    errno.ENETUNREACH: (
        "network unreachable",
        "network unreachable: no route (check the cable, the modem and the address)",
    ),
    errno.ETIMEDOUT: ("no answer", "no answer in time"),
    errno.ENOENT: ("port missing", "the port does not exist (adapter unplugged or wrong path)"),
    errno.ENODEV: ("port missing", "the port does not exist (adapter unplugged or wrong path)"),
    errno.ENXIO: ("port missing", "the port does not exist (adapter unplugged or wrong path)"),
    errno.EACCES: ("permission denied", "permission denied (is the gateway user in the right group?)"),
    errno.EPERM: ("permission denied", "permission denied (is the gateway user in the right group?)"),
    errno.EBUSY: ("port busy", "the port is in use by another program"),
    errno.EIO: ("input/output error", "input/output error (the adapter or the disk failed)"),
    errno.ENOSPC: ("disk full", "the disk is full"),
    errno.EROFS: ("disk read-only", "the disk is read-only (card worn out or mounted read-only)"),
}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _os_reason(exc: BaseException) -> tuple[str, str] | None:
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return "name not resolved", "the host name could not be resolved (check DNS and the spelling)"
        if isinstance(link, OSError) and link.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[link.errno]
    return None


def _is_timeout(exc: BaseException) -> bool:
    return any(
        isinstance(link, TimeoutError)
        or type(link).__name__ in ("TimeoutError", "RequestTimedOut", "ConRetransmitsExceeded")
        for link in _chain(exc)
    )


def error_reason(exc: BaseException) -> str:
    """A short reason for counting errors by kind: 'connection refused', 'no answer', ..."""
    found = _os_reason(exc)
    if found is not None:
        return found[0]
    if _is_timeout(exc):
        return "no answer"
    return _words(type(exc).__name__)


def plain_error(exc: BaseException, *, what: str = "") -> str:
    """One sentence for health and logs: the cause in plain words, then the library's own
    text when it adds something (never just the exception's class name repeated)."""
    found = _os_reason(exc)
    if found is not None:
        text = found[1]
    elif _is_timeout(exc):
        text = "no answer in time"
    else:
        message = str(exc).strip()
        name = type(exc).__name__
        # aiocoap's str() is "Network error: NetworkError": nothing beyond the class name
        if not message or message.replace(" ", "").lower().endswith(name.lower()):
            text = _words(name)
        else:
            text = message
    return f"{what}: {text}" if what else text


def _words(class_name: str) -> str:
    """'NetworkError' -> 'network error', 'BusUnavailable' -> 'bus unavailable'."""
    out: list[str] = []
    for char in class_name:
        if char.isupper() and out:
            out.append(" ")
        out.append(char.lower())
    return "".join(out)
