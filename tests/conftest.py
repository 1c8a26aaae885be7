"""Fixtures shared by every test: site configs written to a temp dir and a running service."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config
from gateway.service import Service

SITE_HEADER = """
[gateway]
id = "test-site"
name = "Test site"
latitude = 52.37
longitude = 4.89
data_dir = "data"

[store]
flush_interval = "20ms"
"""


def write_site(directory: Path, body: str = "", header: str = SITE_HEADER) -> Path:
    path = directory / "gateway.toml"
    path.write_text(textwrap.dedent(header) + textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path):
    """site(body) -> GatewayConfig for a config made of the test header plus ``body``."""

    def make(body: str = "", header: str = SITE_HEADER) -> GatewayConfig:
        return load_config(write_site(tmp_path, body, header))

    return make


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    """Run ``service`` in the background for the body of the block, then stop it cleanly."""
    task = asyncio.create_task(service.run())
    ready = asyncio.create_task(service.wait_ready())
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()
        raise RuntimeError("service stopped before it was ready")
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, 15)


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``predicate`` until true; fails the test after ``timeout`` (a bound, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
