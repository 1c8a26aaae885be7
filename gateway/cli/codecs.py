"""``gateway codecs test PATH``: run the examples of payload codec files (The Things Stack
device-repository ``codec.yaml`` layout) and report each one, failing on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("codecs", help="work with LoRaWAN payload codecs")
    codec_sub = parser.add_subparsers(dest="codecs_command", required=True, metavar="SUBCOMMAND")
    test = codec_sub.add_parser("test", help="run the examples of codec YAML files")
    test.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                      help="a codec .yaml file, or a folder searched for them")
    test.add_argument("--time-budget", type=float, default=0.1, metavar="SECONDS",
                      help="per-call time budget of a JavaScript codec (default 0.1)")
    test.set_defaults(func=command_test)


def codec_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")
                            and "node_modules" not in p.parts)
        else:
            found.append(path)
    return found


def command_test(args: argparse.Namespace) -> int:
    try:
        from drivers.lorawan.codecs import CodecError, run_examples
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
