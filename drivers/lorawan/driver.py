"""The ``lorawan`` driver: one configured end device (by DevEUI) served by the shared network
server of its UDP port; it judges, decodes and publishes its uplinks and queues its downlinks.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

from gateway.driver import DemoPart, Driver, DriverContext, PointSpec, WriteError
from gateway.model import Reading, Value, is_valid_name_part
from gateway.options import Table

from . import options as lorawan_options
from .channels import PLANS
from .codecs import Codec, CodecError, flatten, load_codec
from .constants import (
    FPORT_MAC_COMMANDS,
    JOIN_ACCEPT_DELAY1_S,
    JOIN_ACCEPT_DELAY2_S,
    RECEIVE_DELAY1_S,
    RECEIVE_DELAY2_S,
)
from .credentials import AbpCredentials, OtaaCredentials
from .gwmp import Rxpk, Stat, Txpk
from .mac import DataFrame, JoinRequest
from .server import DownlinkError, NetworkServer, Uplink, tmst_after
from .session import Session, abp_session, accept_join, check_join, check_uplink, remember_nonce
from .uplink import Count, CounterReset, Pending, Persist, Publish, Radio, Refuse, Send, on_data_uplink

if TYPE_CHECKING:
    from gateway.config import DeviceConfig

UPLINK_QUEUE = 64
MAX_QUEUED_DOWNLINKS = 16

STAT_POINTS = (
    ("rx_received", "rxnb", None),
    ("rx_ok", "rxok", None),
    ("rx_forwarded", "rxfw", None),
    ("ack_ratio", "ackr", "%"),
    ("tx_received", "dwnb", None),
    ("tx_emitted", "txnb", None),
)


class LorawanDriver(Driver[lorawan_options.LorawanOptions]):
    commands = {"codecs": "drivers.lorawan.cli:register"}
    demo = DemoPart(
        site="drivers.lorawan/demo-site.toml",
        peer="drivers.lorawan.demo:packet_forwarder",
        defaults={
            "lorawan_enabled": "false",
            "lorawan_port": "1700",
            "lorawan_credentials": str(Path(__file__).resolve().parent / "demo-keys.toml"),
        },
    )
    name = "lorawan"
    dynamic_points = True
    #: LoRaWAN sensors report every few minutes to an hour; set ``stale_after`` per device
    STALE_AFTER = 7200.0

    @classmethod
    def parse_options(cls, options: Table, config_dir: Path) -> lorawan_options.LorawanOptions | None:
        return lorawan_options.parse(options, config_dir)

    @classmethod
    def declare_points(cls, options: lorawan_options.LorawanOptions | None) -> Sequence[PointSpec]:
        return lorawan_options.declare(options)

    def __init__(self, device: DeviceConfig[lorawan_options.LorawanOptions], ctx: DriverContext):
        super().__init__(device, ctx)
        opts: lorawan_options.LorawanOptions = self.options
        self.dev_eui = opts.dev_eui
        self.plan = PLANS[opts.region]
        self.counters: Counter[str] = Counter()
        self.session: Session | None = None
        self.server: NetworkServer | None = None
        self.codec: Codec | None = None
        self._queue: asyncio.Queue[Uplink] = asyncio.Queue(UPLINK_QUEUE)
        self._downlinks: deque[QueuedDownlink] = deque()
        self._nonces: list[int] = []
        self._join_nonce = 0
        self._reacked_fcnt: int | None = None
        self._units = {p.name: p.unit for p in device.points}
        self._server_key = f"udp:{opts.bind}:{opts.port}"

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        opts: lorawan_options.LorawanOptions = self.options
        self.codec = load_codec(
            opts.codec,
            opts.config_dir,
            time_budget=opts.codec_time_budget,
            memory_budget=opts.codec_memory_budget,
            downlink_fport=opts.downlink_fport,
        )
        state = await self.ctx.state.all()
        stored = Session.from_state(state.get("session"))
        if isinstance(opts.credentials, AbpCredentials):
            self.session = abp_session(opts.credentials, stored)
        else:
            self.session = stored if stored is not None and stored.activation == "otaa" else None
        self._nonces = [int(n) for n in state.get("dev_nonces") or []]
        self._join_nonce = int(state.get("join_nonce") or 0)
        self._downlinks = deque(QueuedDownlink.from_state(item) for item in state.get("downlinks") or [])

        async def create() -> NetworkServer:
            server = NetworkServer(opts.bind, opts.port, opts.dedup_window)
            await server.start()
            return server

        self.server = await self.ctx.shared.acquire("lorawan", self._server_key, create)
        self.server.register(_Endpoint(self))
        self.server.stat_listeners.append(self._on_stat)
        if opts.relaxed_fcnt:
            self.log.warning(
                "event=relaxed_frame_counter_enabled device=%s dev_eui=%s note=frame_counter_resets_"
                "are_accepted_so_replayed_old_frames_are_too",
                self.device.name,
                self.dev_eui,
            )
        self.log.info(
            "event=lorawan_device_ready device=%s dev_eui=%s activation=%s dev_addr=%s",
            self.device.name,
            self.dev_eui,
            "abp" if isinstance(opts.credentials, AbpCredentials) else "otaa",
            f"{self.session.dev_addr:08X}" if self.session else "-",
        )

    async def close(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        endpoint = server.by_eui.get(self.dev_eui)
        if isinstance(endpoint, _Endpoint) and endpoint.driver is self:
            server.unregister(endpoint)
        if self._on_stat in server.stat_listeners:
            server.stat_listeners.remove(self._on_stat)
        await self.ctx.shared.release("lorawan", self._server_key)

    async def run(self) -> None:
        while True:
            uplink = await self._queue.get()
            try:
                if isinstance(uplink.frame, JoinRequest):
                    await self._handle_join(uplink, uplink.frame)
                else:
                    await self._handle_data(uplink, uplink.frame)
            except (OSError, ValueError) as exc:
                self.counters["handling_errors"] += 1
                self.log.error(
                    "event=uplink_failed device=%s dev_eui=%s gateway=%s error=%r",
                    self.device.name,
                    self.dev_eui,
                    uplink.gateway,
                    str(exc),
                )

    def deliver(self, uplink: Uplink) -> None:
        try:
            self._queue.put_nowait(uplink)
        except asyncio.QueueFull:
            self.counters["dropped_queue_full"] += 1
            self.log.warning("event=uplink_dropped reason=queue_full device=%s", self.device.name)

    # --- uplinks ------------------------------------------------------------------------

    def _refuse(self, reason: str, uplink: Uplink, **extra: Any) -> None:
        self.counters[reason] += 1
        detail = "".join(f" {k}={v}" for k, v in extra.items())
        self.log.warning(
            "event=uplink_refused reason=%s device=%s dev_eui=%s gateway=%s%s",
            reason,
            self.device.name,
            self.dev_eui,
            uplink.gateway,
            detail,
        )

    async def _handle_data(self, uplink: Uplink, frame: DataFrame) -> None:
        """Carry out what the sans-IO session decided (``uplink.on_data_uplink``), in order."""
        opts: lorawan_options.LorawanOptions = self.options
        first = self._downlinks[0] if self._downlinks else None
        outcome = on_data_uplink(
            self.session,
            frame,
            Radio(uplink.rx.lsnr, uplink.rx.datr, len(uplink.heard_by)),
            relaxed=opts.relaxed_fcnt,
            reacked_fcnt=self._reacked_fcnt,
            pending=Pending(first.fport, first.payload, len(self._downlinks) > 1)
            if first is not None
            else None,
        )
        self._reacked_fcnt = outcome.reacked_fcnt
        for effect in outcome.effects:
            match effect:
                case Refuse(reason, detail):
                    self._refuse(reason, uplink, **dict(detail))
                case Count(name):
                    self.counters[name] += 1
                case CounterReset(fcnt32, last_fcnt):
                    self.counters["counter_resets"] += 1
                    self.log.warning(
                        "event=frame_counter_reset_accepted device=%s dev_eui=%s fcnt=%d last_fcnt=%s "
                        "note=relaxed_frame_counter_is_on_replays_of_old_frames_are_accepted",
                        self.device.name,
                        self.dev_eui,
                        fcnt32,
                        last_fcnt,
                    )
                case Persist(session):
                    self.session = session
                    await self.ctx.state.put("session", session.to_state())
                case Send(phy, carries_pending):
                    await self._send_downlink(uplink, phy, carries_pending)
                case Publish(fcnt32, fport, payload):
                    self.counters["uplinks"] += 1
                    readings = self._metadata(uplink, fcnt32)
                    if fport is not None and fport != FPORT_MAC_COMMANDS and payload:
                        readings += self._decode(uplink, fport, payload, fcnt32)
                    await self.ctx.publish(readings)
                case _:
                    assert_never(effect)

    async def _send_downlink(self, uplink: Uplink, phy: bytes, carries_queued: bool) -> None:
        assert self.server is not None
        opts: lorawan_options.LorawanOptions = self.options
        windows = self._windows(phy, opts.rx1_dr_offset, RECEIVE_DELAY1_S, RECEIVE_DELAY2_S)
        try:
            window = self.server.schedule(uplink, self.device.name, windows, RECEIVE_DELAY1_S)
        except (DownlinkError, ValueError) as exc:  # ValueError: uplink channel outside the plan
            self.counters["downlink_errors"] += 1
            self.log.warning(
                "event=downlink_not_sent device=%s gateway=%s error=%r",
                self.device.name,
                uplink.gateway,
                str(exc),
            )
            return
        self.counters[f"downlinks_{window}"] += 1
        if carries_queued:
            sent = self._downlinks.popleft()
            await self._save_downlinks()
            # The commanded value becomes the point's reading once it is on its way to the device.
            await self.ctx.publish([self.ctx.reading(sent.point, sent.value, self._units.get(sent.point))])

    def _windows(
        self, phy: bytes, dr_offset: int, delay1: float, delay2: float
    ) -> Callable[[Rxpk], tuple[Txpk, Txpk]]:
        """RX1 and RX2 packets for ``phy`` as seen from one reception (its frequency, rate, tmst)."""
        plan = self.plan

        def build(rx: Rxpk) -> tuple[Txpk, Txpk]:
            rx1_freq, rx1_datr = plan.rx1(rx.freq, rx.datr, dr_offset)
            rx2_freq, rx2_datr = plan.rx2()
            return (
                Txpk(phy, rx1_freq, rx1_datr, tmst_after(rx.tmst, delay1), plan.downlink_power),
                Txpk(phy, rx2_freq, rx2_datr, tmst_after(rx.tmst, delay2), plan.downlink_power),
            )

        return build

    def _metadata(self, uplink: Uplink, fcnt32: int) -> list[Reading]:
        r = self.ctx.reading
        rx = uplink.rx
        return [
            r("rssi", rx.rssi, "dBm"),
            r("snr", rx.lsnr, "dB"),
            r("frequency", rx.freq, "MHz"),
            r("data_rate", rx.datr),
            r("fcnt", fcnt32),
            r("gateways", len(uplink.heard_by)),
        ]

    def _decode(self, uplink: Uplink, fport: int, payload: bytes, fcnt32: int) -> list[Reading]:
        assert self.codec is not None
        try:
            result = self.codec.decode_uplink(fport, payload)
            if result.errors:
                raise CodecError("codec_errors", "; ".join(result.errors))
            fields = flatten(result.data)
        except CodecError as exc:
            self.counters[f"codec_{exc.reason}"] += 1
            self.log.warning(
                "event=codec_failed reason=%s device=%s dev_eui=%s fport=%d fcnt=%d error=%r",
                exc.reason,
                self.device.name,
                self.dev_eui,
                fport,
                fcnt32,
                str(exc),
            )
            return []
        for warning in result.warnings:
            self.log.info("event=codec_warning device=%s warning=%r", self.device.name, warning)
        self.counters["decoded"] += 1
        return [
            self.ctx.reading(name, value, self._units.get(name))
            for name, value in fields.items()
            if is_valid_name_part(name)
        ]

    # --- joins --------------------------------------------------------------------------

    async def _handle_join(self, uplink: Uplink, request: JoinRequest) -> None:
        opts: lorawan_options.LorawanOptions = self.options
        creds = opts.credentials
        if not isinstance(creds, OtaaCredentials):
            self._refuse("join_for_abp_device", uplink)
            return
        reason = check_join(creds, request, set(self._nonces))
        if reason is not None:
            self._refuse(f"join_{reason}", uplink, dev_nonce=request.dev_nonce)
            return
        assert self.server is not None
        join_nonce = (self._join_nonce + 1) % (1 << 24)
        dev_addr = self.server.allocate_dev_addr(opts.net_id)
        session, accept = accept_join(
            creds,
            request,
            app_nonce=join_nonce,
            net_id=opts.net_id,
            dev_addr=dev_addr,
            rx1_dr_offset=opts.rx1_dr_offset,
            rx2_dr=self.plan.rx2_data_rate,
        )
        nonces = remember_nonce(self._nonces, request.dev_nonce)
        await self.ctx.state.put_many(
            {"session": session.to_state(), "dev_nonces": nonces, "join_nonce": join_nonce}
        )
        self.session, self._nonces, self._join_nonce = session, nonces, join_nonce
        windows = self._windows(accept, 0, JOIN_ACCEPT_DELAY1_S, JOIN_ACCEPT_DELAY2_S)
        self.counters["joins"] += 1
        self.log.info(
            "event=join_accepted device=%s dev_eui=%s dev_addr=%08X gateway=%s",
            self.device.name,
            self.dev_eui,
            dev_addr,
            uplink.gateway,
        )
        try:
            window = self.server.schedule(uplink, self.device.name, windows, JOIN_ACCEPT_DELAY1_S)
            self.counters[f"join_accepts_{window}"] += 1
        except (DownlinkError, ValueError) as exc:
            self.counters["downlink_errors"] += 1
            self.log.warning(
                "event=join_accept_not_sent device=%s gateway=%s error=%r",
                self.device.name,
                uplink.gateway,
                str(exc),
            )
        await self.ctx.publish([self.ctx.reading("dev_addr", f"{dev_addr:08X}")])

    # --- downlink writes ----------------------------------------------------------------

    async def write(self, point: str, value: Value) -> None:
        spec = self.device.point(point)
        if spec is None or not spec.writable:
            raise WriteError(f"{self.device.name}/{point} is not writable")
        if self.codec is None:
            raise WriteError(f"{self.device.name}/{point}: device is not running")
        if len(self._downlinks) >= MAX_QUEUED_DOWNLINKS:
            raise WriteError(
                f"{self.device.name}/{point}: {MAX_QUEUED_DOWNLINKS} downlinks already wait "
                "for the device's next uplink"
            )
        try:
            downlink = self.codec.encode_downlink({point: value})
        except CodecError as exc:
            self.counters[f"codec_{exc.reason}"] += 1
            raise WriteError(f"{self.device.name}/{point}: {exc}") from None
        opts: lorawan_options.LorawanOptions = self.options
        fport = opts.downlink_fport or downlink.fport
        self._downlinks.append(QueuedDownlink(fport, downlink.payload, point, value))
        await self._save_downlinks()
        self.counters["downlinks_queued"] += 1
        self.log.info(
            "event=downlink_queued device=%s point=%s fport=%d bytes=%d queued=%d",
            self.device.name,
            point,
            fport,
            len(downlink.payload),
            len(self._downlinks),
        )

    async def _save_downlinks(self) -> None:
        await self.ctx.state.put("downlinks", [d.to_state() for d in self._downlinks])

    # --- gateway health -----------------------------------------------------------------

    def _on_stat(self, gateway: str, stat: Stat) -> None:
        device = f"lorawan-gw-{gateway}"
        now = self.ctx.clock.time()
        synced = self.ctx.clock.synced()
        readings = [
            Reading(f"{device}/{name}", getattr(stat, attr), now, unit, clock_synced=synced)
            for name, attr, unit in STAT_POINTS
        ]
        task = asyncio.get_running_loop().create_task(self.ctx.publish(readings))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def health(self) -> dict[str, Any]:
        return {
            "dev_eui": self.dev_eui,
            "dev_addr": f"{self.session.dev_addr:08X}" if self.session else None,
            "fcnt_up": self.session.fcnt_up if self.session else None,
            "fcnt_down": self.session.fcnt_down if self.session else None,
            "queued_downlinks": len(self._downlinks),
            "counters": dict(self.counters),
            "server": self.server.health() if self.server else None,
        }


_background: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class QueuedDownlink:
    """A write waiting for the device's next uplink (class A devices only listen after one)."""

    fport: int
    payload: bytes
    point: str
    value: Value

    def to_state(self) -> list[Any]:
        return [self.fport, self.payload.hex(), self.point, self.value]

    @classmethod
    def from_state(cls, raw: list[Any]) -> QueuedDownlink:
        return cls(int(raw[0]), bytes.fromhex(raw[1]), str(raw[2]), raw[3])


class _Endpoint:
    """What the shared server sees of a device: its identity, address and inbox."""

    def __init__(self, driver: LorawanDriver):
        self.driver = driver
        self.device = driver.device.name
        self.dev_eui = driver.dev_eui

    def current_dev_addr(self) -> int | None:
        return self.driver.session.dev_addr if self.driver.session else None

    def claims(self, frame: DataFrame) -> bool:
        session = self.driver.session
        return session is not None and check_uplink(session, frame, False).verdict != "bad_mic"

    def deliver(self, uplink: Uplink) -> None:
        self.driver.deliver(uplink)
