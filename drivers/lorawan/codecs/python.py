"""Plain Python codecs: a ``.py`` file defining ``decode_uplink(input)`` and optionally
``encode_downlink(input)`` with the same input and output shapes as the JavaScript ones.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import CodecError, DecodeResult, Downlink, tts_downlink, tts_result


class PythonCodec:
    """Runs trusted code in-process: it is written by the site's own people, so no sandbox."""

    def __init__(self, path: Path):
        self.name = path.name
        spec = importlib.util.spec_from_file_location(f"gateway_codec_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CodecError("compile", f"{path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - any import-time fault is a codec fault
            raise CodecError("compile", f"codec {path} fails to load: {exc}") from None
        self._decode = getattr(module, "decode_uplink", None)
        self._encode = getattr(module, "encode_downlink", None)
        if not callable(self._decode):
            raise CodecError("compile", f"codec {path} defines no decode_uplink(input)")

    def decode_raw(self, fport: int, payload: bytes) -> Any:
        try:
            return self._decode({"bytes": list(payload), "fPort": fport})  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001
            raise CodecError("threw", f"codec {self.name} raised {type(exc).__name__}: {exc}") from None

    def decode_uplink(self, fport: int, payload: bytes) -> DecodeResult:
        raw = self.decode_raw(fport, payload)
        if isinstance(raw, Mapping) and not ({"data", "errors", "warnings"} & set(raw)):
            raw = {"data": raw}  # a bare dict of fields is accepted too
        return tts_result(raw, self.name)

    def encode_downlink(self, data: Mapping[str, Any]) -> Downlink:
        if not callable(self._encode):
            raise CodecError("codec_errors", f"codec {self.name} defines no encode_downlink(input)")
        try:
            raw = self._encode({"data": dict(data)})
        except Exception as exc:  # noqa: BLE001
            raise CodecError("threw", f"codec {self.name} raised {type(exc).__name__}: {exc}") from None
        return tts_downlink(raw, self.name)
