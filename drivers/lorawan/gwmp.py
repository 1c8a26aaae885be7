"""Sans-IO Semtech UDP packet-forwarder protocol (GWMP v2): datagrams in, typed packets out.

Parses PUSH_DATA/PULL_DATA/TX_ACK from concentrators and builds the ACKs and PULL_RESP the
server sends; the simulator uses the reverse direction. No sockets here.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .constants import GWMP_ACCEPTED_VERSIONS, GWMP_EUI_LEN, GWMP_HEADER_LEN, GWMP_VERSION, GwmpType


class GwmpError(ValueError):
    """A datagram that is not valid GWMP; ``reason`` is a short counter name."""

    def __init__(self, reason: str, message: str, gateway: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.gateway = gateway


@dataclass(frozen=True, slots=True)
class Rxpk:
    """One received radio packet as the concentrator reports it."""

    payload: bytes
    tmst: int
    freq: float  # MHz
    datr: str  # e.g. "SF7BW125"
    codr: str
    rssi: float
    lsnr: float
    crc_ok: bool
    chan: int = 0
    rfch: int = 0
    time: str | None = None

    @property
    def quality(self) -> tuple[float, float]:
        """Sort key: better SNR first, then RSSI (SNR predicts demodulation margin best)."""
        return (self.lsnr, self.rssi)


@dataclass(frozen=True, slots=True)
class Stat:
    """A concentrator's periodic status report."""

    rxnb: int = 0  # packets received
    rxok: int = 0  # with a valid CRC
    rxfw: int = 0  # forwarded
    ackr: float = 0.0  # % of upstream datagrams acknowledged
    dwnb: int = 0  # downlinks received
    txnb: int = 0  # packets emitted
    time: str | None = None


@dataclass(frozen=True, slots=True)
class Txpk:
    """A downlink for the concentrator to send."""

    payload: bytes
    freq: float
    datr: str
    tmst: int | None = None  # None = send immediately
    powe: int = 14
    codr: str = "4/5"
    rfch: int = 0
    ipol: bool = True  # downlinks use inverted IQ so other gateways' uplink receivers ignore them

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "imme": self.tmst is None,
            "freq": self.freq,
            "rfch": self.rfch,
            "powe": self.powe,
            "modu": "LORA",
            "datr": self.datr,
            "codr": self.codr,
            "ipol": self.ipol,
            "size": len(self.payload),
            "data": base64.b64encode(self.payload).decode("ascii"),
        }
        if self.tmst is not None:
            out["tmst"] = self.tmst
        return out


@dataclass(frozen=True, slots=True)
class PushData:
    token: int
    gateway: str  # EUI as 16 hex digits, upper case
    rxpk: tuple[Rxpk, ...] = ()
    stat: Stat | None = None
    bad_rxpk: tuple[str, ...] = field(default=())  # reasons for rxpk entries that were skipped
    version: int = GWMP_VERSION
    bad_stat: str | None = None  # reason the 'stat' object was dropped, if it was


@dataclass(frozen=True, slots=True)
class PullData:
    token: int
    gateway: str
    version: int = GWMP_VERSION


@dataclass(frozen=True, slots=True)
class TxAck:
    token: int
    gateway: str
    error: str  # "NONE" when the downlink was accepted
    version: int = GWMP_VERSION


@dataclass(frozen=True, slots=True)
class PullResp:
    token: int
    txpk: Txpk
    version: int = GWMP_VERSION


@dataclass(frozen=True, slots=True)
class Ack:
    """PUSH_ACK or PULL_ACK, as the simulator sees them."""

    kind: GwmpType
    token: int
    version: int = GWMP_VERSION


UpstreamPacket = PushData | PullData | TxAck


def _header(data: bytes) -> tuple[int, int, GwmpType]:
    if len(data) < GWMP_HEADER_LEN:
        raise GwmpError("malformed", f"datagram of {len(data)} bytes is shorter than a GWMP header")
    version = data[0]
    if version not in GWMP_ACCEPTED_VERSIONS:
        raise GwmpError("bad_version", f"protocol version {version} (expected {GWMP_VERSION})")
    try:
        kind = GwmpType(data[3])
    except ValueError:
        raise GwmpError("malformed", f"unknown packet identifier 0x{data[3]:02x}") from None
    return version, int.from_bytes(data[1:3], "big"), kind


