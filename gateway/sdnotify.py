"""systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1) over $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


class Notifier:
    """The daemon's line to systemd: READY/STATUS/WATCHDOG messages on $NOTIFY_SOCKET (a no-op
    without one) and the watchdog interval systemd asked for."""

    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self._address: str | None = None
        self._sock: socket.socket | None = None
        if address:
            # A leading '@' means an abstract socket.
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # Never block the event loop on a reader that is behind (a busy systemd, a test):
            # a notification it has no room for is dropped; the next one follows in seconds.
            self._sock.setblocking(False)
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        if usec and (pid is None or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> None:
        if self._sock is None or self._address is None:
            return
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError:
            pass  # systemd gone (shutdown), a stale socket, or its queue full: nothing useful to do

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
