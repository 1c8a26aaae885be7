"""The device session's data-uplink decisions as values: bytes in, effects out, no event loop."""

from __future__ import annotations

from drivers.lorawan.mac import DataFrame, parse_phy
from drivers.lorawan.session import Session
from drivers.lorawan.simulator import SimulatedDevice
from drivers.lorawan.uplink import (
    Count,
    Pending,
    Persist,
    Publish,
    Radio,
    Refuse,
    Send,
    next_fcnt_down,
    on_data_uplink,
)

NWK = bytes(range(16))
APP = bytes(range(16, 32))
RADIO = Radio(snr=7.5, data_rate="SF7BW125", gateways=1)
LINK_CHECK_REQ = b"\x02"


def device() -> SimulatedDevice:
    return SimulatedDevice("70B3D57ED0000001", dev_addr=0x26011234, nwk_skey=NWK, app_skey=APP)


def frame(phy: bytes) -> DataFrame:
    parsed = parse_phy(phy)
    assert isinstance(parsed, DataFrame)
    return parsed


def session(fcnt_up: int | None = None, fcnt_down: int | None = None) -> Session:
    return Session(0x26011234, NWK, APP, fcnt_up, fcnt_down)


def test_a_plain_uplink_persists_its_counter_before_it_is_published():
    sensor = device()
    outcome = on_data_uplink(
        session(), frame(sensor.uplink(1, b"\x01\x02")), RADIO, relaxed=False, reacked_fcnt=None, pending=None
    )
    assert [type(e) for e in outcome.effects] == [Persist, Publish]
    persisted, published = outcome.effects
    assert isinstance(persisted, Persist) and persisted.session.fcnt_up == 0
    assert persisted.session.fcnt_down is None  # nothing was sent, no downlink counter used
    assert published == Publish(0, 1, b"\x01\x02")


def test_a_replayed_frame_is_refused_and_changes_nothing():
    sensor = device()
    phy = sensor.uplink(1, b"\x01")
    outcome = on_data_uplink(
        session(fcnt_up=0), frame(phy), RADIO, relaxed=False, reacked_fcnt=None, pending=None
    )
    assert outcome.effects == (Refuse("replay", (("fcnt", 0), ("last_fcnt", 0))),)


def test_a_frame_for_another_address_has_no_session():
    stranger = SimulatedDevice("70B3D57ED0000002", dev_addr=0x26019999, nwk_skey=NWK, app_skey=APP)
    outcome = on_data_uplink(
        session(), frame(stranger.uplink(1, b"\x01")), RADIO, relaxed=False, reacked_fcnt=None, pending=None
    )
    assert outcome.effects == (Refuse("no_session", (("dev_addr", "26019999"),)),)


def test_a_confirmed_uplink_is_acked_with_the_next_downlink_counter_persisted_first():
    sensor = device()
    outcome = on_data_uplink(
        session(fcnt_down=41),
        frame(sensor.uplink(1, b"\x01", confirmed=True)),
        RADIO,
        relaxed=False,
        reacked_fcnt=None,
        pending=None,
    )
    kinds = [type(e) for e in outcome.effects]
    assert kinds == [Persist, Send, Publish]
    persisted, sent = outcome.effects[0], outcome.effects[1]
    assert isinstance(persisted, Persist) and persisted.session.fcnt_down == 42
    assert isinstance(sent, Send) and not sent.carries_pending
    downlink, _ = sensor.open_downlink(sent.phy)
    assert downlink.ack and downlink.fcnt16 == 42


def test_a_pending_downlink_and_a_link_check_ride_the_same_frame():
    sensor = device()
    outcome = on_data_uplink(
        session(),
        frame(sensor.uplink(1, b"\x01", fopts=LINK_CHECK_REQ)),
        RADIO,
        relaxed=False,
        reacked_fcnt=None,
        pending=Pending(10, b"\x2a", more=True),
    )
    sent = next(e for e in outcome.effects if isinstance(e, Send))
    assert sent.carries_pending
    downlink, payload = sensor.open_downlink(sent.phy)
    assert downlink.fport == 10 and payload == b"\x2a" and downlink.fpending
    assert downlink.fopts[:1] == b"\x02"  # LinkCheckAns


def test_a_lost_ack_is_sent_again_once_per_counter_and_nothing_is_published_twice():
    sensor = device()
    phy = sensor.uplink(1, b"\x01", confirmed=True)
    state = session(fcnt_up=0, fcnt_down=7)  # the frame was taken, its ACK lost
    first = on_data_uplink(state, frame(phy), RADIO, relaxed=False, reacked_fcnt=None, pending=None)
    assert [type(e) for e in first.effects] == [Count, Persist, Send]
    assert first.effects[0] == Count("confirmed_retransmissions") and first.reacked_fcnt == 0
    persisted = first.effects[1]
    assert isinstance(persisted, Persist) and persisted.session.fcnt_down == 8
    again = on_data_uplink(
        persisted.session, frame(phy), RADIO, relaxed=False, reacked_fcnt=first.reacked_fcnt, pending=None
    )
    assert [type(e) for e in again.effects] == [Refuse]  # a replay loop buys no airtime


def test_the_downlink_counter_wraps_at_32_bits():
    assert next_fcnt_down(session()) == 0
    assert next_fcnt_down(session(fcnt_down=(1 << 32) - 1)) == 0
