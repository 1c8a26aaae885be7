"""Link-format parsing of a gateway's /.well-known/core and the choice of points by glob."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.coap.discovery import RemotePoint, gateway_points, select, unmatched
from drivers.coap.freshness import FreshnessPolicy, retry_delay
from gateway.coap.linkformat import Link, LinkFormatError, parse_link_format

# the shape gateway/coap/api.py serves (aiocoap's WKCResource)
DOC = (
    b'</readings>;ct="112 110 50 60";rt="gateway.readings",'
    b'</points/loop-1/occupied>;ct="112 110 50 60 0";rt="gateway.point";obs,'
    b'</points/lamp-1/level>;ct="112 110 50 60 0";rt="gateway.point";if="core.a";obs,'
    b'</points/lamp-1/power>;rt="gateway.point";obs,'
    b'</overrides/lamp-1/level>;rt="gateway.override";if="core.p"'
)


def test_parse_attributes_quoted_lists_and_flags():
    links = parse_link_format(DOC)
    assert links[0] == Link("/readings", (("ct", "112 110 50 60"), ("rt", "gateway.readings")))
    assert links[2].values("ct") == ["112", "110", "50", "60", "0"]
    assert links[2].has("obs") and links[2].values("if") == ["core.a"]


def test_quoted_values_may_hold_commas_and_escapes():
    links = parse_link_format(b'</a>;title="x, \\"y\\"";rt=plain,</b>')
    assert links == [Link("/a", (("title", 'x, "y"'), ("rt", "plain"))), Link("/b")]


def test_gateway_points_and_globs():
    points = gateway_points(parse_link_format(DOC))
    assert points == [
        RemotePoint("loop-1/occupied", False, True),
        RemotePoint("lamp-1/level", True, True),
        RemotePoint("lamp-1/power", False, True),
    ]
    assert [p.name for p in select(points, ["loop-*/*", "lamp-?/level"])] == [
        "loop-1/occupied",
        "lamp-1/level",
    ]
    assert unmatched(points, ["loop-*/*", "meter/*"]) == ["meter/*"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"/a>;rt=x", "expected '<'"),
        (b"</a;rt=x", "no closing '>'"),
        (b'</a>;rt="open', "not closed"),
        (b"</a>;=x", "empty attribute name"),
        (b"</a> </b>", "expected ','"),
        (b"</a>\xff", "not UTF-8"),
    ],
)
def test_broken_documents_say_where(payload, reason):
    with pytest.raises(LinkFormatError, match=reason):
        parse_link_format(payload)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_link_format_error(payload):
    try:
        parse_link_format(payload)
    except LinkFormatError:
        pass


def test_freshness_bound_from_max_age():
    policy = FreshnessPolicy(cap=30.0, floor=1.0, grace=0.5)
    assert policy.bound(None) == 30.5  # the CoAP default of 60 s, capped
    assert policy.bound(10) == 10.5
    assert policy.bound(0) == 1.5  # Max-Age 0 is "do not cache", not "dead at once"
    assert policy.bound(86400) == 30.5
    assert policy.deadline(100.0, 5) == 105.5


def test_retry_delay_doubles_up_to_the_maximum():
    assert [retry_delay(n, 0.5, 3.0) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay(10_000, 0.5, 3.0) == 3.0
