"""gateway-hawkbit: the box's hawkBit DDI client, the I/O around ``hawkbit.py``.

Polls the controller base at the server's interval, downloads a bundle with HTTP Range resume
into the data partition, verifies its size and digest, runs ``rauc install``, reboots into the
tried slot, and reports the outcome gateway-commit settled (committed, or rolled back with its
reason) once. The in-flight action lives in ``<state_dir>/action.json`` so a reset resumes it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shlex
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import hawkbit, hawkbit_config
from .commit import image_version, read_json
from .files import Paths, write_atomic
from .hawkbit import Action, ControllerBase, DdiError, Deployment, Phase

EX_CONFIG = 78  # sysexits: a configuration error; systemd is told not to restart on it
READ_BYTES = 64 * 1024
FSYNC_EVERY = 4 << 20
HTTP_TIMEOUT_S = 60.0
#: progress reports while downloading, in percent
PROGRESS_STEPS = (25, 50, 75)


def log(**fields: object) -> None:
    def quote(value: object) -> str:
        text = str(value)
        return f'"{text}"' if (" " in text or not text) else text

    print(
        "gateway-hawkbit " + " ".join(f"{k}={quote(v)}" for k, v in fields.items()),
        file=sys.stderr,
        flush=True,
    )


class HttpError(Exception):
    def __init__(self, method: str, url: str, status: int, body: bytes = b""):
        super().__init__(f"{method} {url}: HTTP {status} {body[:200].decode('utf-8', 'replace')}".rstrip())
        self.status = status


class ShortDownload(Exception):
    """The connection ended before the artifact's size: the next attempt resumes with Range."""