def _eui(data: bytes, kind: GwmpType) -> str:
    end = GWMP_HEADER_LEN + GWMP_EUI_LEN
    if len(data) < end:
        raise GwmpError("malformed", f"{kind.name} of {len(data)} bytes has no gateway EUI")
    return data[GWMP_HEADER_LEN:end].hex().upper()


def _json_body(data: bytes, kind: GwmpType, gateway: str) -> dict[str, Any]:
    body = data[GWMP_HEADER_LEN + GWMP_EUI_LEN :]
    try:
        parsed = json.loads(body.decode("utf-8")) if body else {}
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers past Python's digit limit;
        # RecursionError a body nested deeper than the decoder can follow.
        raise GwmpError("bad_json", f"{kind.name} body is not JSON: {exc}", gateway) from None
    if not isinstance(parsed, dict):
        raise GwmpError("bad_json", f"{kind.name} body is not a JSON object", gateway)
    return parsed


def parse_upstream(data: bytes) -> UpstreamPacket:
    """Parse a datagram a concentrator sent; raises GwmpError for anything malformed."""
    version, token, kind = _header(data)
    if kind not in (GwmpType.PUSH_DATA, GwmpType.PULL_DATA, GwmpType.TX_ACK):
        raise GwmpError("malformed", f"{kind.name} is not sent by a concentrator")
    gateway = _eui(data, kind)
    if kind is GwmpType.PULL_DATA:
        return PullData(token, gateway, version)
    if kind is GwmpType.TX_ACK:
        body = _json_body(data, kind, gateway) if len(data) > GWMP_HEADER_LEN + GWMP_EUI_LEN else {}
        txpk_ack = body.get("txpk_ack") if isinstance(body.get("txpk_ack"), dict) else {}
        error = str(txpk_ack.get("error", "NONE")) if txpk_ack else "NONE"
        return TxAck(token, gateway, error, version)
    body = _json_body(data, kind, gateway)
    rxpks: list[Rxpk] = []
    bad: list[str] = []
    raw_rxpk = body.get("rxpk", [])
    if not isinstance(raw_rxpk, list):
        raise GwmpError("bad_json", "PUSH_DATA 'rxpk' is not a list", gateway)
    for item in raw_rxpk:
        try:
            rxpks.append(parse_rxpk(item))
        except GwmpError as exc:
            bad.append(exc.reason)
    stat, bad_stat = None, None
    if isinstance(body.get("stat"), dict):
        try:
            stat = parse_stat(body["stat"])
        except GwmpError as exc:
            bad_stat = exc.reason  # a broken report must not cost the packets beside it
    return PushData(token, gateway, tuple(rxpks), stat, tuple(bad), version, bad_stat)


def _number(item: dict[str, Any], key: str, default: float | None = None) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GwmpError("bad_json", f"rxpk field '{key}' is missing or not a number")
    return _finite(value, "rxpk", key)


