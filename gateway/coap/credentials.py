"""The CoAP credentials file: OSCORE keys, DTLS pre-shared keys and platform tokens.

Kept apart from the site config (mode 0600, never logged); shared by the uplink and the API.

File format (TOML), one table per named entry; an entry holds any of the three kinds::

    [cloud.oscore]                     # OSCORE (RFC 8613) security context
    sender_id = "01"                   # hex; our id when we send
    recipient_id = "02"                # hex; the peer's id
    master_secret = "0102...10"        # hex, 16+ bytes
    master_salt = "9e7ca92223786340"   # hex, optional
    id_context = ""                    # hex, optional
    algorithm = "AES-CCM-16-64-128"    # optional (aiocoap's name of the AEAD)

    [cloud.psk]                        # DTLS-PSK (coaps://)
    identity = "gateway-1"
    key = "secret text"                # or key_hex = "..."

    [thingsboard]
    token = "A1_TEST_TOKEN"            # a platform access token
    [thingsboard.devices]              # optional: ThingsBoard, one access token per device
    lamp-1 = "LAMP_1_TOKEN"

API: ``load_credentials(path) -> Credentials`` (raises ``ConfigError`` naming file, line and
key); ``Credentials.entry(name) -> CredentialEntry | None``; ``oscore_context(keys,
state_dir)`` builds an aiocoap security context whose sequence numbers live in ``state_dir``;
``StateLock(state_dir)`` holds that directory for one process, before or with its context.
Secret fields are excluded from ``repr`` so they cannot reach a log line by accident.
"""

from __future__ import annotations

import fcntl
import importlib
import inspect
import json
import logging
import os
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomicfile import sync_directory, write_atomically
from ..lazyimport import defer_import, deferred_imports
from ..options import Table
from ..problems import ConfigError, KeyLocator, Problems, read_text

log = logging.getLogger("gateway.coap.credentials")

OSCORE_ALGORITHMS = (
    "AES-CCM-16-64-128",
    "AES-CCM-16-128-128",
    "AES-CCM-64-64-128",
    "AES-CCM-64-128-128",
    "A128GCM",
    "A256GCM",
    "ChaCha20/Poly1305",
)


@dataclass(frozen=True, slots=True)
class OscoreKeys:
    """An entry's OSCORE (RFC 8613) keying material: the ids of both ends, secret and salt."""

    sender_id: bytes
    recipient_id: bytes
    master_secret: bytes = field(repr=False)
    master_salt: bytes = field(default=b"", repr=False)
    id_context: bytes | None = None
    algorithm: str = "AES-CCM-16-64-128"


