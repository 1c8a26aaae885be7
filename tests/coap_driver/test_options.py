"""The coap driver's options: gateway and device peers, credentials, and errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.problems import ConfigError

CREDS = """
[cab-b.oscore]
sender_id = "0a"
recipient_id = "0b"
master_secret = "000102030405060708090a0b0c0d0e0f"
"""


def site(tmp_path: Path, options: str) -> Path:
    (tmp_path / "peers.toml").write_text(CREDS)
    os.chmod(tmp_path / "peers.toml", 0o600)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[gateway]\nid = "a"\ndata_dir = "data"\n[[devices]]\nname = "cab-b"\ndriver = "coap"\n'
        f"[devices.options]\n{options}\n"
    )
    return path


def test_gateway_peer_declares_its_points_and_online(tmp_path):
    config = load_config(
        site(
            tmp_path,
            """peer = "gateway"
uri = "coap://127.0.0.1:5799/"
security = "oscore"
credentials_file = "peers.toml"
credentials = "cab-b"
observe = ["loop-*/*"]
[[devices.options.points]]
name = "lamp-1/level"
unit = "%"
writable = true""",
        )
    )
    device = config.device("cab-b")
    assert device is not None
    assert device.options.uri == "coap://127.0.0.1:5799"
    assert {f"cab-b/{p.name}": p.writable for p in device.points} == {
        "cab-b/lamp-1/level": True,
        "cab-b/online": False,
    }
    assert device.driver_class.relayed_from(device.options) == "coap://127.0.0.1:5799"


def test_device_peer_with_a_builtin_profile_is_forwarded_upstream(tmp_path):
    config = load_config(site(tmp_path, 'uri = "coap://[::1]"\nprofile = "ipso_temperature"'))
    device = config.device("cab-b")
    assert device is not None and device.options.uri == "coap://[::1]"
    assert device.driver_class.relayed_from(device.options) is None
    assert [p.name for p in device.points] == ["temperature", "online"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            'uri = "http://x"\nprofile = "text_sensor"',
            "devices[0].options.uri: 'http://x' must start with coap://",
        ),
        ('uri = "coap://x/sensor"\nprofile = "text_sensor"', "give only coap://host[:port]"),
        ('uri = "coap://x"\nprofile = "ipso_temprature"', "did you mean 'ipso_temperature'"),
        ('uri = "coap://x"\npeer = "gateway"', "needs observe globs"),
        (
            'uri = "coap://x"\npeer = "gateway"\nobserve = ["a/*"]\nsecurity = "oscore"',
            "credentials_file: is required",
        ),
        (
            'uri = "coap://x"\npeer = "gateway"\nobserve = ["a/*"]\nsecurity = "oscore"\ncredentials_file = "peers.toml"\n'
            'credentials = "cab-c"',
            "has no entry [cab-c]",
        ),
        (
            'uri = "coap://x"\npeer = "gateway"\nobserve = ["a/*"]\n[[devices.options.points]]\nname = "level"',
            "must be the neighbour's point as device/point",
        ),
        ('uri = "coap://x"\nprofile = "text_sensor"\nobserve = ["a"]', 'only applies to peer = "gateway"'),
        ('uri = "coaps://x"\nprofile = "text_sensor"', 'a coaps:// URI needs security = "dtls-psk"'),
    ],
)
def test_option_errors_name_the_key(tmp_path, options, message):
    with pytest.raises(ConfigError) as caught:
        load_config(site(tmp_path, options))
    assert message in str(caught.value)
