"""Named CoAP constants the gateway uses: content formats, response code classes, defaults.

aiocoap has its own enums; these are the numbers as they appear on the wire and in docs,
so sans-IO code and config validation never need aiocoap.
"""

from __future__ import annotations

#: CoAP default ports (RFC 7252, RFC 8323)
COAP_PORT = 5683
COAPS_PORT = 5684

# Content-Format registry numbers (RFC 7252 §12.3, RFC 8428 §12.3)
CONTENT_FORMAT_TEXT = 0
CONTENT_FORMAT_LINK_FORMAT = 40
CONTENT_FORMAT_JSON = 50
CONTENT_FORMAT_CBOR = 60
CONTENT_FORMAT_SENML_JSON = 110
CONTENT_FORMAT_SENML_CBOR = 112

# Response codes as (class, detail) -> the dotted form used in logs: "2.04".
CODE_CREATED = (2, 1)
CODE_DELETED = (2, 2)
CODE_VALID = (2, 3)
CODE_CHANGED = (2, 4)
CODE_CONTENT = (2, 5)
CODE_BAD_REQUEST = (4, 0)
CODE_UNAUTHORIZED = (4, 1)
CODE_FORBIDDEN = (4, 3)
CODE_NOT_FOUND = (4, 4)
CODE_METHOD_NOT_ALLOWED = (4, 5)
CODE_REQUEST_ENTITY_TOO_LARGE = (4, 13)
CODE_UNSUPPORTED_CONTENT_FORMAT = (4, 15)
CODE_TOO_MANY_REQUESTS = (4, 29)
CODE_INTERNAL_SERVER_ERROR = (5, 0)
CODE_SERVICE_UNAVAILABLE = (5, 3)
CODE_GATEWAY_TIMEOUT = (5, 4)

#: Max-Age when a response carries none (RFC 7252 §5.10.5)
DEFAULT_MAX_AGE = 60

#: The largest block size (2**(4+SZX)); the uplink switches to Block1 above this payload size.
MAX_BLOCK_SIZE = 1024


def code_class(code: int) -> int:
    """The class digit of a raw 8-bit CoAP code (0x44 -> 2)."""
    return code >> 5


def code_text(code: int) -> str:
    """A raw 8-bit CoAP code in dotted form (0x44 -> '2.04')."""
    return f"{code >> 5}.{code & 0x1F:02d}"


def raw_code(code: tuple[int, int]) -> int:
    return (code[0] << 5) | code[1]
