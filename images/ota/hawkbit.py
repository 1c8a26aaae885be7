"""The hawkBit DDI API as pure code: the server's JSON in, typed values out; feedback bodies out.

Owns what the device-side client decides (what to do with a controller base, which artifact of a
deployment to fetch, what to report for an action and an update outcome) and the in-flight
action as it is kept on the data partition. No sockets, no files: ``hawkbit_client.py`` does I/O.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from . import records

#: how long to wait when the server gave no usable interval (hawkBit's own default is 5 min)
DEFAULT_SLEEP_S = 300.0
#: never poll faster than this, whatever a server says
MIN_SLEEP_S = 1.0
#: hawkBit's sleep is "HH:MM:SS"; a day is the longest a box should go without asking
MAX_SLEEP_S = 24 * 3600.0
_SLEEP = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")
#: digests this client verifies a download against, strongest first (md5 alone is refused)
DIGESTS = ("sha256", "sha1")


class DdiError(ValueError):
    """The server sent something this client cannot act on; the message names the field."""


class Execution(StrEnum):
    PROCEEDING = "proceeding"
    CLOSED = "closed"
    REJECTED = "rejected"
    DOWNLOAD = "download"
    DOWNLOADED = "downloaded"


class Finished(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NONE = "none"


class Phase(StrEnum):
    DOWNLOADING = "downloading"  # the bundle is being fetched into the partial file
    INSTALLING = "installing"  # verified; `rauc install` runs (again, after a reset)
    INSTALLED = "installed"  # RAUC wrote the other slot; waiting for the commit or the rollback


def parse_sleep(text: object, field: str = "config.polling.sleep") -> float:
    """hawkBit's polling interval ``HH:MM:SS`` in seconds, clamped to [1 s, 24 h]."""
    if not isinstance(text, str):
        raise DdiError(f'{field} must be a text "HH:MM:SS", got {text!r}')
    match = _SLEEP.match(text.strip())
    if match is None:
        raise DdiError(f'{field} must be "HH:MM:SS" (e.g. "00:05:00"), got {text!r}')
    hours, minutes, seconds = (int(g) for g in match.groups())
    return min(max(float(hours * 3600 + minutes * 60 + seconds), MIN_SLEEP_S), MAX_SLEEP_S)


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DdiError(f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise DdiError(f"{field} must be a non-empty text, got {value!r}")
    return value


def _href(links: Mapping[str, Any], name: str, field: str) -> str | None:
    if name not in links:
        return None
    link = _object(links[name], f"{field}.{name}")
    href = _text(link.get("href"), f"{field}.{name}.href")
    if not href.startswith(("http://", "https://")):
        raise DdiError(f"{field}.{name}.href must be an http(s) URL, got {href!r}")
    return href


@dataclass(frozen=True, slots=True)
class ControllerBase:
    """``GET {base}/{tenant}/controller/v1/{controllerId}``: when to ask again, and what to do."""

    sleep_s: float
    deployment: str | None = None  # _links.deploymentBase.href
    config_data: str | None = None  # _links.configData.href: the server wants the attributes
    cancel: str | None = None  # _links.cancelAction.href

    @classmethod
    def parse(cls, body: object) -> ControllerBase:
        root = _object(body, "controller base")
        sleep_s = DEFAULT_SLEEP_S
        config = root.get("config")
        if config is not None:
            polling = _object(_object(config, "config").get("polling", {}), "config.polling")
            if "sleep" in polling:
                sleep_s = parse_sleep(polling["sleep"])
        links = _object(root.get("_links", {}), "_links")
        return cls(
            sleep_s=sleep_s,
            deployment=_href(links, "deploymentBase", "_links"),
            config_data=_href(links, "configData", "_links"),
            cancel=_href(links, "cancelAction", "_links"),
        )


@dataclass(frozen=True, slots=True)
class Artifact:
    filename: str
    size: int
    hashes: Mapping[str, str]
    links: Mapping[str, str]  # "download" (https in hawkBit), "download-http"

    def url(self, prefer_plain_http: bool) -> str:
        order = ("download-http", "download") if prefer_plain_http else ("download", "download-http")
        for name in order:
            if name in self.links:
                return self.links[name]
        raise DdiError(f"artifact {self.filename!r} has no _links.download or _links.download-http")

    def digest(self) -> tuple[str, str]:
        """The strongest digest the server gave: (algorithm, lower-case hex)."""
        for algorithm in DIGESTS:
            if algorithm in self.hashes:
                return algorithm, self.hashes[algorithm]
        raise DdiError(
            f"artifact {self.filename!r} has no sha256 or sha1 in hashes "
            f"(got {', '.join(sorted(self.hashes)) or 'none'}); it cannot be verified"
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    part: str
    name: str
    version: str
    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True, slots=True)
class Deployment:
    """``GET …/deploymentBase/{actionId}``."""

    action_id: str
    download: str  # skip | attempt | forced
    update: str
    chunks: tuple[Chunk, ...]
    maintenance_window: str | None = None  # available | unavailable (hawkBit's maintenance windows)

    @property
    def may_download(self) -> bool:
        return self.download != "skip"

    @property
    def may_install(self) -> bool:
        """hawkBit's ``update: skip`` or a maintenance window not open yet: download, wait."""
        return self.update != "skip" and self.maintenance_window != "unavailable"

    @classmethod
    def parse(cls, body: object) -> Deployment:
        root = _object(body, "deploymentBase")
        raw_id = root.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id) == "":
            raise DdiError(f"deploymentBase id must be the action id (text or number), got {raw_id!r}")
        deployment = _object(root.get("deployment"), "deployment")
        handling = {}
        for key in ("download", "update"):
            value = deployment.get(key, "forced")
            if value not in ("skip", "attempt", "forced"):
                raise DdiError(f"deployment.{key} must be skip, attempt or forced, got {value!r}")
            handling[key] = value
        raw_chunks = deployment.get("chunks")
        if not isinstance(raw_chunks, list):
            raise DdiError(f"deployment.chunks must be a list, got {type(raw_chunks).__name__}")
        chunks = tuple(_chunk(c, f"deployment.chunks[{i}]") for i, c in enumerate(raw_chunks))
        window = deployment.get("maintenanceWindow")
        if window is not None and window not in ("available", "unavailable"):
            raise DdiError(f"deployment.maintenanceWindow must be available or unavailable, got {window!r}")
        return cls(
            action_id=str(raw_id),
            download=handling["download"],
            update=handling["update"],
            chunks=chunks,
            maintenance_window=window,
        )

    def bundle(self) -> tuple[Chunk, Artifact]:
        """The one RAUC bundle of this deployment (``*.raucb``, or the only artifact there is)."""
        found = [(c, a) for c in self.chunks for a in c.artifacts]
        if not found:
            raise DdiError(f"action {self.action_id}: deployment.chunks has no artifact to install")
        bundles = [(c, a) for c, a in found if a.filename.endswith(".raucb")]
        if len(bundles) == 1:
            return bundles[0]
        if len(found) == 1:
            return found[0]
        names = ", ".join(a.filename for _, a in found)
        raise DdiError(
            f"action {self.action_id}: expected one RAUC bundle (*.raucb) among the artifacts, got {names}"
        )


