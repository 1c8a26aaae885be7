"""Sans-IO LoRaWAN 1.0.x MAC frames: PHYPayload parsing and building for data frames,
JoinRequest and JoinAccept (1.0.2 to 1.0.4 share these formats).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto
from .constants import (
    DIR_DOWNLINK,
    DIR_UPLINK,
    DOWNLINK_MTYPES,
    FCTRL_ACK,
    FCTRL_ADR,
    FCTRL_ADR_ACK_REQ,
    FCTRL_FOPTS_LEN_MASK,
    FCTRL_FPENDING,
    FHDR_MIN_LEN,
    FPORT_MAC_COMMANDS,
    JOIN_ACCEPT_CFLIST_LEN,
    JOIN_ACCEPT_LEN,
    JOIN_REQUEST_LEN,
    MAJOR_LORAWAN_R1,
    MAX_FOPTS_LEN,
    MHDR_LEN,
    MIC_LEN,
    UPLINK_MTYPES,
    MType,
)


class MacError(ValueError):
    """A PHYPayload that cannot be a valid frame; ``reason`` is a short counter name."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DataFrame:
    mtype: MType
    dev_addr: int
    adr: bool
    adr_ack_req: bool
    ack: bool
    fpending: bool
    fcnt16: int
    fopts: bytes
    fport: int | None
    frm_payload: bytes  # still encrypted
    mic: bytes
    signed: bytes  # MHDR..FRMPayload, the bytes the MIC covers

    @property
    def direction(self) -> int:
        return DIR_UPLINK if self.mtype in UPLINK_MTYPES else DIR_DOWNLINK

    @property
    def confirmed(self) -> bool:
        return self.mtype in (MType.CONFIRMED_UP, MType.CONFIRMED_DOWN)

    @property
    def dev_addr_hex(self) -> str:
        return f"{self.dev_addr:08X}"

    def mic_ok(self, nwk_skey: bytes, fcnt32: int) -> bool:
        return crypto.data_mic(nwk_skey, self.direction, self.dev_addr, fcnt32, self.signed) == self.mic

    def decrypt(self, nwk_skey: bytes, app_skey: bytes, fcnt32: int) -> bytes:
        key = nwk_skey if self.fport == FPORT_MAC_COMMANDS else app_skey
        return crypto.frm_crypt(key, self.direction, self.dev_addr, fcnt32, self.frm_payload)


@dataclass(frozen=True, slots=True)
class JoinRequest:
    app_eui: str  # hex, most significant byte first (as printed on labels)
    dev_eui: str
    dev_nonce: int
    mic: bytes
    signed: bytes

    def mic_ok(self, app_key: bytes) -> bool:
        return crypto.join_mic(app_key, self.signed) == self.mic


@dataclass(frozen=True, slots=True)
class JoinAccept:
    app_nonce: int
    net_id: int
    dev_addr: int
    rx1_dr_offset: int
    rx2_dr: int
    rx_delay: int
    cflist: bytes


Frame = DataFrame | JoinRequest


def eui_from_wire(raw: bytes) -> str:
    return raw[::-1].hex().upper()


def eui_to_wire(eui: str) -> bytes:
    return bytes.fromhex(eui)[::-1]


def parse_phy(phy: bytes) -> Frame:
    """Parse an uplink or downlink PHYPayload; raises MacError naming what is wrong."""
    if len(phy) < MHDR_LEN + MIC_LEN:
        raise MacError("truncated", f"PHYPayload of {len(phy)} bytes is too short")
    mhdr = phy[0]
    major = mhdr & 0x03
    if major != MAJOR_LORAWAN_R1:
        raise MacError("bad_major", f"LoRaWAN major version {major} is not LoRaWAN R1")
    mtype = MType(mhdr >> 5)
    signed, mic = phy[:-MIC_LEN], phy[-MIC_LEN:]
    if mtype is MType.JOIN_REQUEST:
        if len(phy) != JOIN_REQUEST_LEN:
            raise MacError("truncated", f"JoinRequest of {len(phy)} bytes (expected {JOIN_REQUEST_LEN})")
        return JoinRequest(
            eui_from_wire(phy[1:9]),
            eui_from_wire(phy[9:17]),
            int.from_bytes(phy[17:19], "little"),
            mic,
            signed,
        )
    if mtype not in UPLINK_MTYPES and mtype not in DOWNLINK_MTYPES:
        raise MacError("unsupported_mtype", f"message type {mtype.name} is not handled")
    if len(phy) < MHDR_LEN + FHDR_MIN_LEN + MIC_LEN:
        raise MacError("truncated", f"data frame of {len(phy)} bytes has no complete frame header")
    dev_addr = int.from_bytes(phy[1:5], "little")
    fctrl = phy[5]
    fcnt16 = int.from_bytes(phy[6:8], "little")
    fopts_len = fctrl & FCTRL_FOPTS_LEN_MASK
    body_start = MHDR_LEN + FHDR_MIN_LEN + fopts_len
    if body_start > len(signed):
        raise MacError("truncated", f"FOptsLen {fopts_len} runs past the end of the frame")
    fopts = phy[8:body_start]
    rest = signed[body_start:]
    fport = rest[0] if rest else None
    frm = rest[1:] if rest else b""
    if fport == FPORT_MAC_COMMANDS and fopts:
        raise MacError("bad_fopts", "MAC commands both in FOpts and on FPort 0")
    return DataFrame(
        mtype,
        dev_addr,
        bool(fctrl & FCTRL_ADR),
        bool(fctrl & FCTRL_ADR_ACK_REQ),
        bool(fctrl & FCTRL_ACK),
        bool(fctrl & FCTRL_FPENDING),
        fcnt16,
        fopts,
        fport,
        frm,
        mic,
        signed,
    )