@dataclass(frozen=True, slots=True)
class PskKeys:
    """An entry's DTLS pre-shared key and the identity it is sent under."""

    identity: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CredentialEntry:
    """One named entry of the credentials file: any of its OSCORE keys, DTLS key and
    platform token (a peer or an upstream names the entry it uses)."""

    name: str
    oscore: OscoreKeys | None = None
    psk: PskKeys | None = None
    token: str | None = field(default=None, repr=False)
    #: ThingsBoard: one access token per device (``[<entry>.devices]``, device = "token")
    device_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A whole credentials file, read and checked: its entries by name."""

    path: Path
    entries: Mapping[str, CredentialEntry]

    def entry(self, name: str) -> CredentialEntry | None:
        return self.entries.get(name)


def load_credentials(path: Path | str) -> Credentials:
    """Read and validate the credentials file; raises ConfigError listing every problem."""
    path = Path(path)
    problems = Problems(str(path))
    text = read_text(path, problems)
    if text is None:
        raise ConfigError(problems.items)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message can quote the offending line, which may hold a key.
        problems.add("", f"malformed TOML ({str(exc).split('(', 1)[-1].rstrip(')')})")
        raise ConfigError(problems.items) from None
    problems.locate = KeyLocator(text)
    _warn_if_readable_by_others(path)
    entries: dict[str, CredentialEntry] = {}
    for name, body in raw.items():
        table = Table(body, problems, name)
        oscore = _parse_oscore(table.table("oscore")) if table.has("oscore") else None
        psk = _parse_psk(table.table("psk")) if table.has("psk") else None
        token = table.str("token", None)
        devices = _parse_device_tokens(table.table("devices")) if table.has("devices") else {}
        table.finish()
        if oscore is None and psk is None and token is None and isinstance(body, dict):
            problems.add(name, "entry has none of oscore, psk or token")
        entries[name] = CredentialEntry(name, oscore, psk, token, devices)
    problems.raise_if_any()
    return Credentials(path, entries)


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWOTH):
        log.warning(
            'event=credentials_file_too_open path=%s mode=%o advice="chmod 600"', path, stat.S_IMODE(mode)
        )


def _hex(table: Table, name: str, required: bool, min_len: int = 0) -> bytes | None:
    text = table.str(name) if required else table.str(name, None)
    if not isinstance(text, str):
        return None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        # Never echo the text: it may be a secret.
        table.error(name, 'must be hexadecimal digits (e.g. "0a1b")')
        return None
    if len(value) < min_len:
        table.error(name, f"must be at least {min_len} bytes ({2 * min_len} hex digits)")
        return None
    return value


def _parse_oscore(table: Table) -> OscoreKeys | None:
    sender = _hex(table, "sender_id", True)
    recipient = _hex(table, "recipient_id", True)
    secret = _hex(table, "master_secret", True, min_len=16)
    salt = _hex(table, "master_salt", False)
    id_context = _hex(table, "id_context", False)
    algorithm = table.str("algorithm", "AES-CCM-16-64-128", choices=OSCORE_ALGORITHMS)
    table.finish()
    for key, value in (("sender_id", sender), ("recipient_id", recipient)):
        if value is not None and len(value) > 7:
            table.error(key, "must be at most 7 bytes")
            return None
    if sender is None or recipient is None or secret is None:
        return None
    return OscoreKeys(sender, recipient, secret, salt or b"", id_context, algorithm)


def _parse_device_tokens(table: Table) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for device in list(table.raw):
        token = table.str(device)
        if isinstance(token, str):
            if not token or "/" in token:
                table.error(device, "must be the device's access token (no '/')")
            else:
                tokens[device] = token
    table.finish()
    return tokens


def _parse_psk(table: Table) -> PskKeys | None:
    identity = table.str("identity")
    key_text = table.str("key", None)
    key_hex = _hex(table, "key_hex", False)
    table.finish()
    if key_text is not None and key_hex is not None:
        table.error("key", "set key or key_hex, not both")
        return None
    key = key_hex if key_hex is not None else key_text.encode() if isinstance(key_text, str) else None
    if key is None:
        table.error("key", "is required (or key_hex)")
        return None
    if not isinstance(identity, str):
        return None
    return PskKeys(identity.encode(), key)


class StateLock:
    """An exclusive ``flock`` on ``state_dir/lock``: one process per OSCORE state directory.

    The same lock file and kind of lock as aiocoap's own contexts take (through filelock), so
    a gateway and an aiocoap tool on one directory still exclude each other; taken without
    importing filelock (about 1.5 MB). ``lock_file`` and ``release()`` are what aiocoap's
    context uses of its lock when it saves its state and lets go."""

    def __init__(self, state_dir: Path):
        self.lock_file = str(state_dir / "lock")
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TimeoutError(f"{self.lock_file} is held by another process") from None
        self._fd: int | None = fd

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lock_state_dir(state_dir: Path) -> StateLock:
    """Create ``state_dir`` (mode 0700) and lock it; ``TimeoutError`` when another process has it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    return StateLock(state_dir)


def read_sequence_file(state_dir: Path) -> tuple[int, Any] | None:
    """``state_dir``'s persisted next sender sequence number and replay window ("unknown" or
    aiocoap's persisted window), or None before the first save. Raises ValueError, KeyError
    or OSError on a broken file; the API calls it at start-up so that is found there, before
    the context that loads it is built on the first protected request."""
    try:
        sequence = json.loads((state_dir / SEQUENCE_FILE).read_text())
    except FileNotFoundError:
        return None
    next_to_send = int(sequence["next-to-send"])
    received = sequence["received"]
    if received != "unknown" and not (
        isinstance(received, dict) and {"index", "bitfield"} <= received.keys()
    ):
        raise ValueError("sequence.json: 'received' is neither \"unknown\" nor a replay window")
    return next_to_send, received