def _chunk(value: object, field: str) -> Chunk:
    raw = _object(value, field)
    artifacts = raw.get("artifacts")
    if not isinstance(artifacts, list):
        raise DdiError(f"{field}.artifacts must be a list, got {type(artifacts).__name__}")
    version = raw.get("version", "")
    if not isinstance(version, str):
        raise DdiError(f"{field}.version must be a text, got {version!r}")
    return Chunk(
        part=str(raw.get("part", "")),
        name=str(raw.get("name", "")),
        version=version,
        artifacts=tuple(_artifact(a, f"{field}.artifacts[{i}]") for i, a in enumerate(artifacts)),
    )


def _artifact(value: object, field: str) -> Artifact:
    raw = _object(value, field)
    filename = _text(raw.get("filename"), f"{field}.filename")
    if "/" in filename or filename in (".", ".."):
        raise DdiError(f"{field}.filename must be a plain file name, got {filename!r}")
    size = raw.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise DdiError(f"{field}.size must be a positive number of bytes, got {size!r}")
    hashes: dict[str, str] = {}
    for algorithm, digest in _object(raw.get("hashes", {}), f"{field}.hashes").items():
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]+", digest):
            raise DdiError(f"{field}.hashes.{algorithm} must be hex digits, got {digest!r}")
        hashes[str(algorithm).lower()] = digest.lower()
    lengths = {"sha256": 64, "sha1": 40, "md5": 32}
    for algorithm, length in lengths.items():
        if algorithm in hashes and len(hashes[algorithm]) != length:
            raise DdiError(
                f"{field}.hashes.{algorithm} must be {length} hex digits, got {len(hashes[algorithm])}"
            )
    links_raw = _object(raw.get("_links", {}), f"{field}._links")
    links = {
        name: href
        for name in ("download", "download-http")
        if (href := _href(links_raw, name, f"{field}._links")) is not None
    }
    return Artifact(filename=filename, size=size, hashes=hashes, links=links)


