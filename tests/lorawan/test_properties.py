"""Property tests: arbitrary bytes never crash the parsers; built frames always parse back."""

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.lorawan import gwmp
from drivers.lorawan.constants import MType
from drivers.lorawan.fcnt import candidate
from drivers.lorawan.gwmp import GwmpError
from drivers.lorawan.mac import DataFrame, MacError, build_data_frame, parse_phy

keys = st.binary(min_size=16, max_size=16)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_frame_or_a_mac_error(data):
    try:
        parse_phy(data)
    except MacError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_datagram_is_a_packet_or_a_gwmp_error(data):
    try:
        gwmp.parse_upstream(data)
    except GwmpError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([MType.UNCONFIRMED_UP, MType.CONFIRMED_UP, MType.UNCONFIRMED_DOWN]),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    keys,
    keys,
    st.integers(1, 223),
    st.binary(max_size=64),
    st.binary(max_size=15),
    st.booleans(),
)
def test_built_frames_parse_back(mtype, dev_addr, fcnt, nwk, app, fport, payload, fopts, ack):
    frame = parse_phy(build_data_frame(mtype, dev_addr, fcnt, nwk, app, fport, payload, ack=ack, fopts=fopts))
    assert isinstance(frame, DataFrame)
    assert (frame.mtype, frame.dev_addr, frame.fcnt16, frame.fport, frame.ack, frame.fopts) == (
        mtype,
        dev_addr,
        fcnt & 0xFFFF,
        fport,
        ack,
        fopts,
    )
    assert frame.mic_ok(nwk, fcnt)
    assert frame.decrypt(nwk, app, fcnt) == payload


@given(st.integers(0, 2**32 - 1), st.integers(1, 16383))
def test_counter_moves_forward_by_the_gap(last, gap):
    result = candidate(last, (last + gap) & 0xFFFF)
    assert result.reason is None and result.fcnt32 == (last + gap) % 2**32
