"""The API's OSCORE state directories are locked and checked at start-up, before any context is
built: a second gateway on the data dir, or a broken sequence file, stops the start as before,
and the lock is the one aiocoap's own tools take (flock on ``lock``)."""

from __future__ import annotations

import hashlib
import inspect
import json
import textwrap

import filelock
import pytest
from aiocoap import oscore

from gateway.coap.security import OSCORE_STATE_DIR, SecurityError, ServerCredentials
from tests.fresh import run_fresh


def test_a_second_gateway_on_the_data_dir_is_refused_at_start(api_site):
    config, _, _ = api_site()
    api, data_dir = config.section("api"), config.site.data_dir
    first = ServerCredentials(api, data_dir)
    try:
        assert first.has_oscore
        with pytest.raises(SecurityError, match="locked by another process"):
            ServerCredentials(api, data_dir)
        # aiocoap's own lock on the same directory (what aiocoap-client or -fileserver take)
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(data_dir / OSCORE_STATE_DIR / "scada" / "lock")).acquire(timeout=0.01)
    finally:
        first.close()
    ServerCredentials(api, data_dir).close()  # released on close


def test_a_broken_sequence_file_is_reported_at_start(api_site):
    config, _, _ = api_site()
    api, data_dir = config.section("api"), config.site.data_dir
    state = data_dir / OSCORE_STATE_DIR / "scada"
    state.mkdir(parents=True)
    (state / "sequence.json").write_text(json.dumps({"received": "unknown"}))
    with pytest.raises(SecurityError, match="'scada' cannot be used"):
        ServerCredentials(api, data_dir)
    (state / "sequence.json").write_text(json.dumps({"next-to-send": 5, "received": "unknown"}))
    ServerCredentials(api, data_dir).close()  # and the failed start let go of its locks


def test_contexts_built_on_demand_keep_the_sequence_numbers(api_site):
    config, _, _ = api_site()
    api, data_dir = config.section("api"), config.site.data_dir
    credentials = ServerCredentials(api, data_dir)
    contexts = [c for c in credentials.oscore_map().values() if hasattr(c, "sender_sequence_number")]
    assert len(contexts) == len(api.oscore_clients)
    for context in contexts:
        context.sender_sequence_number = 41
    credentials.close()
    state_dir = data_dir / OSCORE_STATE_DIR / "scada"
    state = json.loads((state_dir / "sequence.json").read_text())
    assert state["next-to-send"] >= 41
    assert [p.name for p in state_dir.iterdir() if p.name.startswith(".")] == []  # no temp file left
    again = ServerCredentials(api, data_dir)
    try:
        scada = again.oscore_map()[":scada"]
        assert scada.sender_sequence_number >= 41
    finally:
        again.close()


EXIT_WITHOUT_CLOSE = """
from gateway.config import load_config
from gateway.coap.security import ServerCredentials
credentials = ServerCredentials(load_config(CONFIG).section("api"), load_config(CONFIG).site.data_dir)
scada = credentials.oscore_map()[":scada"]
scada.sender_sequence_number = 77  # handed out, then the process ends without close()
"""


def test_sequence_numbers_are_stored_when_the_process_ends_without_closing(api_site):
    config, _, site_dir = api_site()
    probe = EXIT_WITHOUT_CLOSE.replace("CONFIG", repr(str(site_dir / "gateway.toml")))
    run = run_fresh(textwrap.dedent(probe))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    state = config.site.data_dir / OSCORE_STATE_DIR / "scada" / "sequence.json"
    # aiocoap's context stores as it is finalised, while the interpreter shuts down
    assert json.loads(state.read_text())["next-to-send"] >= 77


#: aiocoap's FilesystemSecurityContext.__init__ (0.4.17), which _Context in
#: gateway/coap/credentials.py repeats with StateLock in place of filelock
AIOCOAP_CONSTRUCTOR_SHA256 = "2930c919cc0c79b19ac9cbef847f302f75b086dc909eedd147551669fa8dce89"


#: aiocoap's FilesystemSecurityContext._store (0.4.17), which _Context replaces with the same
#: file contents written by write_atomically and the directory fsynced
AIOCOAP_STORE_SHA256 = "d8b1add62d1818bda6de09c6d6d601884ef58f95f7311782884ab21e3fc13417"


def test_the_context_stores_what_the_installed_aiocoap_stores():
    source = inspect.getsource(oscore.FilesystemSecurityContext._store)
    assert hashlib.sha256(source.encode()).hexdigest() == AIOCOAP_STORE_SHA256, (
        "aiocoap's FilesystemSecurityContext._store changed: compare it with _Context._store"
        " in gateway/coap/credentials.py, then record the new hash here"
    )


def test_the_context_repeats_the_constructor_of_the_installed_aiocoap():
    source = inspect.getsource(oscore.FilesystemSecurityContext.__init__)
    assert hashlib.sha256(source.encode()).hexdigest() == AIOCOAP_CONSTRUCTOR_SHA256, (
        "aiocoap's FilesystemSecurityContext.__init__ changed: compare it with _Context.__init__"
        " in gateway/coap/credentials.py, then record the new hash here"
    )
