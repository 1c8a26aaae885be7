"""Sans-IO cores: crypto against published vectors, MAC parsing, counters, GWMP, channel plans."""

import base64
import json

import pytest

from drivers.lorawan import crypto, gwmp
from drivers.lorawan.channels import EU868, US915
from drivers.lorawan.constants import MType
from drivers.lorawan.fcnt import candidate
from drivers.lorawan.gwmp import GwmpError
from drivers.lorawan.mac import (
    DataFrame,
    JoinAccept,
    JoinRequest,
    MacError,
    build_data_frame,
    build_join_accept,
    build_join_request,
    parse_join_accept,
    parse_phy,
)
from drivers.lorawan.maccommands import split_uplink

# RFC 4493 §4 AES-CMAC test vectors
RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")


@pytest.mark.parametrize(
    "message, mac",
    [
        ("", "bb1d6929e95937287fa37d129b756746"),
        ("6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c"),
        (
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411",
            "dfa66747de9ae63030ca32611497c827",
        ),
    ],
)
def test_aes_cmac_matches_rfc4493(message, mac):
    assert crypto.aes_cmac(RFC4493_KEY, bytes.fromhex(message)).hex() == mac


# A frame published with lora-packet and used across the TTN community as a decoding example.
KNOWN_FRAME = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
KNOWN_NWKSKEY = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
KNOWN_APPSKEY = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")


def test_known_frame_verifies_and_decrypts():
    frame = parse_phy(KNOWN_FRAME)
    assert isinstance(frame, DataFrame)
    assert frame.mtype is MType.UNCONFIRMED_UP
    assert frame.dev_addr_hex == "49BE7DF1"
    assert (frame.fcnt16, frame.fport) == (2, 1)
    assert frame.mic_ok(KNOWN_NWKSKEY, 2)
    assert not frame.mic_ok(KNOWN_NWKSKEY, 2 + 65536)
    assert frame.decrypt(KNOWN_NWKSKEY, KNOWN_APPSKEY, 2) == b"test"


def test_building_the_known_frame_gives_the_same_bytes():
    built = build_data_frame(MType.UNCONFIRMED_UP, 0x49BE7DF1, 2, KNOWN_NWKSKEY, KNOWN_APPSKEY, 1, b"test")
    assert built == KNOWN_FRAME


def test_join_round_trip_and_session_keys_agree():
    app_key = bytes(range(16))
    request = build_join_request("70B3D57ED0000000", "0004A30B001C0530", 0x1234, app_key)
    parsed = parse_phy(request)
    assert isinstance(parsed, JoinRequest)
    assert (parsed.app_eui, parsed.dev_eui, parsed.dev_nonce) == (
        "70B3D57ED0000000",
        "0004A30B001C0530",
        0x1234,
    )
    assert parsed.mic_ok(app_key) and not parsed.mic_ok(bytes(16))
    accept = JoinAccept(0x000102, 0x000013, 0x26012345, 2, 3, 1, b"")
    phy = build_join_accept(app_key, accept)
    assert len(phy) == 17
    assert parse_join_accept(phy, app_key) == accept
    with pytest.raises(MacError):
        parse_join_accept(phy, bytes(16))


@pytest.mark.parametrize(
    "phy, reason",
    [
        (b"", "truncated"),
        (b"\x40\x01\x02", "truncated"),
        (bytes.fromhex("40F17DBE49000200"), "truncated"),
        (bytes([0x41]) + KNOWN_FRAME[1:], "bad_major"),
        (bytes([0x00]) + bytes(10), "truncated"),
    ],
)
def test_malformed_phy_payloads_are_refused_with_a_reason(phy, reason):
    with pytest.raises(MacError) as info:
        parse_phy(phy)
    assert info.value.reason == reason


def test_fopts_length_running_past_the_frame_is_truncated():
    bad = bytearray(KNOWN_FRAME)
    bad[5] = 0x0F  # FOptsLen 15 in a 17-byte frame
    with pytest.raises(MacError, match="FOptsLen"):
        parse_phy(bytes(bad))


def test_frame_counter_reconstruction():
    assert candidate(None, 7).fcnt32 == 7
    assert candidate(10, 11) == candidate(10, 11).__class__(11, None)
    assert candidate(65535, 0).fcnt32 == 65536 and candidate(65535, 0).reason is None
    assert candidate(0x1FFF0, 0x0005).fcnt32 == 0x20005
    assert candidate(100, 100).reason == "replay"
    assert candidate(100, 99).reason == "stale"
    assert candidate(100, 100 + 20000).reason == "stale"  # more lost frames than believable
    assert candidate(0xFFFFFFFF, 0).fcnt32 == 0  # the 32-bit counter itself wraps


