"""The store's own settings (the site's ``[store]`` section, parsed by ``gateway.config``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The ``[store]`` section: how often the buffer is flushed, its queue, its size quotas and
    how long readings are kept."""

    flush_interval: float = 0.2
    flush_readings: int = 1000
    queue_size: int = 20_000
    max_bytes: int = 512 * 1000**2
    hard_max_bytes: int = 1024 * 1000**2
    max_age: float | None = 30 * 86400.0
    retention_interval: float = 60.0
