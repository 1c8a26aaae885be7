"""A driver that swallows its cancellation does not hold up a stop.

On Python 3.11 ``asyncio.wait_for`` returns the awaited call's result instead of raising
when a cancellation arrives in the same instant the call finishes; a driver polling through
it then keeps running after the service cancelled it. The service cancels device tasks again
until they end, within its stop budget, and says which device was slow to stop.
"""

import asyncio
import sys

import pytest

from gateway.config import load_config
from gateway.service import SHUTDOWN_BUDGET, Service
from tests.conftest import install_package, write_site

STUBBORN_DRIVER = '''
import asyncio
from gateway.driver import Driver, PointSpec

SEEN = {"cancellations": 0, "polls": 0}


class StubbornDriver(Driver):
    """Swallows the first cancellation of a poll, as wait_for's race does."""
    name = "stubborn"

    @classmethod
    def parse_options(cls, options, config_dir):
        options.finish()
        return None

    @classmethod
    def declare_points(cls, options):
        return [PointSpec("value")]

    async def poll(self):
        SEEN["polls"] += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            SEEN["cancellations"] += 1
            if SEEN["cancellations"] == 1:
                return [self.ctx.reading("value", 1.0)]
            raise
        return []
'''


@pytest.fixture
def stubborn_package(tmp_path, monkeypatch):
    site_dir = install_package(
        tmp_path / "site-packages",
        "stubborn-gateway-driver",
        {"stubborn_gateway_driver.py": STUBBORN_DRIVER},
        "[gateway.drivers]\nstubborn = stubborn_gateway_driver:StubbornDriver\n",
    )
    monkeypatch.syspath_prepend(str(site_dir))
    yield
    sys.modules.pop("stubborn_gateway_driver", None)


def test_a_driver_that_swallows_its_cancellation_is_cancelled_again(stubborn_package, tmp_path):
    asyncio.run(stop_with_a_stubborn_driver(tmp_path))


async def stop_with_a_stubborn_driver(tmp_path):
    import stubborn_gateway_driver as stubborn

    config = load_config(
        write_site(tmp_path, '[[devices]]\nname = "slow"\ndriver = "stubborn"\ninterval = "1s"\n')
    )
    service = Service(config)
    running = asyncio.create_task(service.run())
    await asyncio.wait_for(service.wait_ready(), 30)
    while stubborn.SEEN["polls"] == 0:
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    service.stop()
    await asyncio.wait_for(running, 30)
    took = loop.time() - asked
    assert stubborn.SEEN["cancellations"] >= 1  # the first one was swallowed, yet the device stopped
    assert all(task.done() for task in service.devices._tasks.values())
    assert took < SHUTDOWN_BUDGET, f"stop took {took:.1f}s"
    assert service.clean_exit
