"""Hostile codec files (The Things Stack device-repository ``codec.yaml``): every text is a codec
file or a CodecError; its examples run against the real script or fail as an outcome."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given

from drivers.lorawan.codecs import CodecError, JavaScriptCodec, flatten
from drivers.lorawan.codecs.repository import _compare, _run_downlink, _run_uplink, parse_codec_yaml

from .mutate import FUZZ, HOSTILE_TEXT, fuzz_text

EXAMPLES = Path(__file__).resolve().parents[2] / "drivers" / "lorawan" / "examples"
CODEC_PATH = EXAMPLES / "water-meter.yaml"
SEEDS = [
    CODEC_PATH.read_text(encoding="utf-8"),
    "uplinkDecoder:\n  fileName: water-meter.js\n  examples:\n    - input: {fPort: 1, bytes: [0, 1, 2, 3, 4, 5, 6, 7]}\n"
    "      output: {data: {volume: 0.066, nested: {a: [1, 2, {b: true}]}}}\n",
    "uplinkDecoder: {fileName: ../examples/water-meter.js}\ndownlinkEncoder: {fileName: water-meter.js, "
    "examples: [{input: {data: {report_interval: 1440}}, output: {bytes: [5, 160], fPort: 10}}]}\n",
]
YAML_HOSTILE = HOSTILE_TEXT + (
    "&a [*a]",
    "*a",
    "&a",
    "!!python/object:os.system",
    "!!binary",
    "? ",
    "- ",
    ": ",
    "\n  - ",
    "0x" + "f" * 40,
    "1" + "0" * 400,
    ".inf",
    ".nan",
    "~",
    "---\n",
    "...\n",
    "[" * 200,
    "{a: " * 120,
    "<<: *a",
    "%YAML 1.1\n",
    "\t",
    "fileName: \u0000x",
)
#: the real script, compiled once: the codec file is what is fuzzed here, not the JavaScript
SCRIPT = JavaScriptCodec((EXAMPLES / "water-meter.js").read_text(encoding="utf-8"), "water-meter.js")


@FUZZ
@given(fuzz_text(SEEDS, YAML_HOSTILE))
def test_fuzz_codec_file_is_a_codec_file_or_a_codec_error(text: str) -> None:
    try:
        codec_file = parse_codec_yaml(text, CODEC_PATH)
    except CodecError:
        return
    for example in codec_file.examples:
        data = example.output.get("data")  # what example_fields reads to declare points
        if isinstance(data, dict):
            try:
                flatten(data)
            except CodecError:
                pass
        # What `gateway codecs test` does with each example (run_examples catches these).
        try:
            got = _run_uplink(SCRIPT, example) if example.kind == "uplink" else _run_downlink(SCRIPT, example)
        except (CodecError, KeyError, TypeError, ValueError):
            continue
        _compare(example.output, got)