def _finite(value: int | float, what: str, key: str) -> float:
    """``value`` as a float; JSON allows 1e999, NaN and 400-digit integers, a radio does not."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise GwmpError("bad_number", f"{what} field '{key}' is {value!r:.40}, not a finite number")
    return number


def parse_rxpk(item: Any) -> Rxpk:
    if not isinstance(item, dict):
        raise GwmpError("bad_json", "rxpk entry is not an object")
    data = item.get("data")
    if not isinstance(data, str):
        raise GwmpError("bad_json", "rxpk has no 'data'")
    try:
        payload = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise GwmpError("bad_base64", "rxpk 'data' is not valid base64") from None
    datr = item.get("datr")
    if not isinstance(datr, str):
        raise GwmpError("bad_json", "rxpk has no LoRa 'datr' (FSK is not supported)")
    return Rxpk(
        payload=payload,
        tmst=int(_number(item, "tmst")) % (1 << 32),
        freq=_number(item, "freq"),
        datr=datr,
        codr=str(item.get("codr", "4/5")),
        rssi=_number(item, "rssi", 0),
        lsnr=_number(item, "lsnr", 0),
        crc_ok=item.get("stat", 1) == 1,
        chan=int(_number(item, "chan", 0)),
        rfch=int(_number(item, "rfch", 0)),
        time=item.get("time") if isinstance(item.get("time"), str) else None,
    )


def parse_stat(item: dict[str, Any]) -> Stat:
    def num(key: str) -> float:
        value = item.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 0.0
        return _finite(value, "stat", key)

    return Stat(
        int(num("rxnb")),
        int(num("rxok")),
        int(num("rxfw")),
        num("ackr"),
        int(num("dwnb")),
        int(num("txnb")),
        item.get("time") if isinstance(item.get("time"), str) else None,
    )


# --- building (server side) --------------------------------------------------------------


def _head(version: int, token: int, kind: GwmpType) -> bytes:
    return bytes([version]) + token.to_bytes(2, "big") + bytes([kind])


def push_ack(token: int, version: int = GWMP_VERSION) -> bytes:
    return _head(version, token, GwmpType.PUSH_ACK)


def pull_ack(token: int, version: int = GWMP_VERSION) -> bytes:
    return _head(version, token, GwmpType.PULL_ACK)


def pull_resp(token: int, txpk: Txpk, version: int = GWMP_VERSION) -> bytes:
    body = json.dumps({"txpk": txpk.to_json()}, separators=(",", ":")).encode()
    return _head(version, token, GwmpType.PULL_RESP) + body


# --- the concentrator's side (simulator, tests) --------------------------------------------


def rxpk_json(rx: Rxpk) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tmst": rx.tmst,
        "chan": rx.chan,
        "rfch": rx.rfch,
        "freq": rx.freq,
        "stat": 1 if rx.crc_ok else -1,
        "modu": "LORA",
        "datr": rx.datr,
        "codr": rx.codr,
        "rssi": rx.rssi,
        "lsnr": rx.lsnr,
        "size": len(rx.payload),
        "data": base64.b64encode(rx.payload).decode("ascii"),
    }
    if rx.time:
        out["time"] = rx.time
    return out


def push_data(
    token: int,
    gateway: str,
    rxpk: list[Rxpk] | tuple[Rxpk, ...] = (),
    stat: dict[str, Any] | None = None,
    version: int = GWMP_VERSION,
) -> bytes:
    body: dict[str, Any] = {}
    if rxpk:
        body["rxpk"] = [rxpk_json(r) for r in rxpk]
    if stat is not None:
        body["stat"] = stat
    return (
        _head(version, token, GwmpType.PUSH_DATA)
        + bytes.fromhex(gateway)
        + json.dumps(body, separators=(",", ":")).encode()
    )


def pull_data(token: int, gateway: str, version: int = GWMP_VERSION) -> bytes:
    return _head(version, token, GwmpType.PULL_DATA) + bytes.fromhex(gateway)


def tx_ack(token: int, gateway: str, error: str = "NONE", version: int = GWMP_VERSION) -> bytes:
    body = json.dumps({"txpk_ack": {"error": error}}).encode()
    return _head(version, token, GwmpType.TX_ACK) + bytes.fromhex(gateway) + body


def parse_downstream(data: bytes) -> Ack | PullResp:
    """Parse what the server sent back (for the simulator)."""
    version, token, kind = _header(data)
    if kind in (GwmpType.PUSH_ACK, GwmpType.PULL_ACK):
        return Ack(kind, token, version)
    if kind is GwmpType.PULL_RESP:
        body = json.loads(data[GWMP_HEADER_LEN:])
        t = body["txpk"]
        txpk = Txpk(
            base64.b64decode(t["data"]),
            float(t["freq"]),
            t["datr"],
            None if t.get("imme") else int(t["tmst"]),
            int(t.get("powe", 14)),
            t.get("codr", "4/5"),
            int(t.get("rfch", 0)),
            bool(t.get("ipol", True)),
        )
        return PullResp(token, txpk, version)
    raise GwmpError("malformed", f"{kind.name} is not sent by a server")
