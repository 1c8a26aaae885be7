import asyncio

from gateway.service import Service
from tests.conftest import running, wait_until


def test_simulated_devices_are_stored_and_queryable(site):
    config = site("""
        [[devices]]
        name = "lamp"
        driver = "simulated"
        interval = "50ms"
        [devices.options]
        profile = "streetlight"
    """)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: service.store.last_seq >= 12)
            await service.actuation.write("lamp/level", 40.0, source="api")
            await wait_until(lambda: service.hub.latest["lamp/power"].value == 48.0)
            await service.store.flush()  # the hub has it; make sure the buffer has it too
            latest = {r.point: r for r in await service.store.latest()}
        assert latest["lamp/level"].value == 40.0
        assert latest["lamp/level"].unit == "%"

    asyncio.run(scenario())