@dataclass
class Http:
    """urllib with the server's Authorization header (only ever sent to the server's origin)."""

    config: hawkbit_config.UpdatesConfig
    context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.config.ca_file is not None:
            self.context = ssl.create_default_context(cafile=str(self.config.ca_file))

    def _headers(self, url: str, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {
            "Accept": "application/hal+json, application/json",
            "User-Agent": "city-gateway-hawkbit/1",
            **extra,
        }
        server = urlsplit(self.config.server)
        target = urlsplit(url)
        if self.config.authorization and (server.scheme, server.netloc) == (target.scheme, target.netloc):
            headers["Authorization"] = self.config.authorization
        return headers

    def open(
        self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> http.client.HTTPResponse:
        data = None
        extra = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            extra["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers(url, extra))
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310 - http(s) only, checked
                request, timeout=HTTP_TIMEOUT_S, context=self.context
            )
        except urllib.error.HTTPError as exc:
            if exc.code == 416:
                return exc  # type: ignore[return-value]
            raise HttpError(method, url, exc.code, exc.read()) from None
        return response

    def json(self, method: str, url: str, body: Any = None) -> Any:
        with self.open(method, url, body) as response:
            raw = response.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise DdiError(f"{method} {url}: the answer is not JSON: {raw[:80]!r}") from None


@dataclass
class Store:
    """``<dir>/action.json`` and the bundle being downloaded, on the data partition."""

    directory: Path

    @property
    def action_file(self) -> Path:
        return self.directory / "action.json"

    def bundle(self, action: Action) -> Path:
        return self.directory / f"action-{action.action_id}.raucb"

    def load(self) -> Action | None:
        raw = read_json(self.action_file)
        if raw is None:
            return None
        try:
            return Action.from_json(raw)
        except DdiError as exc:
            log(event="action_record_discarded", path=self.action_file, error=exc)
            self.clear()
            return None

    def save(self, action: Action) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.action_file, json.dumps(action.to_json(), sort_keys=True) + "\n")

    def clear(self) -> None:
        self.action_file.unlink(missing_ok=True)
        for stale in self.directory.glob("action-*.raucb"):
            stale.unlink(missing_ok=True)


@dataclass
class Client:
    config: hawkbit_config.UpdatesConfig
    store: Store
    outcome_file: Path  # gateway-commit's update.json
    tried_file: Path  # RAUC's post-install handler's tried.json
    release: Path
    install: Sequence[str] = ("rauc", "install")
    # systemd 257 (trixie) refuses the argument without --reboot-argument ("Too many arguments")
    reboot: Sequence[str] = ("systemctl", "reboot", "--reboot-argument=0 tryboot")
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    ddi: Http = field(init=False)
    sleep_s: float = hawkbit.DEFAULT_SLEEP_S

    def __post_init__(self) -> None:
        self.ddi = Http(self.config)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Client | None:
        env = dict(os.environ if env is None else env)
        path = Path(env.get("GATEWAY_HAWKBIT_CONFIG", "/etc/gateway/updates.toml"))
        identity = Path(env.get("GATEWAY_IDENTITY", str(path.parent / "identity.toml")))
        config = hawkbit_config.load(path, identity)
        if config is None:
            return None
        paths = Paths.from_env(env)
        return cls(
            config=config,
            store=Store(Path(env.get("GATEWAY_HAWKBIT_DIR", str(paths.data / "hawkbit")))),
            outcome_file=Path(env.get("GATEWAY_DATA_DIR", "/var/lib/gateway")) / "update.json",
            tried_file=paths.data / "tried.json",
            release=Path(env.get("GATEWAY_IMAGE_RELEASE", "/etc/gateway-image-release")),
            install=shlex.split(env.get("GATEWAY_HAWKBIT_INSTALL", "rauc install")),
            reboot=shlex.split(
                env.get("GATEWAY_HAWKBIT_REBOOT", "systemctl reboot '--reboot-argument=0 tryboot'")
            ),
        )

    # -- the loop -------------------------------------------------------------------------

    def run_forever(self) -> None:
        log(event="started", controller=self.config.controller_base)
        while True:
            self.sleep(self.step())

    def step(self) -> float:
        """One round: report a settled outcome, poll, carry the action on. Returns the sleep."""
        action = self.store.load()
        if action is not None and action.phase is Phase.INSTALLED:
            action = self.report_outcome(action)
        try:
            base = ControllerBase.parse(self.ddi.json("GET", self.config.controller_base))
        except (OSError, HttpError, DdiError, http.client.HTTPException) as exc:
            log(event="poll_failed", error=exc, retry_s=self.sleep_s)
            return self.sleep_s
        self.sleep_s = base.sleep_s
        try:
            if base.config_data is not None:
                self.send_config_data(base.config_data)
                if base.deployment is None and base.cancel is None:
                    return hawkbit.MIN_SLEEP_S  # registered: ask again at once for a deployment
            if base.cancel is not None:
                self.cancel(base.cancel, action)
                return base.sleep_s
            if action is not None and action.phase is Phase.INSTALLED:
                return base.sleep_s  # the same action is still open on the server until it is reported
            if base.deployment is None:
                if action is not None:
                    log(event="action_withdrawn", action=action.action_id, version=action.version)
                    self.store.clear()
                return base.sleep_s
            self.work(base.deployment, action)
        except (OSError, HttpError, DdiError, http.client.HTTPException, ShortDownload) as exc:
            log(event="step_failed", error=exc, retry_s=base.sleep_s)
        return base.sleep_s

    # -- the parts ------------------------------------------------------------------------

    def send_config_data(self, href: str) -> None:
        body = hawkbit.config_data(
            compatible=self.config.compatible, version=hawkbit.bundle_version(image_version(self.release))
        )
        self.ddi.json("PUT", href, body)
        log(event="config_data_sent", version=body["data"]["sw_version"])

    def post(self, action: Action, body: Mapping[str, Any]) -> None:
        self.ddi.json("POST", action.feedback, dict(body))

    def post_quietly(self, action: Action, body: Mapping[str, Any]) -> None:
        """Progress that may be lost (the final result never is)."""
        try:
            self.post(action, body)
        except (OSError, HttpError, DdiError, http.client.HTTPException) as exc:
            log(event="progress_not_sent", action=action.action_id, error=exc)

    def cancel(self, href: str, action: Action | None) -> None:
        stop_id = hawkbit.cancel_stop_id(self.ddi.json("GET", href))
        url = href.split("?", 1)[0].rstrip("/") + "/feedback"
        if action is not None and action.action_id == stop_id and action.phase is Phase.INSTALLED:
            self.ddi.json(
                "POST",
                url,
                hawkbit.feedback(
                    hawkbit.Execution.REJECTED,
                    hawkbit.Finished.FAILURE,
                    ["already installed; waiting for the commit"],
                    action_id=stop_id,
                ),
            )
            return
        if action is not None and action.action_id == stop_id:
            self.store.clear()
        self.ddi.json(
            "POST",
            url,
            hawkbit.feedback(
                hawkbit.Execution.CLOSED,
                hawkbit.Finished.SUCCESS,
                ["cancelled before the install"],
                action_id=stop_id,
            ),
        )
        log(event="cancelled", action=stop_id)

    def work(self, href: str, action: Action | None) -> None:
        deployment = Deployment.parse(self.ddi.json("GET", href))
        if not deployment.may_download:
            log(event="download_deferred", action=deployment.action_id, by="server")
            return
        if action is None or action.action_id != deployment.action_id:
            if action is not None:
                log(event="action_superseded", action=action.action_id, by=deployment.action_id)
                self.store.clear()
            prefer_http = urlsplit(self.config.server).scheme == "http"
            try:
                action = hawkbit.start(deployment, href, prefer_plain_http=prefer_http, now=self.clock())
            except DdiError as exc:
                url = hawkbit.feedback_url(href, deployment.action_id)
                self.ddi.json(
                    "POST",
                    url,
                    hawkbit.feedback(
                        hawkbit.Execution.CLOSED,
                        hawkbit.Finished.FAILURE,
                        [f"refused: {exc}"],
                        action_id=deployment.action_id,
                    ),
                )
                log(event="action_refused", action=deployment.action_id, error=exc)
                return
            self.store.save(action)
            log(event="action_started", action=action.action_id, version=action.version, size=action.size)
            self.post(action, hawkbit.progress_feedback(action, 0, f"downloading {action.filename}"))
        if action.phase is Phase.DOWNLOADING:
            if not self.download(action):
                return
            action = action.advance(Phase.INSTALLING)
            self.store.save(action)
        if not deployment.may_install:
            log(
                event="install_deferred",
                action=action.action_id,
                update=deployment.update,
                maintenance_window=deployment.maintenance_window,
            )
            return
        self.install_bundle(action)

    def download(self, action: Action) -> bool:
        """Fetch the rest of the bundle; True once it is whole and verified."""
        path = self.store.bundle(action)
        have = path.stat().st_size if path.exists() else 0
        if have > action.size:
            path.unlink()
            have = 0
        if have < action.size:
            headers = {"Range": f"bytes={have}-"} if have else {}
            with self.ddi.open("GET", action.url, headers=headers) as response:
                status = response.status
                if status == 206 and not _range_starts_at(response.headers.get("Content-Range"), have):
                    raise ShortDownload(
                        f"server answered Range bytes={have}- with {response.headers.get('Content-Range')!r}"
                    )
                if status == 200:
                    have = 0
                elif status == 416:  # the server's artifact is not the one begun: start over
                    path.unlink(missing_ok=True)
                    raise ShortDownload(f"{action.filename}: the server refused bytes={have}-; starting over")
                elif status != 206:
                    raise HttpError("GET", action.url, status)
                log(event="download", action=action.action_id, offset=have, resumed=status == 206)
                have = self._receive(action, response, path, have)
        if have != action.size:
            raise ShortDownload(f"{action.filename}: {have} of {action.size} bytes")
        digest = hashlib.new(action.algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != action.digest:
            path.unlink()
            self.fail(
                action,
                f"download of {action.filename} does not match its {action.algorithm} "
                f"({digest.hexdigest()} != {action.digest}); nothing was installed",
            )
            return False
        log(event="downloaded", action=action.action_id, size=have, algorithm=action.algorithm)
        self.post_quietly(action, hawkbit.progress_feedback(action, have, f"verified {action.algorithm}"))
        return True

    def _receive(self, action: Action, response: http.client.HTTPResponse, path: Path, have: int) -> int:
        steps = [s for s in PROGRESS_STEPS if s * action.size // 100 > have]
        unsynced = 0
        with open(path, "ab" if have else "wb") as f:
            while True:
                try:
                    chunk = response.read(READ_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    f.flush()
                    os.fsync(f.fileno())
                    raise ShortDownload(
                        f"{action.filename}: connection lost at {have} of {action.size} bytes: {exc!r}"
                    ) from None
                if not chunk:
                    break
                f.write(chunk)
                have += len(chunk)
                unsynced += len(chunk)
                if unsynced >= FSYNC_EVERY:
                    f.flush()
                    os.fsync(f.fileno())
                    unsynced = 0
                if steps and have * 100 >= steps[0] * action.size:
                    steps.pop(0)
                    self.post_quietly(action, hawkbit.progress_feedback(action, have, "downloading"))
            f.flush()
            os.fsync(f.fileno())
        return have

    def install_bundle(self, action: Action) -> None:
        bundle = self.store.bundle(action)
        self.post_quietly(action, hawkbit.progress_feedback(action, action.size, "installing with RAUC"))
        began = self.clock()
        done = subprocess.run([*self.install, str(bundle)], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            self.fail(action, f"rauc install failed with exit status {done.returncode}", *tail)
            return
        tried = read_json(self.tried_file)
        if tried is None or not tried.get("id") or not _written_since(tried, began):
            self.fail(action, f"{' '.join(self.install)} succeeded but left no new {self.tried_file}")
            return
        action = action.advance(Phase.INSTALLED, tried_id=str(tried["id"]))
        self.store.save(action)
        bundle.unlink(missing_ok=True)
        log(
            event="installed",
            action=action.action_id,
            version=action.version,
            slot=tried.get("slot"),
            tried=action.tried_id,
        )
        self.post_quietly(
            action,
            hawkbit.feedback(
                hawkbit.Execution.PROCEEDING,
                hawkbit.Finished.NONE,
                [f"installed {action.version} into slot {tried.get('slot')}; rebooting to try it"],
                action_id=action.action_id,
                progress=(100, 100),
            ),
        )
        rebooted = subprocess.run(list(self.reboot), capture_output=True, text=True, timeout=120)
        log(event="rebooting", command=" ".join(self.reboot), exit_status=rebooted.returncode)

    def report_outcome(self, action: Action) -> Action | None:
        body = hawkbit.outcome_feedback(action, read_json(self.outcome_file))
        if body is None:
            return action
        try:
            self.post(action, body)
        except (OSError, HttpError, DdiError, http.client.HTTPException) as exc:
            log(event="result_not_sent", action=action.action_id, error=exc)
            return action
        self.store.clear()  # reported: this outcome is never sent again
        log(
            event="result_reported",
            action=action.action_id,
            version=action.version,
            finished=body["status"]["result"]["finished"],
        )
        return None

    def fail(self, action: Action, *details: str) -> None:
        body = hawkbit.failure_feedback(action, *details)
        self.post(action, body)
        self.store.clear()
        log(event="action_failed", action=action.action_id, reason=details[0])


def _written_since(tried: Mapping[str, Any], began: float) -> bool:
    """tried.json is this install's (RAUC's post-install handler wrote it just now), not an
    earlier one left behind."""
    try:
        return float(tried.get("installed_at", 0)) >= began - 1.0
    except (TypeError, ValueError):
        return False


def _range_starts_at(content_range: str | None, offset: int) -> bool:
    """``Content-Range: bytes 1048576-4194303/4194304`` starts where the partial file ends."""
    if not content_range or not content_range.startswith("bytes "):
        return False
    start = content_range[6:].split("-", 1)[0]
    return start.isdigit() and int(start) == offset


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        client = Client.from_env()
    except hawkbit_config.ConfigError as exc:
        log(event="config_error", error=exc)
        return EX_CONFIG
    if client is None:
        log(event="not_configured", hint="put updates.toml with a [hawkbit] table in the site folder")
        return 0
    match args:
        case ["run"]:
            client.run_forever()
        case ["once"]:
            log(event="step", sleep_s=client.step())
        case _:
            print("usage: gateway-hawkbit run | once", file=sys.stderr)
            return 2
    return 0
