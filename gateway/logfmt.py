"""key=value log lines, so journald and grep both work."""

from __future__ import annotations

import logging
import sys


class LogfmtFormatter(logging.Formatter):
    """Formats log records as ``key=value`` lines (level, logger, the device a driver logs for)
    so journald and grep both read them."""

    def __init__(self, with_time: bool):
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            parts.append(f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}")
        parts.append(f"level={record.levelname.lower()}")
        parts.append(f"logger={record.name}")
        device = getattr(record, "device", None)
        if device:
            parts.append(f"device={device}")
        message = record.getMessage()
        if "=" not in message.split(" ", 1)[0]:
            message = f"msg={_quote(message)}"
        parts.append(message)
        line = " ".join(parts)
        if record.exc_info:
            line += " traceback=" + _quote(self.formatException(record.exc_info))
        return line


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "=\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def setup_logging(level: str = "info", stream: object = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    # Under systemd, journald adds its own timestamps.
    import os

    handler.setFormatter(LogfmtFormatter(with_time="JOURNAL_STREAM" not in os.environ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("coap", "coap-server", "pymodbus", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
