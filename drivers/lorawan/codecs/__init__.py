"""Payload codecs of the LoRaWAN driver: Cayenne LPP built in, JavaScript (The Things Stack
format, sandboxed) and plain Python, loaded by name or file through ``load_codec``.
"""

from .base import Codec, CodecError, DecodeResult, Downlink, flatten
from .cayenne import CayenneLpp
from .javascript import JavaScriptCodec
from .python import PythonCodec
from .repository import example_fields, load_codec, read_codec_yaml, run_examples

__all__ = [
    "Codec",
    "CodecError",
    "DecodeResult",
    "Downlink",
    "flatten",
    "CayenneLpp",
    "JavaScriptCodec",
    "PythonCodec",
    "example_fields",
    "load_codec",
    "read_codec_yaml",
    "run_examples",
]