# -- the in-flight action, as kept on the data partition -------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    """One deployment this box works on, from its first byte to its final report."""

    action_id: str
    feedback: str  # …/deploymentBase/{actionId}/feedback
    version: str  # the chunk's version: the bundle's (semver) version
    filename: str
    url: str
    size: int
    algorithm: str
    digest: str
    phase: Phase = Phase.DOWNLOADING
    tried_id: str | None = None  # tried.json's id once RAUC installed it: update.json names it
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "phase": str(self.phase)}

    @classmethod
    def from_json(cls, raw: object) -> Action:
        data = _object(raw, "action")
        try:
            return cls(
                action_id=str(data["action_id"]),
                feedback=str(data["feedback"]),
                version=str(data["version"]),
                filename=str(data["filename"]),
                url=str(data["url"]),
                size=int(data["size"]),
                algorithm=str(data["algorithm"]),
                digest=str(data["digest"]),
                phase=Phase(data["phase"]),
                tried_id=None if data.get("tried_id") is None else str(data["tried_id"]),
                started_at=float(data.get("started_at", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DdiError(f"in-flight action record is damaged: {exc!r}") from None

    def advance(self, phase: Phase, tried_id: str | None = None) -> Action:
        return replace(self, phase=phase, tried_id=tried_id if tried_id is not None else self.tried_id)


def feedback_url(deployment_href: str, action_id: str) -> str:
    base = deployment_href.split("?", 1)[0].rstrip("/")
    if base.rsplit("/", 1)[-1] != action_id:  # …/deploymentBase/{actionId}[?c=…]
        base = f"{base.rsplit('/', 1)[0]}/{action_id}"
    return base + "/feedback"


def start(deployment: Deployment, deployment_href: str, *, prefer_plain_http: bool, now: float) -> Action:
    """The action to carry out for a deployment base (DdiError when it cannot be carried out)."""
    chunk, artifact = deployment.bundle()
    algorithm, digest = artifact.digest()
    return Action(
        action_id=deployment.action_id,
        feedback=feedback_url(deployment_href, deployment.action_id),
        version=chunk.version,
        filename=artifact.filename,
        url=artifact.url(prefer_plain_http),
        size=artifact.size,
        algorithm=algorithm,
        digest=digest,
        started_at=now,
    )


def feedback(
    execution: Execution,
    finished: Finished,
    details: Sequence[str],
    *,
    action_id: str | None = None,
    progress: tuple[int, int] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A feedback body for ``POST …/deploymentBase/{actionId}/feedback``."""
    result: dict[str, Any] = {"finished": str(finished)}
    if progress is not None:
        result["progress"] = {"cnt": progress[0], "of": progress[1]}
    body: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now)),
        "status": {"execution": str(execution), "result": result, "details": [str(d) for d in details]},
    }
    if action_id is not None:
        body["id"] = action_id
    return body


def progress_feedback(action: Action, done: int, note: str) -> dict[str, Any]:
    """Proceeding with a percentage (``Downloaded N%`` is also what goosebit reads progress from)."""
    percent = 100 * done // action.size if action.size else 100
    return feedback(
        Execution.PROCEEDING,
        Finished.NONE,
        [f"Downloaded {percent}%", note],
        action_id=action.action_id,
        progress=(percent, 100),
    )


def failure_feedback(action: Action, *details: str) -> dict[str, Any]:
    return feedback(Execution.CLOSED, Finished.FAILURE, details, action_id=action.action_id)


def outcome_feedback(action: Action, outcome: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The final report of an installed action once the box settled it (``update.json`` from
    gateway-commit: committed in the tried slot, or rolled back with its reason in the old one);
    None while that outcome is not there yet (or is an older update's)."""
    if action.phase is not Phase.INSTALLED or outcome is None or action.tried_id is None:
        return None
    if outcome.get("id") != action.tried_id:
        return None
    if outcome.get("result") == records.COMMITTED:
        return feedback(
            Execution.CLOSED,
            Finished.SUCCESS,
            [f"version {action.version} committed in slot {outcome.get('slot')} after the health gate"],
            action_id=action.action_id,
            progress=(100, 100),
        )
    if outcome.get("result") == records.ROLLED_BACK:
        details = [
            f"rolled back: {outcome.get('reason') or 'no reason recorded'}",
            f"check: {outcome.get('check')}",
            f"running {outcome.get('from_version')} in slot {outcome.get('running_slot')} again",
        ]
        if outcome.get("exit_status") is not None:
            details.append(f"exit status: {outcome.get('exit_status')}")
        return failure_feedback(action, *details)
    return failure_feedback(action, f"the update ended with an unknown result {outcome.get('result')!r}")


def config_data(*, compatible: str, version: str, hw_revision: str = "default") -> dict[str, Any]:
    """``PUT …/configData``: the attributes a server matches bundles against. goosebit keys
    hardware on ``hw_boardname``/``hw_revision`` (a RAUC bundle's ``compatible``) and skips a
    rollout whose version equals ``sw_version``."""
    return {
        "mode": "merge",
        "data": {
            "hw_boardname": compatible,
            "hw_revision": hw_revision,
            "sw_version": version,
            "updater": "city-gateway rauc",
        },
    }


def cancel_stop_id(body: object) -> str:
    """``GET …/cancelAction/{id}``: the action the server wants stopped."""
    root = _object(body, "cancelAction")
    stop = _object(root.get("cancelAction"), "cancelAction").get("stopId")
    if isinstance(stop, bool) or not isinstance(stop, (str, int)) or str(stop) == "":
        raise DdiError(f"cancelAction.stopId must be the action id, got {stop!r}")
    return str(stop)


_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_MAJOR_MINOR = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def bundle_version(image_version: str) -> str:
    """The semver an image version has in its bundle's manifest (the rule of images/bundle):
    itself when it is semver (a leading "v" dropped), X.Y as X.Y.0, else 0.0.0+g<it>."""
    version = image_version[1:] if image_version.startswith("v") else image_version
    if _SEMVER.match(version):
        return version
    if _MAJOR_MINOR.match(version):
        return version + ".0"
    return "0.0.0+g" + re.sub(r"[^0-9A-Za-z.-]", "-", image_version)
