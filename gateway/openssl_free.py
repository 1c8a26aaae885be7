"""The daemon without the system's OpenSSL: ``ssl``, ``_ssl`` and ``_hashlib`` are never loaded.

The gateway speaks no TLS: CoAP runs over UDP, DTLS through tinydtls, OSCORE and LoRaWAN
through cryptography, which carries its own OpenSSL. Yet asyncio and pymodbus import ``ssl``
and hashlib imports ``_hashlib`` at their import, which maps libssl and libcrypto: about 5 MB
of the daemon's 40 MB. CPython runs without them, as it is built on a system without
OpenSSL: asyncio then refuses TLS ("stdlib ssl module not available"), hashlib and hmac use
their built-in MD5, SHA-1, SHA-2, SHA-3 and BLAKE2. So the command line, before anything imports
asyncio, imports it with ``ssl`` unavailable and leaves in ``sys.modules`` a ``ssl`` that has
no TLS: pymodbus's TLS client builds an ``SSLContext`` as a default argument when imported,
and gets one whose every use says that TLS is not available here.

A site with a third-party driver that speaks TLS starts the daemon with ``GATEWAY_OPENSSL=1``
in its environment (a systemd drop-in's ``Environment=``), and the real ``ssl`` loads as usual.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, NoReturn

#: the environment variable that keeps the real ssl (for a third-party driver that needs TLS)
KEEP_OPENSSL = "GATEWAY_OPENSSL"

#: why TLS fails, in every error it raises
NO_TLS = (
    "TLS is not available in the gateway daemon: it runs without OpenSSL to save memory;"
    f" a driver that needs TLS: start the daemon with {KEEP_OPENSSL}=1"
)

#: modules that would map the system's libssl/libcrypto
OPENSSL_MODULES = ("ssl", "_ssl", "_hashlib")

#: what those libraries' file names start with, as /proc/<pid>/maps shows them
OPENSSL_LIBRARIES = ("libssl.so", "libcrypto.so")


class SSLError(OSError):
    """Never raised here: ssl's exceptions exist so that ``except ssl.SSLError`` (and its
    kinds, which pymodbus's TCP client imports by name) still work."""


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLZeroReturnError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    pass


class SSLContext:
    """Stands in for ``ssl.SSLContext``: it can be made (pymodbus makes one at its import) and
    refuses every use."""

    def __init__(self, protocol: int = 0, *args: object, **kwargs: object) -> None:
        self.protocol = protocol

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(f"ssl.SSLContext.{name}: {NO_TLS}")


class NoTLS(types.ModuleType):
    """The ``ssl`` module of a process without OpenSSL: constants and classes libraries touch
    at their import, and a clear error for everything else."""

    PROTOCOL_TLS_CLIENT = 16
    PROTOCOL_TLS_SERVER = 17
    SSLContext = SSLContext
    SSLError = SSLError
    SSLWantReadError = SSLWantReadError
    SSLWantWriteError = SSLWantWriteError
    SSLSyscallError = SSLSyscallError
    SSLEOFError = SSLEOFError
    SSLZeroReturnError = SSLZeroReturnError
    SSLCertVerificationError = CertificateError = SSLCertVerificationError
    HAS_TLS = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"ssl.{name}: {NO_TLS}")

    def create_default_context(self, *args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError(f"ssl.create_default_context: {NO_TLS}")


def start_openssl_free() -> bool:
    """Import asyncio without ``ssl`` and keep OpenSSL out of this process; False (and nothing
    done) when asyncio or one of the OpenSSL modules is imported already, as in a test run, or
    when ``GATEWAY_OPENSSL=1`` asks for OpenSSL."""
    if os.environ.get(KEEP_OPENSSL) == "1":
        return False
    if "asyncio" in sys.modules or any(name in sys.modules for name in OPENSSL_MODULES):
        return False
    blocked = OPENSSL_MODULES if builtin_hashes() else ("ssl", "_ssl")
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import then raises ImportError
    import asyncio  # noqa: F401  # every asyncio module binds ssl = None: TLS refused

    sys.modules["ssl"] = NoTLS("ssl", __doc__)
    return True


def builtin_hashes() -> bool:
    """Whether hashlib has its own MD5, SHA-1, SHA-2 and BLAKE2 without OpenSSL (aiocoap
    takes ETags from SHA-1, rule files are told apart by SHA-256). A build may leave them
    out, and then hashlib keeps ``_hashlib``."""

    def found(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    sha2 = found("_sha2") or (found("_sha256") and found("_sha512"))  # one module from 3.12
    return sha2 and all(found(name) for name in ("_md5", "_sha1", "_blake2"))


def openssl_loaded() -> bool:
    """Whether the real ``ssl`` or ``_hashlib`` is in this process."""
    return any(
        module is not None and not isinstance(module, NoTLS)
        for module in (sys.modules.get(name) for name in OPENSSL_MODULES)
    )


def mapped_openssl_libraries(pid: int | str = "self") -> list[str]:
    """The system's OpenSSL libraries mapped into process ``pid`` (cryptography's own build of
    OpenSSL is inside its extension module and does not count)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8") as maps:
        paths = {line.split()[-1] for line in maps if any(lib in line for lib in OPENSSL_LIBRARIES)}
    return sorted(paths)
