"""An API-enabled site with one simulated street light, keys in a separate credentials file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_config
from tests.conftest import write_site

from .helpers import free_port, write_credentials


def api_site_body(
    port: int,
    *,
    public: str = '["discovery", "readings", "points", "health"]',
    extra: str = "",
    interval: str = "50ms",
    clients: str = "",
) -> str:
    return f"""
[[devices]]
name = "lamp"
driver = "simulated"
interval = "{interval}"
[devices.options]
profile = "streetlight"

[api]
bind = "127.0.0.1"
port = {port}
credentials = "api-credentials.toml"
public = {public}
{extra}
[api.clients]
scada = "control"
dashboard = "read"
{clients}
"""


@pytest.fixture
def api_site(tmp_path: Path):
    """api_site(**kw) -> (GatewayConfig, port, tmp_path) for a site serving the CoAP API."""

    def make(**kwargs: object) -> tuple[GatewayConfig, int, Path]:
        write_credentials(tmp_path, psk=bool(kwargs.pop("psk", False)))
        port = free_port()
        return load_config(write_site(tmp_path, api_site_body(port, **kwargs))), port, tmp_path

    return make
