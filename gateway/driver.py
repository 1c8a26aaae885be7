"""The driver plugin API: what a driver family implements and what the core gives it.

Drivers are found through the ``gateway.drivers`` entry-point group, so a third-party
package adds one by being installed. One driver instance serves one configured device. The
driver class also says what its family adds to the CLI and to ``gateway demo``, so a family
lives in its own folder plus that one entry-point line. The daemon runs without OpenSSL
(gateway/openssl_free.py): a driver that speaks TLS needs ``GATEWAY_OPENSSL=1`` in the
daemon's environment, and its README should say so.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeGuard, TypeVar

from .entrypoints import EntryPoint, entry_points
from .model import Quality, Reading, Value
from .options import Table

if TYPE_CHECKING:
    from .clock import Clock
    from .config import DeviceConfig, SiteConfig
    from .resources import SharedResources

ENTRY_POINT_GROUP = "gateway.drivers"

#: the hub's publish: a coroutine, so a driver can hand it to create_task
Publish = Callable[[Sequence[Reading]], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class PointSpec:
    """A point a device offers. ``name`` is the part after ``device/``."""

    name: str
    unit: str | None = None
    kind: str = "number"  # number | bool | string
    writable: bool = False
    description: str = ""


class WriteError(Exception):
    """A write that the device refused or could not take; the message names point and cause."""


@dataclass
class DriverContext:
    """What the core hands a driver instance."""

    device: str
    site: SiteConfig
    clock: Clock
    data_dir: Path
    config_dir: Path
    log: logging.LoggerAdapter[logging.Logger]
    state: StateStore
    shared: SharedResources
    publish: Publish
    extras: dict[str, Any] = field(default_factory=dict)

    def reading(
        self,
        point: str,
        value: Value,
        unit: str | None = None,
        ts: float | None = None,
        *,
        quality: Quality = Quality.GOOD,
    ) -> Reading:
        """A reading of this device's ``point`` stamped with the gateway clock."""
        return Reading(
            f"{self.device}/{point}",
            value,
            self.clock.time() if ts is None else ts,
            unit,
            quality,
            clock_synced=self.clock.synced(),
        )


class StateStore(Protocol):
    """Durable key-value state of one driver instance (LoRaWAN frame counters, a meter's last
    total), kept in the buffer so a power cut loses nothing. Values are JSON-able."""

    async def get(self, key: str) -> Any: ...

    async def all(self) -> dict[str, Any]: ...

    async def put(self, key: str, value: Any) -> None: ...

    async def put_many(self, items: dict[str, Any]) -> None: ...

    async def delete(self, key: str) -> None: ...


def package_file(package: str, name: str) -> Path:
    """``name`` in the folder of installed package ``package``.

    With pathlib, for packages installed as files (never zipped): importlib.resources, with
    zipfile, would cost the gateway about 0.8 MB for as long as it runs."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not folders:
        raise ModuleNotFoundError(f"no package named {package!r}", name=package)
    return next((p for p in (Path(f) / name for f in folders) if p.exists()), Path(folders[0]) / name)


@dataclass(frozen=True, slots=True)
class DemoPart:
    """What a driver family adds to ``gateway demo``: its devices on the demo site and the
    simulated peer they talk to (a Modbus server, a packet forwarder, a serial sensor)."""

    #: ``package/file`` of a TOML fragment ([[devices]], [actuators."..."]) appended to the
    #: demo site; its ``{{name}}`` placeholders are filled from the peer's values
    site: str
    #: ``module:function`` of an async context manager factory ``f(demo_dir)`` that runs the
    #: peer (in the demo's peer process) and yields the ``{{name}}`` values for the site
    peer: str | None = None
    #: the placeholders' values when the peer did not run, so the site still parses
    defaults: Mapping[str, str] = field(default_factory=dict)

    def site_fragment(self) -> str:
        """The text of the ``site`` fragment, from the family's package."""
        package, _, file = self.site.partition("/")
        return package_file(package, file).read_text(encoding="utf-8")


#: a driver family's own typed options (what ``parse_options`` returns)
OptionsT = TypeVar("OptionsT")

#: seconds between polls of a polled device whose config sets no ``interval``
DEFAULT_POLL_INTERVAL = 10.0


