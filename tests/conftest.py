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


def install_package(site_dir: Path, name: str, files: dict[str, str], entry_points: str) -> Path:
    """A package installed the way pip would: ``files`` (relative path -> text) under
    ``site_dir`` and a dist-info whose entry_points.txt is ``entry_points``; add ``site_dir``
    to sys.path (or PYTHONPATH) to see it."""
    for relative, text in files.items():
        path = site_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    dist = site_dir / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())
    return site_dir


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
