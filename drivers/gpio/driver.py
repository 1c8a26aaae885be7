"""The ``gpio`` driver: relays and PWM dimmers as writable points, buttons and contacts as inputs.

gpiozero calls back from its own thread; changes are handed to the event loop with
``call_soon_threadsafe`` and published from there, debounced in software when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.driver import DemoPart, Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value
from gateway.options import Table

from .factories import SharedFactory, import_gpiozero
from .options import GpioOptions, GpioPoint, parse_gpio_options

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

FAMILY = "gpio"


class InputState:
    """One input's device and debounce state, owned by the event loop."""

    def __init__(self, point: GpioPoint, device: Any):
        self.point = point
        self.device = device
        self.latest: bool | None = None
        self.published: bool | None = None
        self.settling: asyncio.Task[None] | None = None
        self.changes = 0


class GpioDriver(Driver[GpioOptions]):
    demo = DemoPart(site="drivers.gpio/demo-site.toml")
    name = FAMILY
    options: GpioOptions

    @classmethod
    def parse_options(cls, options: Table, config_dir: Path) -> GpioOptions | None:
        return parse_gpio_options(options, config_dir)

    @classmethod
    def declare_points(cls, options: GpioOptions | None) -> Sequence[PointSpec]:
        if options is None:  # its problems are reported already
            return []
        specs = []
        for p in options.points:
            if p.type == "pwm":
                specs.append(
                    PointSpec(p.name, "%", "number", writable=True, description=f"PWM on pin {p.pin}")
                )
            else:
                specs.append(
                    PointSpec(
                        p.name, None, "bool", writable=p.is_output, description=f"{p.type} on pin {p.pin}"
                    )
                )
        return specs

    def __init__(self, device: DeviceConfig[GpioOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        self._shared: SharedFactory | None = None
        self._outputs: dict[str, tuple[GpioPoint, Any]] = {}
        self._inputs: dict[str, InputState] = {}
        self._pending: list[Reading] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.writes = 0
        self.changes_dropped_by_debounce = 0

    # -- life cycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        factory_name = self.options.pin_factory
        self._shared = await self.ctx.shared.acquire(FAMILY, factory_name, self._make_factory)
        try:
            for point in self.options.points:
                if point.is_output:
                    self._outputs[point.name] = (point, self._make_output(point))
                else:
                    self._inputs[point.name] = self._make_input(point)
        except Exception as exc:
            await self.close()
            raise OSError(f"device {self.device.name}: cannot set up GPIO: {exc}") from exc

    async def _make_factory(self) -> SharedFactory:
        return SharedFactory(self.options.pin_factory)

    def _make_output(self, point: GpioPoint) -> Any:
        output_devices = import_gpiozero("gpiozero.output_devices")
        assert self._shared is not None
        factory = self._shared.factory
        if point.type == "pwm":
            return output_devices.PWMOutputDevice(
                point.pin,
                active_high=point.active_high,
                initial_value=float(point.initial) / 100.0,
                frequency=point.frequency,
                pin_factory=factory,
            )
        return output_devices.DigitalOutputDevice(
            point.pin, active_high=point.active_high, initial_value=bool(point.initial), pin_factory=factory
        )

    def _make_input(self, point: GpioPoint) -> InputState:
        input_devices = import_gpiozero("gpiozero.input_devices")
        assert self._shared is not None and self._loop is not None
        loop = self._loop
        if point.pull == "none":
            kwargs: dict[str, Any] = {"pull_up": None, "active_state": point.active_high}
        else:
            kwargs = {"pull_up": point.pull == "up"}
        cls = input_devices.Button if point.type == "button" else input_devices.DigitalInputDevice
        device = cls(point.pin, bounce_time=point.bounce_time, pin_factory=self._shared.factory, **kwargs)
        state = InputState(point, device)
        name = point.name
        # Runs in gpiozero's thread (or the caller's, for mock pins): hand over to the loop.
        device.when_activated = lambda: loop.call_soon_threadsafe(self._changed, name, True)
        device.when_deactivated = lambda: loop.call_soon_threadsafe(self._changed, name, False)
        state.latest = bool(device.is_active)
        return state

    async def close(self) -> None:
        for state in self._inputs.values():
            if state.settling is not None:
                state.settling.cancel()
            with contextlib.suppress(Exception):
                state.device.when_activated = None
                state.device.when_deactivated = None
                state.device.close()
        for _, device in self._outputs.values():
            with contextlib.suppress(Exception):
                device.close()
        self._inputs.clear()
        self._outputs.clear()
        if self._shared is not None:
            self._shared = None
            await self.ctx.shared.release(FAMILY, self.options.pin_factory)

    # -- publishing ----------------------------------------------------------------------------
    async def run(self) -> None:
        heartbeat = self.options.heartbeat
        while True:
            # A door that never opens still reports, so rules do not see its point as stale.
            self._snapshot()
            await self._flush()
            deadline = self.ctx.clock.monotonic() + heartbeat if heartbeat > 0 else None
            while deadline is None or self.ctx.clock.monotonic() < deadline:
                if deadline is None:
                    await self._wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(0.0, deadline - self.ctx.clock.monotonic())):
                            await self._wake.wait()
                self._wake.clear()
                await self._flush()

    def _snapshot(self) -> None:
        for point, device in self._outputs.values():
            self._pending.append(self._reading(point, device.value))
        for name, state in self._inputs.items():
            if state.published is None:
                state.published = bool(state.device.is_active)
            self._pending.append(self.ctx.reading(name, self._input_value(state, state.published)))

    async def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            await self.ctx.publish(batch)

    def _reading(self, point: GpioPoint, raw: float) -> Reading:
        if point.type == "pwm":
            return self.ctx.reading(point.name, round(float(raw) * 100.0, 3), "%")
        return self.ctx.reading(point.name, bool(raw))

    @staticmethod
    def _input_value(state: InputState, active: bool) -> bool:
        return active != state.point.invert

    # -- inputs (event loop side) --------------------------------------------------------------
    def _changed(self, name: str, active: bool) -> None:
        state = self._inputs.get(name)
        if state is None:
            return
        state.latest = active
        state.changes += 1
        if state.point.debounce <= 0:
            self._emit(state, active)
            return
        if state.settling is not None:
            state.settling.cancel()
            self.changes_dropped_by_debounce += 1
        state.settling = asyncio.get_running_loop().create_task(self._settle(state))

    async def _settle(self, state: InputState) -> None:
        await self.ctx.clock.sleep(state.point.debounce)
        state.settling = None
        if state.latest is not None and state.latest != state.published:
            self._emit(state, state.latest)

    def _emit(self, state: InputState, active: bool) -> None:
        state.published = active
        self._pending.append(self.ctx.reading(state.point.name, self._input_value(state, active)))
        self._wake.set()

    # -- outputs -------------------------------------------------------------------------------
    async def write(self, point: str, value: Value) -> None:
        found = self._outputs.get(point)
        where = f"{self.device.name}/{point}"
        if found is None:
            raise WriteError(
                f"{where} is not writable" if point not in self._inputs else f"{where} is an input"
            )
        spec, device = found
        if spec.type == "relay":
            if isinstance(value, bool):
                on = value
            elif isinstance(value, int | float) and value in (0, 1):
                on = bool(value)
            else:
                raise WriteError(f"{where}: a relay takes true or false, got {value!r}")
            device.value = on
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise WriteError(f"{where}: a PWM level takes a number from 0 to 100 (%), got {value!r}")
            if not 0 <= value <= 100:
                raise WriteError(f"{where}: level {value} is outside 0..100 %")
            device.value = float(value) / 100.0
        self.writes += 1
        await self.ctx.publish([self._reading(spec, device.value)])

    # -- inspection ----------------------------------------------------------------------------
    def pin(self, point: str) -> Any:
        """The gpiozero pin behind ``point`` (tests drive mock input pins through this)."""
        if point in self._inputs:
            return self._inputs[point].device.pin
        return self._outputs[point][1].pin

    def health(self) -> dict[str, Any]:
        return {
            "pin_factory": self.options.pin_factory,
            "outputs": {name: device.value for name, (_, device) in self._outputs.items()},
            "inputs": {
                name: {"active": s.published, "changes": s.changes} for name, s in self._inputs.items()
            },
            "writes": self.writes,
            "changes_dropped_by_debounce": self.changes_dropped_by_debounce,
        }