#: where an OSCORE context keeps its next sequence number and replay window (aiocoap's name)
SEQUENCE_FILE = "sequence.json"
#: what aiocoap.oscore and its site wrapper import at their top for code the gateway replaces
#: or never runs, each loaded on its first use: tempfile for FilesystemSecurityContext._store,
#: which _Context replaces (with shutil, bz2 and lzma: about 0.6 MB), and uuid for the
#: wrapper's EDHOC credentials (with platform: about 0.3 MB). Only while they import.
_OSCORE_DEFERS: dict[str, tuple[str, ...]] = {"tempfile": (), "uuid": ()}


def import_oscore(module: str = "aiocoap.oscore") -> Any:
    """aiocoap's ``module`` (aiocoap.oscore or aiocoap.oscore_sitewrapper) without what it
    imports only for code the gateway does not run."""
    # FilesystemSecurityContext.__init__, which _Context replaces, is filelock's only user.
    defer_import("filelock")
    with deferred_imports(_OSCORE_DEFERS):
        return importlib.import_module(module)


def oscore_context(keys: OscoreKeys, state_dir: Path, lock: StateLock | None = None) -> Any:
    """An aiocoap OSCORE security context for ``keys``.

    Key material stays in memory; only the sender sequence number and replay window are
    persisted, in ``state_dir/sequence.json`` (OSCORE must never reuse a sequence number
    with the same keys, so this directory must survive restarts and must not be copied).
    ``lock``: the directory's lock when the caller took it already (``lock_state_dir``); the
    context keeps it and releases it when it saves its state.
    """
    import_oscore()
    from aiocoap import oscore  # imported just now, without what it would not use

    class _Context(oscore.FilesystemSecurityContext):
        lockfile: StateLock | None

        def __init__(self, basedir: str, state_lock: StateLock):
            # aiocoap's constructor with the lock taken by StateLock instead of filelock;
            # tests/coap_api/test_oscore_state.py fails when aiocoap's changes
            self.basedir = basedir
            self.lockfile = state_lock
            self.echo_recovery = secrets.token_bytes(8)
            try:
                self._load()
            except KeyError as k:
                state_lock.release()
                self.lockfile = None
                raise self.LoadError(f"Configuration key missing: {k.args[0]}") from None
            except BaseException:
                state_lock.release()
                self.lockfile = None
                raise
            # aiocoap's own defaults, read from its signature rather than copied
            defaults = inspect.signature(oscore.FilesystemSecurityContext.__init__).parameters
            self.sequence_number_chunksize_start = defaults["sequence_number_chunksize_start"].default
            self.sequence_number_chunksize_limit = defaults["sequence_number_chunksize_limit"].default
            self.sequence_number_chunksize = self.sequence_number_chunksize_start
            self.sequence_number_persisted = self.sender_sequence_number

        def _store(self) -> None:
            # aiocoap's, with the rename made durable too (a sequence number OSCORE handed
            # out must never come back after a power cut), and without tempfile;
            # tests/coap_api/test_oscore_state.py fails when aiocoap's changes
            data: dict[str, Any] = {"next-to-send": self.sequence_number_persisted}
            if not self.replay_window_persisted:
                data["received"] = "unknown"
            else:
                data["received"] = self.recipient_replay_window.persist()
            write_atomically(Path(self.basedir) / SEQUENCE_FILE, json.dumps(data))
            sync_directory(Path(self.basedir))

        def _load(self) -> None:
            self.alg_aead = oscore.algorithms[keys.algorithm]
            self.hashfun = oscore.hashfunctions[oscore.DEFAULT_HASHFUNCTION]
            self.sender_id = keys.sender_id
            self.recipient_id = keys.recipient_id
            self.id_context = keys.id_context
            self.derive_keys(keys.master_salt, keys.master_secret)
            self.recipient_replay_window = oscore.ReplayWindow(
                oscore.DEFAULT_WINDOWSIZE, self._replay_window_changed
            )
            persisted = read_sequence_file(Path(self.basedir))
            if persisted is None:
                self.sender_sequence_number = 0
                self.recipient_replay_window.initialize_empty()
                self.replay_window_persisted = True
                return
            self.sender_sequence_number, received = persisted
            if received == "unknown":
                self.replay_window_persisted = False
            else:
                self.recipient_replay_window.initialize_from_persisted(received)
                self.replay_window_persisted = True

    if lock is None:
        lock = lock_state_dir(state_dir)
    return _Context(str(state_dir), lock)
