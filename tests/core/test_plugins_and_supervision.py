"""Third-party drivers found through the entry-point group, and crash isolation."""

import asyncio
import sys
import textwrap

import pytest

from gateway.driver import available_drivers
from gateway.service import Service
from tests.conftest import install_package, running, wait_until

FLAKY_DRIVER = """
from gateway.driver import Driver, PointSpec

CRASHES = {"left": 2}


class FlakyDriver(Driver):
    name = "flaky"

    @classmethod
    def parse_options(cls, options, config_dir):
        crashes = options.int("crashes", 2)
        options.finish()
        CRASHES["left"] = crashes
        return crashes

    @classmethod
    def declare_points(cls, options):
        return [PointSpec("alive", kind="bool")]

    async def run(self):
        if CRASHES["left"] > 0:
            CRASHES["left"] -= 1
            raise RuntimeError("sensor bus exploded")
        while True:
            await self.ctx.publish([self.ctx.reading("alive", True)])
            await self.ctx.clock.sleep(0.02)
"""


@pytest.fixture
def installed_flaky_package(tmp_path, monkeypatch):
    """A package installed the way pip would: module + dist-info with an entry point."""
    site_dir = install_package(
        tmp_path / "site-packages",
        "flaky-gateway-driver",
        {"flaky_gateway_driver.py": FLAKY_DRIVER},
        "[gateway.drivers]\nflaky = flaky_gateway_driver:FlakyDriver\n",
    )
    monkeypatch.syspath_prepend(str(site_dir))
    yield
    sys.modules.pop("flaky_gateway_driver", None)


def test_installed_package_adds_a_driver(installed_flaky_package):
    assert "flaky" in available_drivers()
    assert "simulated" in available_drivers()


def test_crashing_driver_is_restarted_and_others_keep_running(installed_flaky_package, site, monkeypatch):
    monkeypatch.setattr("gateway.devices.MIN_BACKOFF", 0.05)
    config = site(
        textwrap.dedent("""
        [[devices]]
        name = "flaky"
        driver = "flaky"
        [devices.options]
        crashes = 2

        [[devices]]
        name = "steady"
        driver = "simulated"
        interval = "20ms"
        [devices.options]
        profile = "air_quality"
    """)
    )

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: "flaky/alive" in service.hub.latest, timeout=20)
            health = service.health()["devices"]
            assert health["flaky"]["restarts"] == 2
            assert "sensor bus exploded" in health["flaky"]["last_error"]
            assert health["flaky"]["state"] == "running"
            assert health["steady"]["restarts"] == 0
            assert health["steady"]["polls"] > 0

    asyncio.run(scenario())


def test_poll_errors_are_counted_without_restarting(site):
    config = site("""
        [[devices]]
        name = "glitchy"
        driver = "simulated"
        interval = "10ms"
        [devices.options]
        profile = "air_quality"
        fail_every = 3
    """)

    async def scenario():
        service = Service(config)
        async with running(service):
            await wait_until(lambda: service.health()["devices"]["glitchy"]["poll_errors"] >= 3)
            health = service.health()["devices"]["glitchy"]
            assert health["restarts"] == 0
            assert "simulated fault" in health["last_error"]

    asyncio.run(scenario())


def test_entry_points_are_what_importlib_metadata_finds(installed_flaky_package, tmp_path, monkeypatch):
    """The daemon reads entry_points.txt itself (importlib.metadata costs it 2.7 MB); same answer."""
    import importlib.metadata

    from gateway.entrypoints import entry_points

    shadowed = tmp_path / "later"  # a second copy of the package later on the path: the first wins
    (shadowed / "flaky_gateway_driver-0.9.dist-info").mkdir(parents=True)
    (shadowed / "flaky_gateway_driver-0.9.dist-info" / "entry_points.txt").write_text(
        "# an old copy\n[gateway.drivers]\nflaky = old_flaky:Driver\nflakier = old_flaky:Other\n"
    )
    monkeypatch.setattr(sys, "path", [*sys.path, str(shadowed)])
    for group in ("gateway.drivers", "console_scripts", "gpiozero_pin_factories", "pytest11"):
        ours = sorted((ep.name, ep.value) for ep in entry_points(group))
        assert ours == sorted((ep.name, ep.value) for ep in importlib.metadata.entry_points(group=group))
    assert ("flaky", "flaky_gateway_driver:FlakyDriver") in [
        (ep.name, ep.value) for ep in entry_points("gateway.drivers")
    ]
    assert "flakier" not in {ep.name for ep in entry_points("gateway.drivers")}
    assert available_drivers()["flaky"].load().__name__ == "FlakyDriver"


def test_load_target_names_a_target_that_is_not_what_was_asked_for():
    from gateway.components import is_component_class, is_section_parser
    from gateway.driver import load_target

    assert load_target("gateway.rules.component:RulesComponent", "a component class", is_component_class)
    with pytest.raises(
        TypeError, match=r"gateway.driver:ENTRY_POINT_GROUP is not a section parser: it is a str"
    ):
        load_target("gateway.driver:ENTRY_POINT_GROUP", "a section parser", is_section_parser)