def build_data_frame(
    mtype: MType,
    dev_addr: int,
    fcnt: int,
    nwk_skey: bytes,
    app_skey: bytes,
    fport: int | None = None,
    payload: bytes = b"",
    *,
    ack: bool = False,
    adr: bool = False,
    fpending: bool = False,
    fopts: bytes = b"",
) -> bytes:
    """A complete, encrypted and signed data frame; ``fcnt`` is the full 32-bit counter."""
    if len(fopts) > MAX_FOPTS_LEN:
        raise ValueError(f"FOpts of {len(fopts)} bytes exceed {MAX_FOPTS_LEN}")
    if payload and fport is None:
        raise ValueError("a payload needs an FPort")
    direction = DIR_UPLINK if mtype in UPLINK_MTYPES else DIR_DOWNLINK
    fctrl = (FCTRL_ADR if adr else 0) | (FCTRL_ACK if ack else 0) | (FCTRL_FPENDING if fpending else 0)
    fctrl |= len(fopts)
    msg = (
        bytes([(mtype << 5) | MAJOR_LORAWAN_R1])
        + dev_addr.to_bytes(4, "little")
        + bytes([fctrl])
        + (fcnt & 0xFFFF).to_bytes(2, "little")
        + fopts
    )
    if fport is not None:
        key = nwk_skey if fport == FPORT_MAC_COMMANDS else app_skey
        msg += bytes([fport]) + crypto.frm_crypt(key, direction, dev_addr, fcnt, payload)
    return msg + crypto.data_mic(nwk_skey, direction, dev_addr, fcnt, msg)


def build_join_request(app_eui: str, dev_eui: str, dev_nonce: int, app_key: bytes) -> bytes:
    msg = (
        bytes([MType.JOIN_REQUEST << 5])
        + eui_to_wire(app_eui)
        + eui_to_wire(dev_eui)
        + dev_nonce.to_bytes(2, "little")
    )
    return msg + crypto.join_mic(app_key, msg)


def build_join_accept(app_key: bytes, accept: JoinAccept) -> bytes:
    if accept.cflist and len(accept.cflist) != JOIN_ACCEPT_CFLIST_LEN:
        raise ValueError(f"CFList must be {JOIN_ACCEPT_CFLIST_LEN} bytes")
    mhdr = bytes([MType.JOIN_ACCEPT << 5])
    dl_settings = ((accept.rx1_dr_offset & 0x07) << 4) | (accept.rx2_dr & 0x0F)
    body = (
        accept.app_nonce.to_bytes(3, "little")
        + accept.net_id.to_bytes(3, "little")
        + accept.dev_addr.to_bytes(4, "little")
        + bytes([dl_settings, accept.rx_delay & 0x0F])
        + accept.cflist
    )
    mic = crypto.join_mic(app_key, mhdr + body)
    return mhdr + crypto.encrypt_join_accept(app_key, body + mic)


def parse_join_accept(phy: bytes, app_key: bytes) -> JoinAccept:
    """Decrypt and check a JoinAccept as a device would (the simulator and tests use this)."""
    if (
        len(phy) not in (JOIN_ACCEPT_LEN, JOIN_ACCEPT_LEN + JOIN_ACCEPT_CFLIST_LEN)
        or phy[0] >> 5 != MType.JOIN_ACCEPT
    ):
        raise MacError("truncated", f"not a JoinAccept ({len(phy)} bytes)")
    plain = crypto.decrypt_join_accept(app_key, phy[1:])
    body, mic = plain[:-MIC_LEN], plain[-MIC_LEN:]
    if crypto.join_mic(app_key, phy[:1] + body) != mic:
        raise MacError("bad_mic", "JoinAccept MIC does not match the AppKey")
    return JoinAccept(
        int.from_bytes(body[0:3], "little"),
        int.from_bytes(body[3:6], "little"),
        int.from_bytes(body[6:10], "little"),
        (body[10] >> 4) & 0x07,
        body[10] & 0x0F,
        body[11] & 0x0F,
        body[12:],
    )
