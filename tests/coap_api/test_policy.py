"""Who may do what, decided from the claims aiocoap attaches to a request (no sockets)."""

from __future__ import annotations

from gateway.coap.api_config import ApiClient, ApiConfig
from gateway.coap.credentials import CredentialEntry, OscoreKeys, PskKeys
from gateway.coap.security import Policy

KEYS = OscoreKeys(b"\x01", b"\x02", b"k" * 16)


def policy(public: set[str]) -> Policy:
    clients = {
        "scada": ApiClient("scada", "control", CredentialEntry("scada", oscore=KEYS)),
        "dashboard": ApiClient("dashboard", "read", CredentialEntry("dashboard", oscore=KEYS)),
        "field": ApiClient("field", "control", CredentialEntry("field", psk=PskKeys(b"id", b"k"))),
    }
    return Policy(ApiConfig(public=frozenset(public), clients=clients))


def test_anonymous_reads_only_public_groups_and_never_writes():
    p = policy({"readings", "points"})
    assert p.may_read("readings", []).allowed
    assert not p.may_read("health", []).allowed
    refused = p.may_write("points", [])
    assert not refused.allowed and refused.code == "unauthorized"


def test_claims_of_unknown_or_foreign_credentials_count_as_anonymous():
    p = policy(set())
    for claims in ([":stranger"], ["scada"], [object()], None):
        assert p.client_of(claims) is None
        assert p.may_write("points", claims).code == "unauthorized"


def test_read_clients_are_forbidden_to_write_and_control_clients_may():
    p = policy(set())
    assert p.may_read("overrides", [":dashboard"]).allowed
    assert p.may_write("points", [":dashboard"]).code == "forbidden"
    assert p.may_write("overrides", [":scada"]).allowed
    # a client holding both kinds of keys shows up under a second, DTLS-only map key
    assert p.may_write("points", [":field:dtls"]).allowed
