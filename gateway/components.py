"""The parts of the gateway a site section switches on: one registry of which section is
parsed by what and runs which component, and the typed context every component is given.

A component is built as ``cls(ctx, section_config)`` and started in registry order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

if TYPE_CHECKING:
    from .actuation import Actuation
    from .clock import Clock
    from .config import GatewayConfig, SectionContext
    from .devices import Devices
    from .hub import Hub
    from .overrides import Overrides
    from .problems import Problem, Problems
    from .store.store import Store


class SectionConfig(Protocol):
    """What every component section parses into: its component's typed config, which may
    carry problems that are reported but do not stop the start (broken rule files).

    Section configs subclass it, so they get the default ``summary``.
    """

    __slots__ = ()  # section configs are slotted dataclasses

    @property
    def nonfatal_problems(self) -> Sequence[Problem]: ...

    def summary(self) -> str | None:
        """What ``gateway check`` prints for the section (rules and files loaded, say); None:
        nothing beyond "OK"."""
        return None


class SectionParser(Protocol):
    """A section's parser: reports problems with the section's keys and returns its typed
    config, or None when the section runs nothing. ``raw`` is the section's TOML value."""

    def __call__(self, raw: Any, problems: Problems, ctx: SectionContext) -> SectionConfig | None: ...


def is_section_parser(value: object) -> TypeGuard[SectionParser]:
    return callable(value)


@dataclass(frozen=True, slots=True)
class Section:
    """A top-level site section that belongs to a component."""

    name: str
    #: ``module:function`` called as ``parse(raw, problems, SectionContext)``; returns the
    #: section's typed config, a ``SectionConfig`` (and reports problems with the section's keys)
    parser: str
    #: ``module:Class`` of the component the section runs
    component: str


#: in start order; each is imported only when a site has its section
SECTIONS: tuple[Section, ...] = (
    Section("rules", "gateway.rules.config:parse_rules_section", "gateway.rules.component:RulesComponent"),
    Section(
        "upstreams",
        "gateway.coap.uplink_config:parse_upstreams_section",
        "gateway.coap.uplink:UplinksComponent",
    ),
    Section("api", "gateway.coap.api_config:parse_api_section", "gateway.coap.api:ApiComponent"),
    Section(
        "directory",
        "gateway.coap.rd_config:parse_directory_section",
        "gateway.coap.rd_component:DirectoryComponent",
    ),
)


class Component(Protocol):
    """What a component class offers the service."""

    name: str

    async def start(self) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> dict[str, Any]: ...


class ComponentClass(Protocol):
    """A component class: built with the context and the config its own section's parser
    returned (the registry pairs them, so each gets the config type it declares)."""

    def __call__(self, ctx: ComponentContext, config: SectionConfig, /) -> Component: ...


def is_component_class(value: object) -> TypeGuard[ComponentClass]:
    return isinstance(value, type)


@dataclass(frozen=True, slots=True)
class ComponentContext:
    """What the service shares with its components: the one store, hub, devices, actuation
    path and clock, and the other components (the API shows the rules' and uplinks' state)."""

    config: GatewayConfig
    store: Store
    hub: Hub
    devices: Devices
    clock: Clock
    overrides: Overrides
    actuation: Actuation
    components: Mapping[str, Component]
    #: the gateway's whole health document, as ``/health`` and ``gateway status`` show it
    health: Callable[[], dict[str, Any]]
