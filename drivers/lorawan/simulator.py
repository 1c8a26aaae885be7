"""A packet-forwarder and end-device simulator speaking real GWMP with real encrypted frames,
for the tests, the bench and the demo site. It plays the concentrator's side over UDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from . import crypto, gwmp
from .constants import MType
from .gwmp import Ack, PullResp, Rxpk
from .mac import DataFrame, build_data_frame, build_join_request, parse_join_accept, parse_phy


@dataclass
class SimulatedDevice:
    """An end device's side of the MAC: counters, session keys, join."""

    dev_eui: str
    dev_addr: int = 0
    nwk_skey: bytes = b""
    app_skey: bytes = b""
    app_eui: str = "0000000000000000"
    app_key: bytes = b""
    fcnt_up: int = 0
    dev_nonce: int = field(default_factory=lambda: int.from_bytes(os.urandom(2), "little"))

    def uplink(
        self,
        fport: int | None,
        payload: bytes,
        *,
        confirmed: bool = False,
        fcnt: int | None = None,
        fopts: bytes = b"",
    ) -> bytes:
        """The next uplink frame (advances the counter unless ``fcnt`` is forced)."""
        if fcnt is None:
            fcnt = self.fcnt_up
            self.fcnt_up += 1
        mtype = MType.CONFIRMED_UP if confirmed else MType.UNCONFIRMED_UP
        return build_data_frame(
            mtype, self.dev_addr, fcnt, self.nwk_skey, self.app_skey, fport, payload, fopts=fopts
        )

    def join_request(self) -> bytes:
        self.dev_nonce = (self.dev_nonce + 1) & 0xFFFF
        return build_join_request(self.app_eui, self.dev_eui, self.dev_nonce, self.app_key)

    def accept(self, phy: bytes) -> None:
        accept = parse_join_accept(phy, self.app_key)
        self.dev_addr = accept.dev_addr
        self.nwk_skey, self.app_skey = crypto.derive_session_keys(
            self.app_key, accept.app_nonce, accept.net_id, self.dev_nonce
        )
        self.fcnt_up = 0

    def open_downlink(self, phy: bytes) -> tuple[DataFrame, bytes]:
        frame = parse_phy(phy)
        assert isinstance(frame, DataFrame)
        # A device tracks its own downlink counter; the tests accept any counter that signs.
        for high in range(0, 1 << 32, 1 << 16):
            fcnt = high | frame.fcnt16
            if frame.mic_ok(self.nwk_skey, fcnt):
                return frame, frame.decrypt(self.nwk_skey, self.app_skey, fcnt)
            if high > 1 << 20:
                break
        raise ValueError("downlink MIC does not verify with this device's NwkSKey")


class PacketForwarder(asyncio.DatagramProtocol):
    """One concentrator: PUSH_DATA for uplinks and stats, PULL_DATA keep-alives, TX_ACKs."""

    def __init__(self, gateway_eui: str, server: tuple[str, int]):
        self.eui = gateway_eui
        self.server = server
        self.acks: asyncio.Queue[Ack] = asyncio.Queue()
        self.downlinks: asyncio.Queue[PullResp] = asyncio.Queue()
        self.tx_ack_error = "NONE"
        self.tmst = int.from_bytes(os.urandom(3), "big")
        self._token = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = gwmp.parse_downstream(data)
        if isinstance(packet, PullResp):
            self.downlinks.put_nowait(packet)
            self.send_raw(gwmp.tx_ack(packet.token, self.eui, self.tx_ack_error))
        else:
            self.acks.put_nowait(packet)

    def next_token(self) -> int:
        self._token = (self._token + 1) & 0xFFFF
        return self._token

    def send_raw(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(data, self.server)

    def pull(self) -> None:
        self.send_raw(gwmp.pull_data(self.next_token(), self.eui))

    def rxpk(
        self,
        phy: bytes,
        *,
        tmst: int | None = None,
        rssi: float = -80,
        snr: float = 7.5,
        freq: float = 868.1,
        datr: str = "SF7BW125",
    ) -> Rxpk:
        if tmst is None:
            self.tmst = (self.tmst + 10_000_000) % (1 << 32)
            tmst = self.tmst
        return Rxpk(phy, tmst, freq, datr, "4/5", rssi, snr, True)

    def push(self, *rxpk: Rxpk, stat: dict[str, object] | None = None) -> int:
        token = self.next_token()
        self.send_raw(gwmp.push_data(token, self.eui, list(rxpk), stat))
        return token


@contextlib.asynccontextmanager
async def forwarder(gateway_eui: str, server: tuple[str, int]) -> AsyncIterator[PacketForwarder]:
    fwd = PacketForwarder(gateway_eui, server)
    await fwd.start()
    try:
        yield fwd
    finally:
        fwd.close()
