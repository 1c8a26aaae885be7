"""Payload codecs: Cayenne LPP, the JavaScript sandbox's budgets, Python codecs, the examples runner."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from drivers.lorawan.codecs import CayenneLpp, CodecError, JavaScriptCodec, PythonCodec, flatten, load_codec
from drivers.lorawan.codecs.cayenne import encode_uplink
from tests.fresh import run_fresh

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases" / "lorawan"


def test_cayenne_lpp_decodes_the_reference_example():
    # Example frame from the Cayenne LPP documentation: two temperatures and an accelerometer.
    payload = bytes.fromhex("03670110056700FF")
    assert CayenneLpp().decode_uplink(1, payload).data == {"temperature_3": 27.2, "temperature_5": 25.5}
    accel = bytes.fromhex("067104D2FB2E0000")
    assert CayenneLpp().decode_uplink(1, accel).data == {
        "accelerometer_6": {"x": 1.234, "y": -1.234, "z": 0.0}
    }
    gps = bytes.fromhex("018806765ff2960a0003e8")
    assert CayenneLpp().decode_uplink(1, gps).data == {
        "gps_1": {"latitude": 42.3519, "longitude": -87.9094, "altitude": 10.0}
    }


def test_cayenne_round_trip_and_refusals():
    fields = {"presence_1": 1, "temperature_2": -4.5, "relative_humidity_3": 55.5, "analog_in_4": 3.3}
    assert CayenneLpp().decode_uplink(1, encode_uplink(fields)).data == fields
    with pytest.raises(CodecError, match="truncated"):
        CayenneLpp().decode_uplink(1, bytes.fromhex("0367"))
    with pytest.raises(CodecError, match="unknown type"):
        CayenneLpp().decode_uplink(1, bytes.fromhex("01FE00"))
    assert CayenneLpp().encode_downlink({"digital_out_4": True}).payload == bytes([4, 1, 1])
    with pytest.raises(CodecError):
        CayenneLpp().encode_downlink({"level": 3})


def test_flatten_rejects_junk():
    assert flatten({"a": {"b": [1, 2]}, "c": None}) == {"a_b_0": 1, "a_b_1": 2}
    with pytest.raises(CodecError):
        flatten({"x": float("nan")})
    with pytest.raises(CodecError):
        flatten({f"f{i}": i for i in range(500)})


def test_js_codec_decodes_and_encodes():
    codec = load_codec("examples/water-meter.yaml", ROOT / "drivers" / "lorawan")
    result = codec.decode_uplink(1, bytes.fromhex("0001E24001F4005A"))
    assert result.data == {
        "volume": 123.456,
        "flow": 0.5,
        "leak": False,
        "reverse_flow": False,
        "battery": 90,
    }
    downlink = codec.encode_downlink({"report_interval": 15})
    assert (downlink.fport, downlink.payload) == (10, b"\x00\x0f")
    with pytest.raises(CodecError, match="refused"):
        codec.encode_downlink({"report_interval": 0})


def test_js_codec_is_compiled_once_and_shared():
    base = ROOT / "drivers" / "lorawan"
    first = load_codec("examples/water-meter.yaml", base)
    second = load_codec("examples/water-meter.js", base)
    assert first is second
    for _ in range(5):
        first.decode_uplink(1, bytes(8))
    assert first.compiles == 1


def test_infinite_loop_is_stopped_within_its_budget_and_the_codec_recovers():
    codec = JavaScriptCodec(
        textwrap.dedent("""
        function decodeUplink(input) {
          if (input.bytes[0] === 0xFF) { while (true) {} }
          return { data: { value: input.bytes[0] } };
        }
    """),
        "looping.js",
        time_budget=0.05,
    )
    started = time.monotonic()
    with pytest.raises(CodecError) as info:
        codec.decode_uplink(1, b"\xff")
    elapsed = time.monotonic() - started
    assert info.value.reason == "timeout"
    assert elapsed < 5.0  # a generous bound: the loop never ends on its own
    assert codec.decode_uplink(1, b"\x07").data == {"value": 7}


MEMORY_BOMB = textwrap.dedent("""
    from drivers.lorawan.codecs import CodecError, JavaScriptCodec
    codec = JavaScriptCodec("function decodeUplink(i) { var a = []; while (true) a.push(new Array(4096).fill(1)); }",
                            "bomb.js", time_budget=10.0, memory_budget=4 * 1024 * 1024)
    try:
        codec.decode_uplink(1, b"\\x00")
    except CodecError as exc:
        print(exc.reason)
""")


def test_memory_bomb_is_stopped_by_the_memory_budget():
    # In a fresh interpreter: after about a dozen memory bombs in one process QuickJS (1.19)
    # is too short of memory to build the error and throws null, so the reason would depend
    # on what other tests ran before this one.
    out = run_fresh(MEMORY_BOMB)
    assert out.stdout.strip() == "memory", out.stderr


@pytest.mark.parametrize(
    "body, reason",
    [
        ("function decodeUplink(i) { throw new Error('boom'); }", "threw"),
        ("function decodeUplink(i) { return 42; }", "junk"),
        ("function decodeUplink(i) { return { data: 'text' }; }", "junk"),
        ("function decodeUplink(i) { return undefined; }", "junk"),
    ],
)
def test_codecs_that_throw_or_return_junk_raise_codec_errors(body, reason):
    codec = JavaScriptCodec(body, "bad.js")
    with pytest.raises(CodecError) as info:
        codec.decode_uplink(1, b"\x01")
    assert info.value.reason == reason


def test_a_codec_that_does_not_compile_names_the_file():
    with pytest.raises(CodecError, match="broken.js does not compile"):
        JavaScriptCodec("function decodeUplink( {", "broken.js")


def test_python_codec(tmp_path):
    path = tmp_path / "bin_fill.py"
    path.write_text(
        textwrap.dedent("""
        def decode_uplink(input):
            return {"fill_level": input["bytes"][0], "tilted": bool(input["bytes"][1])}

        def encode_downlink(input):
            return {"fPort": 3, "bytes": [int(input["data"]["interval"])]}
    """)
    )
    codec = PythonCodec(path)
    assert codec.decode_uplink(1, b"\x50\x00").data == {"fill_level": 80, "tilted": False}
    assert codec.encode_downlink({"interval": 9}).payload == b"\x09"
    with pytest.raises(CodecError, match="IndexError"):
        codec.decode_uplink(1, b"")


def _codecs_test(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "codecs", "test", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_codecs_test_command_passes_the_sample_codec():
    result = _codecs_test(ROOT / "drivers" / "lorawan" / "examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed" in result.stdout


@pytest.mark.parametrize("fport", [10**400, -1, 256, True])
def test_a_javascript_codec_refuses_an_fport_outside_one_byte_before_quickjs_sees_it(fport):
    """QuickJS's binding crashes the process on an integer too large for a double; a codec
    file's example may hold one, so it must be a CodecError, not a SIGSEGV."""
    codec = JavaScriptCodec("function decodeUplink(i) { return {data: {port: i.fPort}}; }", "port.js")
    with pytest.raises(CodecError, match="FPort must be 0..255"):
        codec.decode_raw(fport, b"\x01")
    assert codec.decode_raw(255, b"\x01") == {"data": {"port": 255}}
