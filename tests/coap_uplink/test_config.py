"""The [[upstreams]] section and the credentials file: typed results and errors that name the key."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from gateway.coap.credentials import load_credentials
from gateway.coap.uplink_config import UpstreamsConfig
from gateway.problems import ConfigError

SECRET = "00112233445566778899aabbccddeeff"

CREDENTIALS = f"""
[cloud.oscore]
sender_id = "01"
recipient_id = "02"
master_secret = "{SECRET}"
master_salt = "9e7ca92223786340"

[dtls.psk]
identity = "gw-1"
key = "not in logs"

[tb]
token = "TB_TOKEN_123"
"""


def write_credentials(tmp_path, text=CREDENTIALS):
    path = tmp_path / "credentials.toml"
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def test_defaults(site):
    config = site("""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:5683/ingest"
""")
    (upstream,) = config.section("upstreams", UpstreamsConfig).upstreams
    assert upstream.format == "senml+cbor" and upstream.security == "none"
    assert upstream.gateway_id == "test-site" and upstream.base_name == "test-site/"
    assert upstream.batch_size == 500 and upstream.backlog_batch_size == 5000
    assert upstream.cursor_name == "uplink:cloud"
    assert upstream.compact_floats is False  # exact values and times unless asked


def test_lossy_compact_floats_is_opt_in(site):
    config = site("""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1:5683/ingest"
compact_floats = true
""")
    assert config.section("upstreams", UpstreamsConfig).upstreams[0].compact_floats is True


def test_credentials_are_resolved_and_never_printed(site, tmp_path):
    write_credentials(tmp_path)
    config = site("""
[[upstreams]]
name = "cloud"
uri = "coap://127.0.0.1/ingest"
security = "oscore"
credentials_file = "credentials.toml"

[[upstreams]]
name = "tb"
uri = "coap://127.0.0.1:5683"
format = "thingsboard"
credentials_file = "credentials.toml"
""")
    cloud, tb = config.section("upstreams", UpstreamsConfig).upstreams
    assert cloud.credentials.oscore.master_secret == bytes.fromhex(SECRET)
    assert tb.request_uri == "coap://127.0.0.1:5683/api/v1/TB_TOKEN_123/telemetry"
    assert "TB_TOKEN" not in tb.safe_uri
    for text in (repr(cloud), repr(tb), repr(cloud.credentials), repr(tb.credentials)):
        assert SECRET not in text and "TB_TOKEN" not in text


@pytest.mark.parametrize(
    "body, message",
    [
        ('uri = "http://x/"', "must start with coap:// or coaps://"),
        ('uri = "coaps://x/"', 'a coaps:// URI needs security = "dtls-psk"'),
        (
            'uri = "coap://x/"\nsecurity = "dtls-psk"\ncredentials_file = "credentials.toml"',
            "needs a coaps:// URI",
        ),
        ('uri = "coap://x/"\nformat = "senml+cobr"', "did you mean 'senml+cbor'"),
        ('uri = "coap://x/"\nbatch_sise = 5', "unknown key 'batch_sise' (did you mean 'batch_size'?)"),
        ('uri = "coap://x/"\nsecurity = "oscore"', "credentials_file: is required"),
        (
            'uri = "coap://x/"\nsecurity = "oscore"\ncredentials_file = "missing.toml"',
            "missing.toml: file not found",
        ),
        (
            'uri = "coap://x/"\nsecurity = "oscore"\ncredentials_file = "credentials.toml"\ncredentials = "tb"',
            "has no [tb.oscore] keys",
        ),
        (
            'uri = "coap://x/"\nsecurity = "oscore"\ncredentials_file = "credentials.toml"\ncredentials = "nope"',
            "has no entry [nope]",
        ),
        (
            'uri = "coap://x/api"\nformat = "thingsboard"\ncredentials_file = "credentials.toml"\ncredentials = "tb"',
            "give only coap://host[:port]",
        ),
        ('uri = "coap://x/"\nbatch_size = 100\nbacklog_batch_size = 10', "must be at least batch_size"),
    ],
)
def test_errors_name_the_key(site, tmp_path, body, message):
    write_credentials(tmp_path)
    with pytest.raises(ConfigError) as info:
        site(f'[[upstreams]]\nname = "cloud"\n{body}\n')
    assert message in str(info.value)
    assert "upstreams[0]" in str(info.value) or ".toml" in str(info.value)


def test_dtls_without_its_transport_is_a_config_error_naming_security(site, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "DTLSSocket", None)  # as on a box where it did not build
    write_credentials(tmp_path, '[cloud.psk]\nidentity = "gw-1"\nkey = "sesame-key"\n')
    with pytest.raises(ConfigError) as info:
        site(
            '[[upstreams]]\nname = "cloud"\nuri = "coaps://x/"\nsecurity = "dtls-psk"\n'
            'credentials_file = "credentials.toml"\n'
        )
    assert "security" in str(info.value) and "DTLSSocket" in str(info.value)


def test_duplicate_names_are_refused(site):
    with pytest.raises(ConfigError, match="defined twice"):
        site('[[upstreams]]\nname = "a"\nuri = "coap://x/"\n[[upstreams]]\nname = "a"\nuri = "coap://y/"\n')


def test_bad_secret_is_reported_without_echoing_it(tmp_path):
    path = write_credentials(
        tmp_path, '[cloud.oscore]\nsender_id = "01"\nrecipient_id = "02"\nmaster_secret = "zz-very-secret"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_credentials(path)
    assert "cloud.oscore.master_secret: must be hexadecimal" in str(info.value)
    assert ":4:" in str(info.value)  # line number of the key
    assert "very-secret" not in str(info.value)


def test_world_readable_credentials_file_is_warned_about(tmp_path, caplog):
    path = write_credentials(tmp_path)
    os.chmod(path, 0o644)
    load_credentials(path)
    assert "credentials_file_too_open" in caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
