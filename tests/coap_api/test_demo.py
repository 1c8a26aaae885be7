"""The demo's API set-up: next free port, and keys the gateway and aiocoap-client both accept."""

from __future__ import annotations

import asyncio
import json
import socket

from gateway.coap import api_demo
from gateway.coap.credentials import load_credentials

from .helpers import free_port


def test_demo_takes_the_next_port_when_the_first_is_taken():
    first = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", first))
        assert api_demo.pick_port(first) > first
    assert api_demo.pick_port(first) == first


def test_demo_keys_match_on_both_sides_and_stay_across_runs(tmp_path):
    gateway_file, client_file = api_demo.write_demo_keys(tmp_path, 5690)
    entry = load_credentials(gateway_file).entry(api_demo.DEMO_CLIENT)
    assert entry is not None and entry.oscore is not None
    client_map = json.loads(client_file.read_text())
    basedir = client_map["coap://127.0.0.1:5690/*"]["oscore"]["basedir"]
    settings = json.loads((tmp_path / basedir / "settings.json").read_text())
    assert bytes.fromhex(settings["secret_hex"]) == entry.oscore.master_secret
    assert bytes.fromhex(settings["sender-id_hex"]) == entry.oscore.recipient_id
    api_demo.write_demo_keys(tmp_path, 5691)
    again = load_credentials(gateway_file).entry(api_demo.DEMO_CLIENT)
    assert again is not None and again.oscore == entry.oscore


def test_demo_peer_announces_its_port(tmp_path):
    async def scenario():
        async with api_demo.api_server(tmp_path) as values:
            return values

    values = asyncio.run(scenario())
    assert f"coap://127.0.0.1:{values['api_port']}" in values["announce"]
    assert values["api_credentials"].endswith("api-credentials.toml")
