"""Codec files as The Things Stack device repository writes them (``codec.yaml`` naming a
script and its ``examples``), loading them once and running the examples as tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Codec, CodecError, flatten
from .cayenne import CayenneLpp
from .javascript import DEFAULT_MEMORY_BUDGET, DEFAULT_TIME_BUDGET_S, JavaScriptCodec
from .python import PythonCodec

BUILTIN = ("cayenne", "cayenne_lpp")


@dataclass(frozen=True, slots=True)
class Example:
    kind: str  # uplink | downlink
    description: str
    input: dict[str, Any]
    output: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CodecFile:
    path: Path
    uplink_script: Path | None
    downlink_script: Path | None
    examples: tuple[Example, ...]


def read_codec_yaml(path: Path) -> CodecFile:
    """Parse a device-repository codec file; errors name the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CodecError("compile", f"cannot read codec file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CodecError(
            "compile", f"codec file {path} is not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from None
    return parse_codec_yaml(text, path)


def parse_codec_yaml(text: str, path: Path) -> CodecFile:
    """The codec file ``path`` from its ``text``; script paths are relative to ``path``."""
    import yaml  # only codec files need it; the daemon's hot path never does

    # libyaml's loader, where installed, is ten times faster and bounds nesting itself.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, C or Python
    except yaml.YAMLError as exc:
        raise CodecError("compile", f"{path} is not valid YAML: {exc}") from None
    except RecursionError:
        raise CodecError("compile", f"{path}: YAML nested too deeply") from None
    except ValueError as exc:  # a value YAML accepts but Python will not build, e.g. a 5000-digit integer
        raise CodecError("compile", f"{path} is not valid YAML: {str(exc)[:200]}") from None
    if not isinstance(raw, dict):
        raise CodecError("compile", f"{path}: expected a mapping with uplinkDecoder")
    scripts: dict[str, Path | None] = {}
    examples: list[Example] = []
    for key, kind in (("uplinkDecoder", "uplink"), ("downlinkEncoder", "downlink")):
        section = raw.get(key)
        if section is None:
            scripts[kind] = None
            continue
        if not isinstance(section, dict) or not isinstance(section.get("fileName"), str):
            raise CodecError("compile", f"{path}: {key}.fileName is missing")
        if "\0" in section["fileName"]:
            raise CodecError("compile", f"{path}: {key}.fileName contains a NUL character")
        scripts[kind] = path.parent / section["fileName"]
        listed = section.get("examples") or []
        if not isinstance(listed, list):
            raise CodecError("compile", f"{path}: {key}.examples must be a list")
        for index, item in enumerate(listed):
            if not isinstance(item, dict) or not isinstance(item.get("input"), dict):
                raise CodecError("compile", f"{path}: {key}.examples[{index}] has no input")
            if not isinstance(item.get("output") or {}, dict):
                raise CodecError("compile", f"{path}: {key}.examples[{index}].output must be a mapping")
            examples.append(
                Example(
                    kind,
                    str(item.get("description", f"{key} example {index + 1}")),
                    item["input"],
                    item.get("output") or {},
                )
            )
    if scripts["uplink"] is None:
        raise CodecError("compile", f"{path}: uplinkDecoder is missing")
    return CodecFile(path, scripts["uplink"], scripts["downlink"], tuple(examples))


_CACHE: dict[tuple[str, float, float, int], Codec] = {}


def load_codec(
    spec: str,
    base_dir: Path,
    *,
    time_budget: float = DEFAULT_TIME_BUDGET_S,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    downlink_fport: int | None = None,
) -> Codec:
    """A codec by name ("cayenne") or file (.yaml, .js, .py); scripts are compiled once and
    shared by every device that names the same file."""
    if spec in BUILTIN:
        return CayenneLpp(downlink_fport) if downlink_fport else CayenneLpp()
    if "\0" in spec:  # no file has a NUL in its name; resolve() would raise ValueError
        raise CodecError("compile", f"codec file name {spec[:100]!r} contains a NUL character")
    path = (base_dir / spec).resolve()
    if path.suffix in (".yaml", ".yml"):
        script = read_codec_yaml(path).uplink_script
        assert script is not None
        path = script.resolve()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise CodecError("compile", f"codec file {path} does not exist") from None
    key = (str(path), mtime, time_budget, memory_budget)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    codec = _build(path, time_budget, memory_budget)
    _CACHE[key] = codec
    return codec


def _build(path: Path, time_budget: float, memory_budget: int) -> Codec:
    if path.suffix in (".yaml", ".yml"):
        codec_file = read_codec_yaml(path)
        assert codec_file.uplink_script is not None
        return _build(codec_file.uplink_script, time_budget, memory_budget)
    if path.suffix == ".js":
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CodecError("compile", f"cannot read codec script {path}: {exc.strerror}") from None
        return JavaScriptCodec(source, path.name, time_budget, memory_budget)
    if path.suffix == ".py":
        return PythonCodec(path)
    raise CodecError("compile", f"{path}: a codec is 'cayenne', a .yaml, .js or .py file")


def example_fields(path: Path) -> dict[str, Any]:
    """Fields the codec's uplink examples produce, with one sample value each (to declare points)."""
    if path.suffix not in (".yaml", ".yml"):
        return {}
    fields: dict[str, Any] = {}
    for example in read_codec_yaml(path).examples:
        data = example.output.get("data")
        if example.kind == "uplink" and isinstance(data, dict):
            try:
                fields.update(flatten(data))
            except CodecError:
                continue
    return fields


@dataclass(frozen=True, slots=True)
class ExampleOutcome:
    example: Example
    ok: bool
    detail: str


def run_examples(path: Path, time_budget: float = DEFAULT_TIME_BUDGET_S) -> Iterator[ExampleOutcome]:
    """Run every example of a codec file against its scripts (a fresh compile, no cache)."""
    codec_file = read_codec_yaml(path)
    assert codec_file.uplink_script is not None
    uplink = _build(codec_file.uplink_script, time_budget, DEFAULT_MEMORY_BUDGET)
    downlink = (
        _build(codec_file.downlink_script, time_budget, DEFAULT_MEMORY_BUDGET)
        if codec_file.downlink_script
        else None
    )
    for example in codec_file.examples:
        try:
            if example.kind == "uplink":
                got = _run_uplink(uplink, example)
            else:
                if downlink is None:
                    yield ExampleOutcome(example, False, "no downlinkEncoder script")
                    continue
                got = _run_downlink(downlink, example)
        except CodecError as exc:
            yield ExampleOutcome(example, False, str(exc))
            continue
        except (KeyError, TypeError, ValueError) as exc:
            yield ExampleOutcome(example, False, f"example input is malformed: {exc}")
            continue
        problems = _compare(example.output, got)
        yield ExampleOutcome(example, not problems, "; ".join(problems) or "ok")


def _run_uplink(codec: Codec, example: Example) -> dict[str, Any]:
    raw_bytes = example.input["bytes"]
    # bytes(10**12) would allocate a terabyte: only a list of byte values is an input.
    if not isinstance(raw_bytes, list) or not all(isinstance(b, int) and 0 <= b <= 255 for b in raw_bytes):
        raise ValueError("input.bytes must be a list of byte values 0..255")
    payload = bytes(raw_bytes)
    fport = int(example.input.get("fPort", 1))
    raw = codec.decode_raw(fport, payload)  # type: ignore[attr-defined]
    if not isinstance(raw, dict):
        raise CodecError("junk", f"decodeUplink returned {type(raw).__name__}")
    return raw


def _run_downlink(codec: Codec, example: Example) -> dict[str, Any]:
    data = example.input.get("data", {})
    result = codec.encode_downlink(data)
    return {"bytes": list(result.payload), "fPort": result.fport}


def _compare(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = []
    for key, want in expected.items():
        have = got.get(key, [] if key in ("errors", "warnings") else None)
        if key in ("errors", "warnings") and not want:
            want = []
        if not _same(want, have):
            problems.append(f"{key}: expected {_shown(want)}, got {_shown(have)}")
    return problems


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4300-digit limit has no repr
        return "a number too long to show"
    return text if len(text) <= 200 else text[:197] + "..."


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        try:
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        except OverflowError:  # an expected integer of 400 digits is no float
            return a == b
    return bool(a == b)
