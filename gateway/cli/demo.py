"""``gateway demo``: the built-in demo site with zero set-up, readings printed live.

The demo dir is the technician's: rule files are written from the templates only where
absent (``--reset`` rewrites them), so edits survive a re-run; only site.toml is regenerated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeGuard

from ..config import load_config
from ..demo.rule_templates import install_rule_templates, rule_template_notes
from ..demo.tools import gateway_command
from ..driver import DemoPart, load_target, loadable_drivers, package_file
from ..logfmt import setup_logging
from ..problems import ConfigError
from ..service import Service
from ..stopguard import exit_if_stop_hangs
from .common import print_problems
from .demo_console import ReadingConsole, show_operator_events

#: peers of the core's own demo parts (the CoAP API's demo keys); each driver family brings
#: its own through ``Driver.demo``: "module:function" naming an async context manager factory
#: f(demo_dir) that yields a dict of {{template}} values for site.toml.
CORE_PEERS: list[str] = ["gateway.coap.api_demo:api_server"]

#: template values of the core's part when its peer did not run (rendering without peers)
CORE_DEFAULTS: dict[str, str] = {
    "api_port": "5683",
    "api_credentials": str(Path(__file__).resolve().parent.parent / "demo" / "api-demo-credentials.toml"),
}


def demo_parts() -> dict[str, DemoPart]:
    """The demo part of every installed driver family that has one, in entry-point order."""
    return {name: driver.demo for name, driver in loadable_drivers().items() if driver.demo is not None}


def template_defaults(parts: dict[str, DemoPart] | None = None) -> dict[str, str]:
    """Every template value's fallback, so the site parses when no peer ran."""
    values = dict(CORE_DEFAULTS)
    for part in (demo_parts() if parts is None else parts).values():
        values.update(part.defaults)
    return values


def site_text(values: dict[str, str]) -> str:
    """The demo site: the core's part with each driver family's devices in it, filled in."""
    parts = demo_parts()
    fragments = []
    for name, part in parts.items():
        try:
            fragments.append(part.site_fragment().strip())
        except (OSError, ModuleNotFoundError) as exc:
            raise RuntimeError(
                f"driver {name}: its demo site part {part.site} cannot be read: {exc}"
            ) from None
    text = package_file("gateway.demo", "site.toml").read_text(encoding="utf-8")
    text = text.replace("{{devices}}", "\n\n".join(fragments))
    for key, value in {**template_defaults(parts), **values}.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("demo", help="run the built-in demo site (simulated devices), printing readings")
    parser.add_argument("--data-dir", type=Path, help="keep the demo buffer here (default: a per-user dir)")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="rewrite the demo's rule files from the templates (your edits to them are lost)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print readings")
    parser.add_argument(
        "--points",
        action="append",
        default=[],
        metavar="GLOB",
        help="print only readings of these points, e.g. 'lamp-*/level' (repeatable)",
    )
    parser.add_argument("--log-level", default="warning")
    parser.set_defaults(func=command)


def default_demo_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or (Path.home() / ".local" / "share")
    path = Path(base) / "gateway-demo"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        import tempfile  # only here: with shutil, bz2 and lzma it stays loaded (about 0.6 MB)

        return Path(tempfile.mkdtemp(prefix="gateway-demo-"))


def render_site(demo_dir: Path, values: dict[str, str]) -> Path:
    text = site_text({"data_dir": str(demo_dir / "data"), **values})
    install_rule_templates(demo_dir)
    path = demo_dir / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


#: a demo peer: ``peer(demo_dir)`` runs it and yields the ``{{name}}`` values for the site
Peer = Callable[[Path], contextlib.AbstractAsyncContextManager[dict[str, str]]]


def _is_peer(value: object) -> TypeGuard[Peer]:
    return callable(value)


def load_peers() -> list[Peer]:
    targets = [part.peer for part in demo_parts().values() if part.peer] + CORE_PEERS
    return [load_target(target, "a demo peer factory", _is_peer) for target in targets]


@contextlib.asynccontextmanager
async def demo_peers(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    values: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        for peer in load_peers():
            offered = await stack.enter_async_context(peer(demo_dir))
            # every peer may announce itself; keep all their lines, not just the last peer's
            lines = [text for text in (values.get("announce"), offered.get("announce")) if text]
            values.update(offered)
            if lines:
                values["announce"] = "\n".join(lines)
        yield values


@contextlib.asynccontextmanager
async def peers_process(demo_dir: Path) -> AsyncIterator[dict[str, str]]:
    """Run the peers in a child process, so the gateway process holds only the gateway."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.demo.peers",
        str(demo_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the demo's simulated peers failed to start (see the messages above)")
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run_demo(
    demo_dir: Path, quiet: bool, announce: Callable[[str], None] = print, points: tuple[str, ...] = ()
) -> int:
    async with peers_process(demo_dir) as values:
        site = Path(values["site"])  # rendered by the peer process (gateway.demo.peers)
        try:
            config = load_config(site)
        except ConfigError as exc:
            print_problems(exc)
            return 2
        service = Service(config)
        service.on_stop.append(exit_if_stop_hangs)
        printer = None if quiet else service.hub.subscribe("console", maxsize=64, overflow="drop_oldest")

        def ready() -> None:
            announce(
                f"demo site '{config.site.name}': {len(config.devices)} devices, "
                f"config {site}, buffer {config.site.data_dir}"
            )
            for line in values.get("announce", "").splitlines():
                announce(line)
            announce(
                "Ctrl-C to stop. Query the buffer with: "
                f"{gateway_command()} readings --data-dir {shlex.quote(str(config.site.data_dir))}"
            )

        service.on_ready.append(ready)

        console = ReadingConsole(config.site.timezone, points)

        async def print_readings() -> None:
            assert printer is not None
            async for batch in printer:
                for line in console.lines(batch):
                    print(line, flush=True)

        async with asyncio.TaskGroup() as tg:
            printing = tg.create_task(print_readings()) if printer else None
            await service.run()
            if printing:
                printing.cancel()
    return 0


def command(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    show_operator_events()
    demo_dir = args.data_dir or default_demo_dir()
    demo_dir.mkdir(parents=True, exist_ok=True)
    for note in rule_template_notes(install_rule_templates(demo_dir, args.reset), args.reset):
        print(note, flush=True)
    try:
        return asyncio.run(run_demo(demo_dir, args.quiet, points=tuple(args.points)))
    except KeyboardInterrupt:
        print("demo stopped", file=sys.stderr)
        return 0
