"""Whether aiocoap's DTLS transports can run here: the API's DTLS server and a dtls-psk uplink
both need the DTLSSocket package (tinydtls), which builds from source and may be missing."""

from __future__ import annotations


def dtls_unavailable() -> str | None:
    """Why aiocoap's DTLS transports (tinydtls client and server) cannot run here, or None when
    they can."""
    try:
        import DTLSSocket.dtls  # noqa: F401
    except ImportError:
        return (
            "DTLS needs the DTLSSocket package (pip install DTLSSocket; building it needs "
            "autoconf and automake), or use OSCORE instead"
        )
    return None
