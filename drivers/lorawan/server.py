"""The shared network server of one UDP port: the asyncio adapter that owns the socket,
answers concentrators, de-duplicates uplinks and routes them to the devices registered on it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import gwmp
from .constants import DEDUP_WINDOW_S, MICROSECONDS, TMST_MODULO, UPLINK_MTYPES, GwmpType
from .gwmp import GwmpError, PullData, PushData, Rxpk, Stat, TxAck, Txpk
from .mac import DataFrame, JoinRequest, MacError, parse_phy

log = logging.getLogger("gateway.driver.lorawan")

#: a PULL_RESP must reach the concentrator this long before the window opens
DOWNLINK_LEAD_S = 0.2
#: how long a concentrator without a PULL_DATA keep-alive still counts as reachable
GATEWAY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Uplink:
    """One uplink after de-duplication: the best reception and how many heard it."""

    frame: DataFrame | JoinRequest
    rx: Rxpk
    gateway: str
    heard_by: tuple[str, ...]
    received_at: float  # loop time of the first copy
    copies: tuple[tuple[str, Rxpk], ...] = ()  # every reception, best first (downlink routes)

    @property
    def phy(self) -> bytes:
        return self.rx.payload


class DeviceEndpoint(Protocol):
    device: str
    dev_eui: str

    def current_dev_addr(self) -> int | None: ...

    def claims(self, frame: DataFrame) -> bool: ...

    def deliver(self, uplink: Uplink) -> None: ...


@dataclass
class GatewayInfo:
    eui: str
    pull_addr: tuple[str, int] | None = None
    last_pull_at: float | None = None
    last_push_at: float | None = None
    stat: Stat | None = None
    uplinks: int = 0
    downlinks: int = 0
    tx_errors: int = 0
    version: int = 2


@dataclass
class PendingTx:
    gateway: str
    device: str
    fallback: Txpk | None
    deadline: float  # loop time the fallback window opens


@dataclass
class _Dedup:
    copies: list[tuple[str, Rxpk]] = field(default_factory=list)
    first_at: float = 0.0


class DownlinkError(Exception):
    """A downlink that cannot be sent (no concentrator reachable, window missed)."""


class NetworkServer(asyncio.DatagramProtocol):
    def __init__(self, bind: str, port: int, dedup_window: float = DEDUP_WINDOW_S):
        self.bind = bind
        self.port = port
        self.dedup_window = dedup_window
        self.counters: Counter[str] = Counter()
        self.gateways: dict[str, GatewayInfo] = {}
        self.by_eui: dict[str, DeviceEndpoint] = {}
        self.stat_listeners: list[Callable[[str, Stat], None]] = []
        self.last_downlink_margin: float | None = None
        self.downlink_margins: list[float] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._pending_dedup: dict[bytes, _Dedup] = {}
        self._pending_tx: dict[int, PendingTx] = {}
        self._token = int.from_bytes(os.urandom(2), "big")
        self._timers: set[asyncio.TimerHandle] = set()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.bind, self.port)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        log.info("event=lorawan_listening bind=%s port=%d", self.bind, self.port)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # --- device registry ----------------------------------------------------------------

    def register(self, endpoint: DeviceEndpoint) -> None:
        other = self.by_eui.get(endpoint.dev_eui)
        if other is not None and other is not endpoint:
            raise ValueError(
                f"DevEUI {endpoint.dev_eui} is configured for both '{other.device}' and '{endpoint.device}'"
            )
        self.by_eui[endpoint.dev_eui] = endpoint

    def unregister(self, endpoint: DeviceEndpoint) -> None:
        if self.by_eui.get(endpoint.dev_eui) is endpoint:
            del self.by_eui[endpoint.dev_eui]

    def allocate_dev_addr(self, net_id: int) -> int:
        """A free DevAddr inside the NetID's address block (type-0 NetID: NwkID = 7 LSBs)."""
        used = {e.current_dev_addr() for e in self.by_eui.values()}
        prefix = (net_id & 0x7F) << 25
        while True:
            addr = prefix | (int.from_bytes(os.urandom(4), "big") & 0x01FFFFFF)
            if addr not in used:
                return addr

    # --- datagrams in -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.counters["datagrams"] += 1
        try:
            packet = gwmp.parse_upstream(data)
        except GwmpError as exc:
            self.counters[f"gwmp_{exc.reason}"] += 1
            log.warning(
                "event=gwmp_rejected reason=%s gateway=%s from=%s:%d error=%r",
                exc.reason,
                exc.gateway or _eui_guess(data),
                addr[0],
                addr[1],
                str(exc),
            )
            return
        now = asyncio.get_running_loop().time()
        info = self.gateways.get(packet.gateway)
        if info is None:
            info = self.gateways[packet.gateway] = GatewayInfo(packet.gateway)
            log.info("event=gateway_seen gateway=%s from=%s:%d", packet.gateway, addr[0], addr[1])
        info.version = packet.version
        if isinstance(packet, PullData):
            info.pull_addr = addr
            info.last_pull_at = now
            self._send(gwmp.pull_ack(packet.token, packet.version), addr)
        elif isinstance(packet, PushData):
            info.last_push_at = now
            self._send(gwmp.push_ack(packet.token, packet.version), addr)
            self._on_push(packet, info, now)
        elif isinstance(packet, TxAck):
            self._on_tx_ack(packet, info, now)

    def error_received(self, exc: Exception) -> None:
        self.counters["socket_errors"] += 1
        log.warning("event=lorawan_socket_error port=%d error=%r", self.port, str(exc))

    def _on_push(self, packet: PushData, info: GatewayInfo, now: float) -> None:
        for reason in packet.bad_rxpk:
            self.counters[f"rxpk_{reason}"] += 1
            log.warning("event=rxpk_rejected reason=%s gateway=%s", reason, packet.gateway)
        if packet.bad_stat is not None:
            self.counters[f"stat_{packet.bad_stat}"] += 1
            log.warning("event=stat_rejected reason=%s gateway=%s", packet.bad_stat, packet.gateway)
        if packet.stat is not None:
            info.stat = packet.stat
            self.counters["stats"] += 1
            for listener in self.stat_listeners[:1]:
                listener(packet.gateway, packet.stat)
        for rx in packet.rxpk:
            if not rx.crc_ok:
                self.counters["rxpk_crc_error"] += 1
                continue
            info.uplinks += 1
            pending = self._pending_dedup.get(rx.payload)
            if pending is not None:
                pending.copies.append((packet.gateway, rx))
                self.counters["duplicates"] += 1
                continue
            self._pending_dedup[rx.payload] = _Dedup([(packet.gateway, rx)], now)
            timer = asyncio.get_running_loop().call_later(self.dedup_window, self._flush, rx.payload)
            self._timers.add(timer)

    def _flush(self, payload: bytes) -> None:
        self._timers = {
            t for t in self._timers if not t.cancelled() and t.when() > asyncio.get_running_loop().time()
        }
        pending = self._pending_dedup.pop(payload, None)
        if pending is None:
            return
        copies = tuple(sorted(pending.copies, key=lambda copy: copy[1].quality, reverse=True))
        gateway, rx = copies[0]
        heard_by = tuple(dict.fromkeys(eui for eui, _ in copies))
        try:
            frame = parse_phy(payload)
        except MacError as exc:
            self.counters[f"phy_{exc.reason}"] += 1
            log.warning("event=phy_rejected reason=%s gateway=%s error=%r", exc.reason, gateway, str(exc))
            return
        uplink = Uplink(frame, rx, gateway, heard_by, pending.first_at, copies)
        self.counters["uplinks"] += 1
        if isinstance(frame, JoinRequest):
            endpoint = self.by_eui.get(frame.dev_eui)
            if endpoint is None:
                self.counters["unknown_dev_eui"] += 1
                log.warning("event=join_unknown_device dev_eui=%s gateway=%s", frame.dev_eui, gateway)
                return
            endpoint.deliver(uplink)
            return
        if frame.mtype not in UPLINK_MTYPES:
            self.counters["not_an_uplink"] += 1
            log.warning(
                "event=phy_rejected reason=not_an_uplink mtype=%s gateway=%s", frame.mtype.name, gateway
            )
            return
        candidates = [e for e in self.by_eui.values() if e.current_dev_addr() == frame.dev_addr]
        if not candidates:
            self.counters["unknown_dev_addr"] += 1
            log.warning("event=uplink_unknown_dev_addr dev_addr=%s gateway=%s", frame.dev_addr_hex, gateway)
            return
        if len(candidates) > 1:
            # Colliding ABP addresses: the session whose NwkSKey signs the frame owns it.
            owners = [e for e in candidates if e.claims(frame)]
            candidates = owners[:1] or candidates[:1]
        candidates[0].deliver(uplink)

    # --- downlinks ----------------------------------------------------------------------

    def schedule(
        self, uplink: Uplink, device: str, windows: Callable[[Rxpk], tuple[Txpk, Txpk]], delay1: float
    ) -> str:
        """Send a class A downlink in RX1 if it can still make it, else RX2; returns the window.

        ``windows`` builds the RX1 and RX2 packets from one reception: each concentrator counts
        ``tmst`` on its own clock, so the timing must come from the one that transmits.
        """
        routes = uplink.copies or ((uplink.gateway, uplink.rx),)
        gateway, rx = next(((eui, r) for eui, r in routes if self.reachable(eui)), routes[0])
        rx1, rx2 = windows(rx)
        loop = asyncio.get_running_loop()
        now = loop.time()
        rx1_opens = uplink.received_at + delay1
        fallback: Txpk | None
        window, txpk, fallback = "rx1", rx1, rx2
        if rx1_opens - now < DOWNLINK_LEAD_S:
            window, txpk, fallback = "rx2", rx2, None
            self.counters["rx1_missed"] += 1
        opens = rx1_opens if window == "rx1" else uplink.received_at + delay1 + 1.0
        if opens - now < DOWNLINK_LEAD_S:
            self.counters["downlink_too_late"] += 1
            raise DownlinkError(f"both receive windows of {device} have passed")
        token = self._send_txpk(gateway, txpk)
        self._pending_tx[token] = PendingTx(gateway, device, fallback, uplink.received_at + delay1 + 1.0)
        margin = opens - loop.time()
        self.last_downlink_margin = margin
        self.downlink_margins.append(margin)
        del self.downlink_margins[:-1000]
        return window

    def reachable(self, gateway: str) -> bool:
        """True while the concentrator's PULL_DATA keep-alives say it can take downlinks."""
        info = self.gateways.get(gateway)
        now = asyncio.get_running_loop().time()
        return (
            info is not None
            and info.pull_addr is not None
            and info.last_pull_at is not None
            and now - info.last_pull_at <= GATEWAY_TIMEOUT_S
        )

    def _send_txpk(self, gateway: str, txpk: Txpk) -> int:
        info = self.gateways.get(gateway)
        if info is None or info.pull_addr is None or not self.reachable(gateway):
            self.counters["downlink_no_route"] += 1
            raise DownlinkError(
                f"concentrator {gateway} has sent no PULL_DATA recently; cannot send downlinks"
            )
        self._token = (self._token + 1) & 0xFFFF
        self._send(gwmp.pull_resp(self._token, txpk, info.version), info.pull_addr)
        info.downlinks += 1
        self.counters["downlinks"] += 1
        return self._token

    def _on_tx_ack(self, packet: TxAck, info: GatewayInfo, now: float) -> None:
        pending = self._pending_tx.pop(packet.token, None)
        if packet.error in ("NONE", ""):
            self.counters["tx_ack_ok"] += 1
            return
        info.tx_errors += 1
        self.counters["tx_ack_errors"] += 1
        device = pending.device if pending else "?"
        log.warning(
            "event=downlink_refused gateway=%s device=%s error=%s", packet.gateway, device, packet.error
        )
        if pending is not None and pending.fallback is not None and pending.deadline - now > DOWNLINK_LEAD_S:
            try:
                token = self._send_txpk(pending.gateway, pending.fallback)
            except DownlinkError:
                return
            self._pending_tx[token] = PendingTx(pending.gateway, pending.device, None, pending.deadline)
            self.counters["rx2_fallbacks"] += 1

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    # --- health -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "devices": len(self.by_eui),
            "counters": dict(self.counters),
            "gateways": {
                eui: {
                    "uplinks": g.uplinks,
                    "downlinks": g.downlinks,
                    "tx_errors": g.tx_errors,
                    "reachable": g.pull_addr is not None,
                }
                for eui, g in self.gateways.items()
            },
            "last_downlink_margin_s": self.last_downlink_margin,
        }


def tmst_after(tmst: int, seconds: float) -> int:
    return (tmst + int(seconds * MICROSECONDS)) % TMST_MODULO


def _eui_guess(data: bytes) -> str:
    if len(data) >= 12 and data[3] in (GwmpType.PUSH_DATA, GwmpType.PULL_DATA, GwmpType.TX_ACK):
        return data[4:12].hex().upper()
    return "unknown"
