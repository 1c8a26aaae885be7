"""Frames built by the npm package lora-packet are decoded by ours, and ours by it."""

import os
import random

from drivers.lorawan.constants import MType
from drivers.lorawan.crypto import derive_session_keys
from drivers.lorawan.mac import (
    DataFrame,
    JoinAccept,
    JoinRequest,
    build_data_frame,
    build_join_accept,
    build_join_request,
    parse_phy,
)
from tests.lorawan.node_peer import lora_packet

rng = random.Random(7)


def _keys():
    return bytes(rng.randrange(256) for _ in range(16)), bytes(rng.randrange(256) for _ in range(16))


def _msb(fcnt: int) -> str:
    """lora-packet appends FCntMSBytes after the little-endian low half, so little-endian too."""
    return (fcnt >> 16).to_bytes(2, "little").hex()


CASES = [
    # (mtype name, lora-packet name, fcnt, fport, payload, ack, fopts)
    (MType.UNCONFIRMED_UP, "Unconfirmed Data Up", 0, 1, b"\x01\x67\x00\xd2", False, b""),
    (MType.CONFIRMED_UP, "Confirmed Data Up", 513, 10, os.urandom(40), False, b""),
    (MType.UNCONFIRMED_UP, "Unconfirmed Data Up", 0x0001FFFE, 2, os.urandom(7), False, b"\x02"),
    (MType.UNCONFIRMED_DOWN, "Unconfirmed Data Down", 3, 99, b"\x01\x01\x01", True, b""),
    (MType.CONFIRMED_DOWN, "Confirmed Data Down", 0x00050003, 5, os.urandom(20), False, b""),
    (MType.UNCONFIRMED_UP, "Unconfirmed Data Up", 9, 0, b"\x02", False, b""),
]


def test_frames_built_by_lora_packet_decode_here():
    requests, expected = [], []
    for _mtype, name, fcnt, fport, payload, ack, fopts in CASES:
        nwk, app = _keys()
        dev_addr = rng.randrange(1 << 32)
        requests.append(
            {
                "op": "build_data",
                "mtype": name,
                "dev_addr": f"{dev_addr:08x}",
                "fcnt": fcnt,
                "fcnt_msb": _msb(fcnt),
                "fport": fport,
                "payload": payload.hex(),
                "ack": ack,
                "fopts": fopts.hex(),
                "nwk_skey": nwk.hex(),
                "app_skey": app.hex(),
            }
        )
        expected.append((name, dev_addr, fcnt, fport, payload, ack, fopts, nwk, app))
    answers = lora_packet(requests)
    for answer, (name, dev_addr, fcnt, fport, payload, ack, fopts, nwk, app) in zip(
        answers, expected, strict=True
    ):
        frame = parse_phy(bytes.fromhex(answer["phy"]))
        assert isinstance(frame, DataFrame), name
        assert frame.dev_addr == dev_addr and frame.fcnt16 == fcnt & 0xFFFF and frame.fport == fport
        assert frame.ack == ack and frame.fopts == fopts
        assert frame.mic_ok(nwk, fcnt), name
        assert frame.decrypt(nwk, app, fcnt) == payload, name


def test_frames_built_here_decode_in_lora_packet():
    requests, expected = [], []
    for mtype, name, fcnt, fport, payload, ack, fopts in CASES:
        nwk, app = _keys()
        dev_addr = rng.randrange(1 << 32)
        phy = build_data_frame(mtype, dev_addr, fcnt, nwk, app, fport, payload, ack=ack, fopts=fopts)
        requests.append(
            {
                "op": "decode_data",
                "phy": phy.hex(),
                "nwk_skey": nwk.hex(),
                "app_skey": app.hex(),
                "fcnt_msb": _msb(fcnt),
            }
        )
        expected.append((name, dev_addr, fcnt, fport, payload, ack, fopts))
    for answer, (name, dev_addr, fcnt, fport, payload, ack, fopts) in zip(
        lora_packet(requests), expected, strict=True
    ):
        assert answer["mtype"] == name
        assert answer["dev_addr"] == f"{dev_addr:08x}"
        assert answer["fcnt"] == fcnt & 0xFFFF and answer["fport"] == fport
        assert answer["ack"] == ack and answer["fopts"] == fopts.hex()
        assert answer["mic_ok"] is True, name
        assert answer["payload"] == payload.hex(), name


def test_join_request_both_ways():
    app_key = os.urandom(16)
    ours = build_join_request("70B3D57ED0000000", "0004A30B001C0530", 0xA1B2, app_key)
    theirs = lora_packet(
        [
            {"op": "decode_join_request", "phy": ours.hex(), "app_key": app_key.hex()},
            {
                "op": "build_join_request",
                "app_eui": "70b3d57ed0000001",
                "dev_eui": "0004a30b001c0531",
                "dev_nonce": "c3d4",
                "app_key": app_key.hex(),
            },
        ]
    )
    assert theirs[0] == {
        "mtype": "Join Request",
        "app_eui": "70b3d57ed0000000",
        "dev_eui": "0004a30b001c0530",
        "dev_nonce": "a1b2",
        "mic_ok": True,
    }
    parsed = parse_phy(bytes.fromhex(theirs[1]["phy"]))
    assert isinstance(parsed, JoinRequest)
    assert (parsed.app_eui, parsed.dev_eui, parsed.dev_nonce) == (
        "70B3D57ED0000001",
        "0004A30B001C0531",
        0xC3D4,
    )
    assert parsed.mic_ok(app_key)


def test_join_accept_decrypts_in_lora_packet_with_the_same_session_keys():
    app_key = os.urandom(16)
    accept = JoinAccept(
        app_nonce=0x00002A,
        net_id=0x000013,
        dev_addr=0x26A1B2C3,
        rx1_dr_offset=1,
        rx2_dr=3,
        rx_delay=1,
        cflist=b"",
    )
    phy = build_join_accept(app_key, accept)
    [answer] = lora_packet(
        [{"op": "decode_join_accept", "phy": phy.hex(), "app_key": app_key.hex(), "dev_nonce": "1234"}]
    )
    nwk, app = derive_session_keys(app_key, 0x2A, 0x13, 0x1234)
    assert answer["mtype"] == "Join Accept" and answer["mic_ok"] is True
    assert (answer["app_nonce"], answer["net_id"], answer["dev_addr"]) == ("00002a", "000013", "26a1b2c3")
    assert (answer["rx1_dr_offset"], answer["rx2_dr"], answer["rx_delay"]) == (1, 3, 1)
    assert (answer["nwk_skey"], answer["app_skey"]) == (nwk.hex(), app.hex())
