"""The last A/B update's outcome (``<data_dir>/update.json`` from the image's commit service):
shown in health and ``gateway status``, sent upstream once as an ``events/update`` reading."""

import asyncio
import datetime as dt
import json

from gateway.cli.status import render
from gateway.judgement import update_summary
from gateway.model import Reading
from gateway.service import Service
from gateway.updates import EVENT_POINT, UPDATE_FILE, UpdateRecord, report_updates
from tests.conftest import running, wait_until

ROLLED_BACK = {
    "id": "2.0@1767225600",
    "result": "rolled-back",
    "version": "2.0",
    "slot": "B",
    "from_version": "1.0",
    "from_slot": "A",
    "running_slot": "A",
    "at": 1767225900.0,
    "check": "gateway.service",
    "exit_status": 3,
    "reason": "gateway.service exited with status 3",
}

SITE = """
    [[devices]]
    name = "lamp"
    driver = "simulated"
    interval = "50ms"
    [devices.options]
    profile = "streetlight"
"""


async def update_events(service):
    await service.store.flush()
    return [json.loads(r.value) for r in await service.store.history(EVENT_POINT)]


def test_a_rollback_is_in_health_and_reported_upstream_once_across_restarts(site):
    config = site(SITE)
    (config.site.data_dir).mkdir(parents=True, exist_ok=True)
    (config.site.data_dir / UPDATE_FILE).write_text(json.dumps(ROLLED_BACK))

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: service.health()["update"] is not None)
            health = service.health()
            assert health["update"]["reason"] == "gateway.service exited with status 3"
            assert health["status"] == "ok", "a rollback leaves the old version running as it did"
            await wait_until(lambda: service.hub.latest.get(EVENT_POINT) is not None)
            events = await update_events(service)
        assert [e["result"] for e in events] == ["rolled-back"]
        assert events[0]["check"] == "gateway.service" and events[0]["exit_status"] == 3
        text = render(health, dt.UTC, now=ROLLED_BACK["at"] + 60)
        assert "last update (" in text
        assert (
            "update to 2.0 was rolled back, running 1.0 again: gateway.service exited with status 3"
            in " ".join(text.split())
        )
        again = Service(config)
        async with running(again):
            await wait_until(lambda: again.health()["update"] is not None)
            await asyncio.sleep(0.2)  # the reporter had its chance to (wrongly) report again
            assert len(await update_events(again)) == 1

    asyncio.run(scenario())


def test_a_record_written_later_and_a_newer_one_are_each_reported(tmp_path):
    record = UpdateRecord(tmp_path)
    published: list[Reading] = []
    reported: dict[str, str] = {}

    async def get():
        return reported.get("id")

    async def put(ident):
        reported["id"] = ident

    def publish(batch):
        published.extend(batch)
        return True

    async def scenario():
        task = asyncio.create_task(
            report_updates(
                record,
                publish=publish,
                get_reported=get,
                set_reported=put,
                now=lambda: 5.0,
                synced=lambda: False,
                poll_s=0.01,
            )
        )
        await asyncio.sleep(0.05)
        assert published == []
        (tmp_path / UPDATE_FILE).write_text(json.dumps(ROLLED_BACK))
        for _ in range(500):
            if published:
                break
            await asyncio.sleep(0.01)
        committed = {**ROLLED_BACK, "id": "2.1@1767300000", "result": "committed", "reason": None}
        (tmp_path / UPDATE_FILE).write_text(json.dumps(committed))
        for _ in range(500):
            if len(published) == 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert [json.loads(r.value)["result"] for r in published] == ["rolled-back", "committed"]
    assert published[0].point == EVENT_POINT and published[0].clock_synced is False
    assert reported["id"] == "2.1@1767300000"


def test_the_summary_says_what_happened_in_words():
    assert update_summary(None) is None
    assert (
        update_summary({"result": "committed", "version": "2.1", "slot": "B"})
        == "update to 2.1 committed (slot B)"
    )
    assert update_summary(
        {
            **ROLLED_BACK,
            "check": "never-reached-commit",
            "exit_status": None,
            "reason": "slot B never reached the commit",
        }
    ) == (
        "update to 2.0 was rolled back, running 1.0 again: slot B never reached the commit "
        "[check never-reached-commit]"
    )