def test_mac_commands_split_by_fixed_lengths():
    commands, complete = split_uplink(bytes([0x02, 0x06, 0xFE, 0x11, 0x03, 0x07]))
    assert complete and [c.cid for c in commands] == [0x02, 0x06, 0x03]
    assert commands[1].payload == bytes([0xFE, 0x11])
    assert split_uplink(bytes([0x02, 0x80, 0x00]))[1] is False


def test_gwmp_push_data_round_trip():
    rx = gwmp.Rxpk(KNOWN_FRAME, 123456, 868.1, "SF7BW125", "4/5", -57.0, 9.5, True)
    packet = gwmp.parse_upstream(gwmp.push_data(0xBEEF, "AA555A0000000001", [rx], {"rxnb": 3}))
    assert isinstance(packet, gwmp.PushData)
    assert packet.token == 0xBEEF and packet.gateway == "AA555A0000000001"
    assert packet.rxpk == (rx,)
    assert packet.stat.rxnb == 3
    assert gwmp.push_ack(0xBEEF) == bytes([2, 0xBE, 0xEF, 1])


def test_gwmp_pull_resp_carries_tmst_and_inverted_polarity():
    txpk = gwmp.Txpk(b"\x60abc", 869.525, "SF12BW125", tmst=5_000_000)
    raw = gwmp.pull_resp(7, txpk)
    assert raw[:4] == bytes([2, 0, 7, 3])
    body = json.loads(raw[4:])["txpk"]
    assert body["tmst"] == 5_000_000 and body["imme"] is False and body["ipol"] is True
    assert base64.b64decode(body["data"]) == b"\x60abc" and body["size"] == 4


@pytest.mark.parametrize(
    "datagram, reason",
    [
        (b"\x02\x00", "malformed"),
        (b"\x09\x00\x01\x00" + bytes(8) + b"{}", "bad_version"),
        (b"\x02\x00\x01\x00" + bytes(8) + b"{not json", "bad_json"),
        (b"\x02\x00\x01\x00" + bytes(4), "malformed"),
        (b"\x02\x00\x01\x0e" + bytes(8), "malformed"),
        (b"\x02\x00\x01\x00" + bytes(8) + b"[1,2]", "bad_json"),
    ],
)
def test_malformed_datagrams(datagram, reason):
    with pytest.raises(GwmpError) as info:
        gwmp.parse_upstream(datagram)
    assert info.value.reason == reason


def test_bad_base64_skips_only_that_rxpk():
    good = gwmp.rxpk_json(gwmp.Rxpk(KNOWN_FRAME, 1, 868.1, "SF7BW125", "4/5", -50, 5, True))
    bad = dict(good, data="***not base64***")
    raw = b"\x02\x00\x01\x00" + bytes(8) + json.dumps({"rxpk": [bad, good]}).encode()
    packet = gwmp.parse_upstream(raw)
    assert len(packet.rxpk) == 1 and packet.bad_rxpk == ("bad_base64",)


def test_eu868_rx1_uses_uplink_frequency_and_dr_offset_table():
    assert EU868.rx1(868.3, "SF7BW125", 0) == (868.3, "SF7BW125")
    assert EU868.rx1(868.3, "SF7BW125", 2) == (868.3, "SF9BW125")
    assert EU868.rx1(868.3, "SF10BW125", 5) == (868.3, "SF12BW125")
    assert EU868.rx2() == (869.525, "SF12BW125")


def test_us915_rx1_maps_uplink_channel_to_downlink_channel():
    assert US915.rx1(902.3, "SF10BW125", 0) == (923.3, "SF10BW500")  # channel 0 -> downlink 0, DR0 -> DR10
    assert US915.rx1(903.9, "SF7BW125", 0) == (923.3 + 0.6 * 0, "SF7BW500")  # channel 8 -> downlink 0
    assert US915.rx1(902.5, "SF7BW125", 1) == (923.9, "SF8BW500")  # channel 1, DR3 offset 1 -> DR12
    assert US915.rx1(903.0, "SF8BW500", 0) == (923.3, "SF7BW500")  # 500 kHz channel 64 -> downlink 0
    assert US915.rx2() == (923.3, "SF12BW500")
    with pytest.raises(ValueError):
        US915.rx1(868.1, "SF7BW125", 0)
