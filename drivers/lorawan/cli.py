"""``gateway codecs test PATH``: run the examples of payload codec files (The Things Stack
device-repository ``codec.yaml`` layout) and report each one, failing on any mismatch.
``gateway codecs decode CODEC --port N HEX``: decode one payload into the points it gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.model import is_valid_name_part
from gateway.problems import did_you_mean


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("codecs", help="work with LoRaWAN payload codecs")
    codec_sub = parser.add_subparsers(dest="codecs_command", required=True, metavar="SUBCOMMAND")
    test = codec_sub.add_parser("test", help="run the examples of codec YAML files")
    test.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a codec .yaml file, or a folder searched for them",
    )
    test.add_argument(
        "--time-budget",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="per-call time budget of a JavaScript codec (default 0.1)",
    )
    test.set_defaults(func=command_test)
    decode = codec_sub.add_parser(
        "decode",
        help="decode one uplink payload and print the points it gives",
        description="Exit status: 0 decoded; 1 the codec refused the payload; 2 bad arguments.",
    )
    decode.add_argument(
        "codec", metavar="CODEC", help="a built-in codec (cayenne) or a codec file (.yaml, .js or .py)"
    )
    decode.add_argument("payload", metavar="HEX", help="the payload as hex, e.g. 0367011005670064")
    decode.add_argument(
        "--port", "-p", type=int, default=1, metavar="N", help="the uplink's FPort (default 1)"
    )
    decode.add_argument(
        "--time-budget",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="per-call time budget of a JavaScript codec (default 0.1)",
    )
    decode.set_defaults(func=command_decode)


def codec_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and "node_modules" not in p.parts
            )
        else:
            found.append(path)
    return found


def command_test(args: argparse.Namespace) -> int:
    try:
        from .codecs import CodecError, run_examples
    except ImportError as exc:  # the LoRaWAN driver is an optional part of a build
        print(f"error: the LoRaWAN driver is not installed ({exc})", file=sys.stderr)
        return 2
    files = codec_files(args.paths)
    if not files:
        print("error: no codec files found", file=sys.stderr)
        return 2
    passed = failed = 0
    for path in files:
        try:
            outcomes = list(run_examples(path, args.time_budget))
        except CodecError as exc:
            print(f"FAIL {path}: {exc}")
            failed += 1
            continue
        if not outcomes:
            print(f"---- {path}: no examples")
        for outcome in outcomes:
            label = f"{path} [{outcome.example.kind}] {outcome.example.description}"
            if outcome.ok:
                passed += 1
                print(f"ok   {label}")
            else:
                failed += 1
                print(f"FAIL {label}: {outcome.detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def command_decode(args: argparse.Namespace) -> int:
    try:
        from .codecs import CodecError, flatten, load_codec
        from .codecs.repository import BUILTIN
    except ImportError as exc:  # the LoRaWAN driver is an optional part of a build
        print(f"error: the LoRaWAN driver is not installed ({exc})", file=sys.stderr)
        return 2
    text = "".join(args.payload.split()).removeprefix("0x")
    try:
        payload = bytes.fromhex(text)
    except ValueError:
        print(
            f"error: payload '{args.payload}' is not hex (two digits per byte, e.g. 0367011005670064)",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 224:
        print(f"error: --port {args.port}: an application FPort is 1..223", file=sys.stderr)
        return 2
    if args.codec not in BUILTIN and Path(args.codec).suffix not in (".yaml", ".yml", ".js", ".py"):
        print(
            f"error: '{args.codec}' is neither a built-in codec ({', '.join(BUILTIN)})"
            f"{did_you_mean(args.codec, BUILTIN)} nor a codec file (.yaml, .js or .py)",
            file=sys.stderr,
        )
        return 2
    try:
        codec = load_codec(args.codec, Path.cwd(), time_budget=args.time_budget)
    except CodecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = codec.decode_uplink(args.port, payload)
        fields = flatten(result.data)
    except CodecError as exc:
        print(f"codec {codec.name} refused the payload ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    if result.errors:
        # the gateway stores nothing from an uplink its codec reports errors for
        return 1
    width = max((len(name) for name in fields), default=0)
    for name, value in fields.items():
        shown = json.dumps(value) if isinstance(value, bool | str) else repr(value)
        note = "" if is_valid_name_part(name) else "  (not a valid point name: the gateway skips it)"
        print(f"{name:<{width}}  {shown}{note}")
    if not fields:
        print("(no points)")
    return 0
