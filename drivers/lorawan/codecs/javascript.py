"""JavaScript payload codecs in The Things Stack device-repository format, run in QuickJS
with a per-call time budget and a per-codec memory budget; each codec is compiled once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import CodecError, DecodeResult, Downlink, tts_downlink, tts_result

DEFAULT_TIME_BUDGET_S = 0.1
DEFAULT_MEMORY_BUDGET = 16 * 1024 * 1024
#: an FPort is one byte (0: MAC commands, 1..223: the application, 224..255: reserved)
MAX_FPORT = 255

# The codec sees exactly The Things Stack's input objects; results cross the boundary as JSON
# text so no engine object escapes into Python.
_GLUE = """
function __gw_decode(hex, fPort) {
  var bytes = [];
  for (var i = 0; i < hex.length; i += 2) bytes.push(parseInt(hex.substr(i, 2), 16));
  if (typeof decodeUplink !== 'function') throw new Error('codec has no decodeUplink');
  return JSON.stringify(decodeUplink({bytes: bytes, fPort: fPort}));
}
function __gw_encode(json) {
  if (typeof encodeDownlink !== 'function') throw new Error('codec has no encodeDownlink');
  return JSON.stringify(encodeDownlink({data: JSON.parse(json)}));
}
"""


class JavaScriptCodec:
    def __init__(
        self,
        source: str,
        name: str,
        time_budget: float = DEFAULT_TIME_BUDGET_S,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ):
        self.name = name
        self.source = source
        self.time_budget = time_budget
        self.memory_budget = memory_budget
        self.compiles = 0
        self._compile()

    def _compile(self) -> None:
        # Imported here: sites with only Cayenne or Python codecs never load the JS engine.
        import quickjs

        self._js_error = quickjs.JSException
        context = quickjs.Context()
        context.set_memory_limit(self.memory_budget)
        context.set_time_limit(max(self.time_budget * 10, 1.0))  # top-level code may build tables
        try:
            context.eval(self.source)
            context.eval(_GLUE)
        except quickjs.JSException as exc:
            raise CodecError("compile", f"codec {self.name} does not compile: {_first_line(exc)}") from None
        context.set_time_limit(self.time_budget)
        self._context = context
        self._decode = context.get("__gw_decode")
        self._encode = context.get("__gw_encode")
        self.compiles += 1

    def _call(self, function: Any, *args: Any) -> Any:
        try:
            text = function(*args)
        except self._js_error as exc:
            message = _first_line(exc)
            if "interrupted" in message:
                self._compile()  # a stopped codec may have left globals half-updated
                raise CodecError(
                    "timeout", f"codec {self.name} ran past its {self.time_budget * 1000:.0f} ms budget"
                ) from None
            if "out of memory" in message:
                self._compile()
                raise CodecError(
                    "memory", f"codec {self.name} exceeded its {self.memory_budget // 1024} KiB budget"
                ) from None
            raise CodecError("threw", f"codec {self.name} threw: {message}") from None
        except (MemoryError, OverflowError) as exc:
            self._compile()
            raise CodecError("memory", f"codec {self.name}: {exc}") from None
        if not isinstance(text, str):
            raise CodecError("junk", f"codec {self.name} returned nothing")
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the decoder goes
            raise CodecError("junk", f"codec {self.name} returned text that is not JSON") from None

    def decode_uplink(self, fport: int, payload: bytes) -> DecodeResult:
        return tts_result(self._call(self._decode, payload.hex(), self._fport(fport)), self.name)

    def decode_raw(self, fport: int, payload: bytes) -> Any:
        """The untouched decodeUplink result (for ``gateway codecs test``)."""
        return self._call(self._decode, payload.hex(), self._fport(fport))

    def _fport(self, fport: int) -> int:
        # Checked before QuickJS sees it: the binding crashes the whole process (SIGSEGV) on
        # an integer too large for a double, as a codec file's example can hold.
        if isinstance(fport, bool) or not isinstance(fport, int) or not 0 <= fport <= MAX_FPORT:
            raise CodecError(
                "fport", f"codec {self.name}: FPort must be 0..{MAX_FPORT}, got {str(fport)[:20]}"
            )
        return fport

    def encode_downlink(self, data: Mapping[str, Any]) -> Downlink:
        return tts_downlink(self._call(self._encode, json.dumps(dict(data))), self.name)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