class Driver(abc.ABC, Generic[OptionsT]):
    """Base class of every device driver, generic over its options type.

    A driver is either polled (set ``poll_interval`` and implement ``poll``) or pushes
    readings itself (override ``run`` and call ``ctx.publish``). Writable points are
    declared in ``declare_points`` with ``writable=True`` and served by ``write``.
    ``self.options`` is what ``parse_options`` returned for this device.
    """

    options: OptionsT

    #: entry-point name, e.g. "modbus"
    name: ClassVar[str] = ""
    #: True when the driver accepts points not declared in advance (e.g. codec output)
    dynamic_points: ClassVar[bool] = False
    #: silence after which a push device of this kind is ``stale`` (a device's own
    #: ``stale_after`` wins); None when silence is normal. Polled devices use their interval.
    STALE_AFTER: ClassVar[float | None] = None
    #: ``gateway`` sub-commands of this family: command name -> ``module:function`` that adds
    #: it to argparse's sub-parsers (imported only when that command, or --help, is asked for)
    commands: ClassVar[Mapping[str, str]] = {}
    #: what this family adds to ``gateway demo``, or None
    demo: ClassVar[DemoPart | None] = None

    @classmethod
    @abc.abstractmethod
    def parse_options(cls, options: Table, config_dir: Path) -> OptionsT | None:
        """Validate this device's ``[devices.options]``; report problems through ``options``.

        Call ``options.finish()`` so misspelt keys are reported. Return a typed object.
        """

    @classmethod
    @abc.abstractmethod
    def declare_points(cls, options: OptionsT | None) -> Sequence[PointSpec]:
        """The points a device with these options offers, known before it starts (None: the
        options had problems, which are reported already; declare what can be known)."""

    @classmethod
    def relayed_from(cls, options: OptionsT) -> str | None:
        """The other gateway whose readings a device with these options relays (that gateway
        forwards them upstream itself, so the uplink here skips them), or None: the readings
        originate here. Only drivers that read other gateways override this."""
        return None

    @classmethod
    def default_interval(cls, options: OptionsT) -> float:
        """Seconds between polls of a polled device with these options whose config sets no
        ``interval``; a family whose options know a better default overrides this."""
        return DEFAULT_POLL_INTERVAL

    def __init__(self, device: DeviceConfig[OptionsT], ctx: DriverContext):
        self.device = device
        self.options = device.options
        self.ctx = ctx
        self.log = ctx.log

    @property
    def poll_interval(self) -> float | None:
        """Seconds between core-driven polls, or None for a driver that pushes."""
        return self.device.interval

    @property
    def default_stale_after(self) -> float | None:
        """``STALE_AFTER``, or None for an instance that never sends by itself."""
        return self.STALE_AFTER

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire connections; raising here makes the core retry with backoff."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called on shutdown and before a restart."""

    async def poll(self) -> Sequence[Reading]:
        """One poll cycle; only called when ``poll_interval`` is set."""
        raise NotImplementedError(f"driver {self.name} is not a polled driver")

    async def run(self) -> None:
        """Push drivers override this and publish through ``ctx.publish``; it runs until cancelled."""
        raise NotImplementedError(f"driver {self.name} has neither poll_interval nor run")

    async def write(self, point: str, value: Value) -> None:
        """Write ``value`` to the writable ``point`` (name without device prefix)."""
        raise WriteError(f"{self.device.name}/{point} is not writable")

    def health(self) -> Mapping[str, Any]:
        """Driver-specific health figures; the core adds its own. Keys the core reads:
        ``online`` or ``connected`` (False: the port or connection is down, the device is
        ``offline``), ``last_error`` (plain words) and ``errors`` ({reason: count})."""
        return {}


def available_drivers() -> dict[str, EntryPoint]:
    """Entry points of every installed driver, by name (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver(name: str) -> type[Driver[Any]]:
    ep = available_drivers()[name]
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"entry point {ENTRY_POINT_GROUP}:{name} is not a gateway Driver class")
    return cls


def loadable_drivers() -> dict[str, type[Driver[Any]]]:
    """Every installed driver class that imports, by name; one that does not (a missing
    optional dependency) is left out with a warning, as a site that uses it would report."""
    found: dict[str, type[Driver[Any]]] = {}
    for name in available_drivers():
        try:
            found[name] = load_driver(name)
        except (ImportError, TypeError) as exc:
            logging.getLogger("gateway.driver").warning(
                "event=driver_unavailable driver=%s error=%r", name, str(exc)
            )
    return found


#: what ``load_target`` returns: the type its ``accepts`` check vouches for
T = TypeVar("T")


def load_target(target: str, what: str, accepts: Callable[[object], TypeGuard[T]]) -> T:
    """The object a ``module:attr`` string names (a section's parser or component, a driver
    family's command or demo peer), once ``accepts`` takes it for ``what`` it should be; a
    TypeError naming the target otherwise."""
    value = EntryPoint("", target, "").load()
    if not accepts(value):
        raise TypeError(f"{target} is not {what}: it is a {type(value).__name__}")
    return value
