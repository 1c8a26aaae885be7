"""The [api] section: typed defaults, and errors that name the key and say what to do."""

from __future__ import annotations

import pytest

from gateway.coap.api_config import ApiConfig
from gateway.problems import ConfigError

from .helpers import write_credentials


def test_defaults_keep_everything_but_discovery_private(site):
    config = site("[api]\n")
    api = config.section("api", ApiConfig)
    assert api.port == 5683 and api.bind == "::" and api.public == frozenset({"discovery"})
    assert api.clients == {} and api.dtls_port is None


def test_clients_come_from_the_credentials_file(site, tmp_path):
    write_credentials(tmp_path)
    api = site("""
        [api]
        credentials = "api-credentials.toml"
        public = ["readings", "health"]
        [api.clients]
        scada = "control"
        dashboard = "read"
    """).section("api", ApiConfig)
    assert api.credentials_path == tmp_path / "api-credentials.toml"
    assert {n: c.access for n, c in api.clients.items()} == {"scada": "control", "dashboard": "read"}
    assert "master_secret" not in repr(api) and "0102030405" not in repr(api)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'public = ["readinds"]',
            "api.public[0]: 'readinds' is not a resource group; choose from discovery, "
            "readings, points, health, overrides, rules (did you mean 'readings'?)",
        ),
        ('bind = "localhost"', "api.bind: 'localhost' is not an IP address"),
        ("port = 70000", "api.port: must be at most 65535"),
        ("page_size = 5000", "api.page_size: must not exceed max_page_size (1000)"),
        ('credentials = "api-credentials.toml"\n[api.clients]\nnobody = "control"', "api.clients.nobody: "),
        (
            'credentials = "api-credentials.toml"\n[api.clients]\nscada = "admin"',
            "api.clients.scada: 'admin' is not one of read, control",
        ),
        ('[api.clients]\nscada = "read"', "api.clients: set 'credentials' to the file"),
        ('credentials = "missing.toml"', "api.credentials: in "),
        (
            'credentials = "api-credentials.toml"\ndtls_port = 5684\n[api.clients]\nscada = "control"',
            "api.dtls_port: no client listed in [api.clients] has a [<name>.psk] key",
        ),
        ("prot = 5683", "api.prot: unknown key 'prot' (did you mean 'port'?)"),
    ],
)
def test_bad_api_sections_name_the_key(site, tmp_path, body, message):
    write_credentials(tmp_path)
    with pytest.raises(ConfigError) as caught:
        site("[api]\n" + body + "\n")
    assert message in str(caught.value)


def test_two_clients_with_one_oscore_id_are_refused(site, tmp_path):
    path = write_credentials(tmp_path)
    path.write_text(path.read_text().replace('recipient_id = "03"', 'recipient_id = "02"'))
    with pytest.raises(ConfigError, match="OSCORE recipient_id 02 is also used by client 'scada'"):
        site(
            '[api]\ncredentials = "api-credentials.toml"\n[api.clients]\nscada = "control"\n'
            'dashboard = "read"\n'
        )
