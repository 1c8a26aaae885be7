"""A new driver family is its own folder plus one entry-point line: installed the way pip
would install it (a package and a dist-info), it shows up in `gateway check`, in the CLI with
its own sub-command, and in `gateway demo` with its devices and its simulated peer."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import install_package
from tests.source import parse_file

TOY_DRIVER = '''
"""A toy counter family: one polled device whose peer says where to start counting."""
from gateway.driver import DemoPart, Driver, PointSpec


class ToyDriver(Driver):
    name = "toy"
    commands = {"toy": "toy_family.cli:register"}
    demo = DemoPart(site="toy_family/demo-site.toml", peer="toy_family.demo:counter_peer",
                    defaults={"toy_start": "0"})

    @classmethod
    def parse_options(cls, options, config_dir):
        start = options.int("start", 0)
        options.finish()
        return start

    @classmethod
    def declare_points(cls, options):
        return [PointSpec("count", kind="number")]

    def __init__(self, device, ctx):
        super().__init__(device, ctx)
        self.count = self.options

    async def poll(self):
        self.count += 1
        return [self.ctx.reading("count", self.count)]
'''

TOY_CLI = """
def register(sub):
    parser = sub.add_parser("toy", help="talk to toy counters")
    parser.add_argument("words", nargs="*")
    parser.set_defaults(func=lambda args: print("toy family says:", *args.words) or 0)
"""

TOY_DEMO = """
import contextlib
from pathlib import Path


@contextlib.asynccontextmanager
async def counter_peer(demo_dir: Path):
    (demo_dir / "toy-peer-ran").write_text("yes")
    yield {"toy_start": "1000", "announce": "Toy counter peer: counting from 1000"}
"""

TOY_SITE = """
[[devices]]
name = "toy-counter"
driver = "toy"
interval = "200ms"
[devices.options]
start = {{toy_start}}
"""

TOY_SAMPLE = """
[gateway]
id = "toy-site"
timezone = "UTC"
latitude = 52.0
longitude = 4.0

[[devices]]
name = "counter"
driver = "toy"
interval = "1s"
[devices.options]
start = 5
"""


@pytest.fixture
def toy_env(tmp_path: Path) -> dict[str, str]:
    files = {
        "__init__.py": TOY_DRIVER,
        "cli.py": TOY_CLI,
        "demo.py": TOY_DEMO,
        "demo-site.toml": TOY_SITE,
        "sample.toml": TOY_SAMPLE,
    }
    # the family's own folder, and the one entry-point line
    site_dir = install_package(
        tmp_path / "site-packages",
        "toy-family",
        {f"toy_family/{name}": text for name, text in files.items()},
        "[gateway.drivers]\ntoy = toy_family:ToyDriver\n",
    )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site_dir), os.environ.get("PYTHONPATH")])),
    }


def gateway(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_family_checks_its_sample_and_adds_its_command(toy_env, tmp_path):
    checked = gateway(
        toy_env, "check", "--config", str(tmp_path / "site-packages" / "toy_family" / "sample.toml")
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK - site 'toy-site', 1 devices, 1 points" in checked.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text(TOY_SAMPLE.replace("start = 5", 'start = "five"'))
    refused = gateway(toy_env, "check", "--config", str(broken))
    assert refused.returncode == 2
    assert "devices[0].options.start: must be an integer, got 'five'" in refused.stdout + refused.stderr

    said = gateway(toy_env, "toy", "hello", "street")
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "toy family says: hello street"

    listed = gateway(toy_env, "--help")
    assert "talk to toy counters" in listed.stdout, listed.stdout
    assert "work with LoRaWAN payload codecs" in listed.stdout  # the LoRaWAN family's, found the same way

    core_only = gateway(os.environ.copy(), "toy")
    assert core_only.returncode == 2 and "invalid choice: 'toy'" in core_only.stderr


def counts(db_path: Path) -> list[float]:
    if not db_path.exists():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [
            row[0]
            for row in conn.execute(
                "SELECT r.value FROM readings r JOIN points p ON p.id = r.point WHERE p.name = 'toy-counter/count'"
            )
        ]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_the_family_brings_its_devices_and_peer_to_the_demo(toy_env, tmp_path):
    demo_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--quiet", "--data-dir", str(demo_dir)],
        env=toy_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not counts(demo_dir / "data" / "buffer.db"):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no toy-counter reading in the demo's buffer"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert (demo_dir / "toy-peer-ran").read_text() == "yes"
    assert min(counts(demo_dir / "data" / "buffer.db")) > 1000  # the peer's value reached the site
    assert "Toy counter peer: counting from 1000" in out
    site = (demo_dir / "site.toml").read_text()
    assert 'driver = "toy"' in site and 'driver = "modbus"' in site


def test_the_core_imports_nothing_from_the_driver_families():
    """`gateway/` reaches drivers only through entry points: no import, no "drivers.x" target."""
    import ast

    root = Path(__file__).resolve().parents[2] / "gateway"
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(parse_file(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("drivers.") and ":" in node.value else []
            found += [
                f"{path.relative_to(root.parent)}:{node.lineno} {name}"
                for name in names
                if name == "drivers" or name.startswith("drivers.")
            ]
    assert found == []
