"""Hostile site configs, as `gateway check` reads them: every text is a config or a ConfigError
listing its problems; no traceback, whatever a technician (or an editor gone wrong) writes."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given

from drivers.lorawan.codecs import CodecError
from gateway import config as config_module
from gateway.config import parse_config_text
from gateway.problems import ConfigError, Problems

from .mutate import FUZZ, HOSTILE_TEXT, fuzz_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "gateway" / "demo" / "site.toml"
DEMO_VALUES = {
    "data_dir": "data",
    "serial_air_enabled": "false",
    "serial_air_port": "/dev/null",
    "modbus_enabled": "true",
    "modbus_port": "5020",
    "lorawan_enabled": "true",
    "lorawan_port": "1700",
    "api_port": "5683",
}


def _demo_text() -> str:
    from gateway.cli.demo import site_text

    return site_text(DEMO_VALUES)  # credentials: the parts' defaults, absolute paths


def _seeds() -> list[tuple[Path, str]]:
    """Real configs, each read as if it sat where its relative paths (profiles, keys) resolve."""
    seeds = [(DEMO, _demo_text())]
    for driver in ("gpio", "lorawan", "modbus", "serial"):
        path = ROOT / "drivers" / driver / "sample.toml"
        seeds.append((path, path.read_text(encoding="utf-8")))
    seeds.append(
        (
            DEMO,
            '[gateway]\nid = "s"\ntimezone = "Europe/Amsterdam"\nlatitude = 52.1\nlongitude = 4.3\n'
            'data_dir = "data"\nlog_level = "debug"\n[store]\nflush_interval = "20ms"\nqueue_size = 100\n'
            'max_bytes = "1GiB"\nhard_max_bytes = 2000000000\nmax_age = 86400\n',
        )
    )
    return seeds


SEEDS = _seeds()
#: the seed's position is put in front of the text so one strategy covers every seed's directory
TAGGED = [f"{i}|{text}" for i, (_, text) in enumerate(SEEDS)]
SEED_TAGS = {str(i) for i in range(len(SEEDS))}
CONFIG_HOSTILE = HOSTILE_TEXT + (
    "\\u0000",
    "inf",
    "nan",
    "-inf",
    "1979-05-27T07:32:00Z",
    "0o777",
    "0b1",
    "[[devices]]\n",
    "[gateway]\n",
    '"""',
    "'''",
    "= {",
    "= [",
    "\ndata_dir = ",
    "\ntimezone = ",
)


def _parse(tagged: str) -> None:
    index, _, text = tagged.partition("|")
    path = SEEDS[int(index)][0] if index in SEED_TAGS else DEMO
    try:
        parse_config_text(text, path)
    except ConfigError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)


@contextlib.contextmanager
def _named_files_parsed_once() -> Iterator[None]:
    """Only the site config's text is fuzzed here: the files it names (profiles, codec files,
    rule files) and the installed drivers do not change, so each is read and parsed once.
    Re-parsing them per example cost four fifths of the time."""
    from drivers.lorawan.codecs import repository
    from drivers.modbus import options as modbus_options
    from gateway.rules import loader

    drivers = config_module.available_drivers()
    profiles: dict[Path, tuple[object, list[object]]] = {}

    def load_profile(path: Path, problems: Problems) -> object:
        if path not in profiles:
            found = Problems(problems.file)
            profiles[path] = (real_load_profile(path, found), found.items)
        profile, items = profiles[path]
        problems.items.extend(items)  # type: ignore[arg-type]
        return profile

    codec_files: dict[Path, object] = {}

    def read_codec_yaml(path: Path) -> object:
        if path not in codec_files:
            try:
                codec_files[path] = real_read_codec_yaml(path)
            except CodecError as exc:
                codec_files[path] = exc
        found = codec_files[path]
        if isinstance(found, CodecError):
            raise found
        return found

    real_load_profile, real_read_codec_yaml = modbus_options.load_profile, repository.read_codec_yaml
    with (
        mock.patch.object(config_module, "available_drivers", lambda: drivers),
        mock.patch.object(config_module, "load_driver", functools.cache(config_module.load_driver)),
        mock.patch.object(modbus_options, "load_profile", load_profile),
        mock.patch.object(repository, "read_codec_yaml", read_codec_yaml),
        mock.patch.object(loader, "read_raw", functools.cache(loader.read_raw)),
    ):
        yield


@FUZZ
@given(fuzz_text(TAGGED, CONFIG_HOSTILE))
def _fuzz_site_config(tagged: str) -> None:
    _parse(tagged)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # re.compile on a mangled serial pattern: "nested set"
def test_fuzz_site_config_is_a_config_or_a_config_error() -> None:
    with _named_files_parsed_once():
        _fuzz_site_config()


def test_gateway_check_lists_hostile_site_values_instead_of_a_traceback(tmp_path: Path) -> None:
    """A NUL in data_dir and a 300-character timezone once printed tracebacks."""
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "s"\ndata_dir = "\\u0000data"\ntimezone = "' + "A" * 300 + '"\n'
        "latitude = 1e999\nlongitude = " + "9" * 400 + '\n[store]\nmax_bytes = "' + "9" * 400 + 'GB"\n'
        "max_age = " + "9" * 400 + "\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2 or result.returncode == 1, result.returncode
    for key in (
        "gateway.data_dir",
        "gateway.timezone",
        "gateway.latitude",
        "gateway.longitude",
        "store.max_bytes",
        "store.max_age",
    ):
        assert key in result.stderr, (key, result.stderr)
    nested = tmp_path / "nested.toml"
    nested.write_text("[gateway]\nid = 's'\n[store]\nx = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(nested)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr and "nested too deeply" in result.stderr, result.stderr
