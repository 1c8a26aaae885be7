"""Hostile radio-side input: GWMP datagrams from a concentrator, LoRaWAN PHYPayloads, MAC
commands and Cayenne LPP payloads. Every input is a value or the parser's own typed error."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given
from hypothesis import strategies as st

from drivers.lorawan import gwmp
from drivers.lorawan.codecs.base import CodecError
from drivers.lorawan.codecs.cayenne import CayenneLpp, encode_uplink
from drivers.lorawan.constants import GwmpType, MType
from drivers.lorawan.gwmp import GwmpError, PushData, Rxpk
from drivers.lorawan.mac import DataFrame, MacError, build_data_frame, build_join_request, parse_phy
from drivers.lorawan.maccommands import answers, split_uplink
from drivers.lorawan.server import NetworkServer
from drivers.lorawan.session import Session, check_uplink

from .mutate import FUZZ, bytes_case

GATEWAY = "AA555A0000000001"
NWK_SKEY = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
APP_SKEY = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
DEV_ADDR = 0x26011BDA

UPLINK = build_data_frame(
    MType.UNCONFIRMED_UP,
    DEV_ADDR,
    7,
    NWK_SKEY,
    APP_SKEY,
    1,
    encode_uplink({"temperature_1": 21.5, "relative_humidity_2": 40}),
)
MAC_UPLINK = build_data_frame(
    MType.CONFIRMED_UP, DEV_ADDR, 8, NWK_SKEY, APP_SKEY, 0, b"\x02\x03\x07\x06\x10\x20"
)
FOPTS_UPLINK = build_data_frame(
    MType.UNCONFIRMED_UP, DEV_ADDR, 9, NWK_SKEY, APP_SKEY, 2, b"\x01", fopts=b"\x02\x0d\x03\x07"
)
JOIN = build_join_request("70B3D57ED0000001", "0004A30B001C0530", 0x1234, NWK_SKEY)
RX = Rxpk(UPLINK, 123456, 868.1, "SF7BW125", "4/5", -61.0, 8.5, True, 2, 0, "2026-01-01T00:00:00Z")

DATAGRAMS = [
    gwmp.push_data(
        1,
        GATEWAY,
        [RX, Rxpk(JOIN, 9, 868.3, "SF12BW125", "4/5", -120, -17.5, False)],
        stat={
            "time": "2026-01-01 00:00:00 GMT",
            "rxnb": 12,
            "rxok": 10,
            "rxfw": 10,
            "ackr": 100.0,
            "dwnb": 1,
            "txnb": 1,
        },
    ),
    gwmp.push_data(2, GATEWAY, [Rxpk(MAC_UPLINK, 1, 867.5, "SF9BW125", "4/5", -90, 2.0, True)]),
    gwmp.push_data(3, GATEWAY, stat={"rxnb": 0, "ackr": 0.0}, version=1),
    gwmp.pull_data(4, GATEWAY),
    gwmp.tx_ack(5, GATEWAY, "TOO_LATE"),
]
JSON_HOSTILE = (
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"9" * 5000,
    b"[" * 2000,
    b'"\\ud800"',
    b"null",
    b"true",
    b"{}",
    b"[]",
    b"\x00",
    b"\xff",
    b'"',
    b",",
    b":",
    b"-0",
    b"0.0",
)


def check_gwmp_datagram(data: bytes) -> None:
    """A datagram is a packet or a GwmpError whose reason the server counts."""
    try:
        packet = gwmp.parse_upstream(data)
    except GwmpError as exc:
        assert exc.reason in ("malformed", "bad_version", "bad_json")
        return
    if isinstance(packet, PushData):
        for rx in packet.rxpk:
            assert 0 <= rx.tmst < 2**32
            for number in (rx.freq, rx.rssi, rx.lsnr):
                assert number - number == 0  # finite: no inf, no NaN reaches the driver


DATA_RATES = (
    "SF7BW125",
    "SF12BW125",
    "SFxBW125",
    "SFBW",
    "SF" + "9" * 5000 + "BW125",
    "SF٣BW125",
    "SF-3BW125",
    "BW125SF7",
    "",
    "FSK50",
)
PHYS = [UPLINK, MAC_UPLINK, FOPTS_UPLINK, JOIN]


def check_phy_payload(phy: bytes) -> None:
    """The network server's path for one PHYPayload, up to the MAC command answers."""
    try:
        frame = parse_phy(phy)
    except MacError:
        return
    if not isinstance(frame, DataFrame):
        return
    session = Session(frame.dev_addr, NWK_SKEY, APP_SKEY, 6)
    check = check_uplink(session, frame, relaxed=True)
    payload = frame.decrypt(NWK_SKEY, APP_SKEY, check.fcnt32)
    commands, _complete = split_uplink(payload if frame.fport == 0 else frame.fopts)
    # The data rate is text from the concentrator, as hostile as the frame.
    answers(commands, -5.0, DATA_RATES[len(phy) % len(DATA_RATES)], 3)
    answers(commands, 7.0, "SF7BW125", 1)


LPP_SEEDS = [
    encode_uplink(
        {
            "temperature_1": -12.5,
            "relative_humidity_2": 40.5,
            "digital_in_3": 1,
            "analog_in_4": -3.25,
            "luminosity_5": 700,
            "presence_6": 1,
            "barometric_pressure_7": 1013.2,
        }
    ),
    encode_uplink({"gps_1": {"latitude": 52.37, "longitude": 4.89, "altitude": 5.0}}),
    encode_uplink(
        {"accelerometer_2": {"x": 0.1, "y": -0.2, "z": 1.0}, "gyrometer_3": {"x": 1.5, "y": 0.0, "z": -2.25}}
    ),
    encode_uplink({"digital_out_9": 0, "analog_out_10": 1.5}),
]
LPP_CODEC = CayenneLpp()


def check_cayenne_payload(payload: bytes) -> None:
    try:
        LPP_CODEC.decode_uplink(1, payload)
    except CodecError:
        pass


@FUZZ
@given(st.integers(0, 2**64 - 1))
def test_fuzz_radio_side_inputs(n: int) -> None:
    """Each example feeds one mutated input to each of the three parsers (one hypothesis example
    costs about as much as the parsing, so three tests would triple that cost)."""
    check_gwmp_datagram(bytes_case(n, DATAGRAMS, JSON_HOSTILE))
    check_phy_payload(bytes_case(n + 1, PHYS))
    check_cayenne_payload(bytes_case(n + 2, LPP_SEEDS))


def test_stat_with_an_overflowing_count_is_acknowledged_and_counted() -> None:
    """`"rxnb": 1e999` once raised OverflowError out of datagram_received: no PUSH_ACK, no count."""

    async def scenario() -> None:
        server = NetworkServer("127.0.0.1", 0)
        await server.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            hostile = (
                gwmp.push_data(0x0102, GATEWAY, [RX])[:-1]
                + b',"stat":{"rxnb":1e999,"rxok":NaN,"ackr":-Infinity}}'
            )
            sock.sendto(hostile, ("127.0.0.1", server.port))
            ack = await asyncio.wait_for(loop.sock_recv(sock, 64), 10)
            assert ack == bytes([2, 0x01, 0x02, GwmpType.PUSH_ACK])
            assert server.counters["stat_bad_number"] == 1
            assert server.counters["stats"] == 0
            # The packet beside the broken report still went on to de-duplication.
            assert UPLINK in server._pending_dedup
        finally:
            sock.close()
            await server.close()

    asyncio.run(scenario())
