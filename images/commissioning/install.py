"""Installs a checked site folder into /etc/gateway (on the data partition) and takes the secrets
off the card. Each file is written beside its target, fsynced and renamed, so a power cut leaves
every file either old or new; the card keeps its copy until the install is complete.
"""

from __future__ import annotations

import hashlib
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from .sitefolder import Staging, is_secret


@dataclass(frozen=True, slots=True)
class Owner:
    uid: int
    gid: int

    @classmethod
    def lookup(cls, user: str) -> Owner | None:
        """The daemon's user; None when not running as root (tests), where nothing is chowned."""
        if os.geteuid() != 0:
            return None
        entry = pwd.getpwnam(user)
        return cls(entry.pw_uid, entry.pw_gid)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chown(path: Path, owner: Owner | None) -> None:
    if owner is not None:
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)


def install(
    staging: Staging, target: Path, owner: Owner | None, extra_secrets: set[str] = frozenset()
) -> list[str]:
    """Make ``target`` hold exactly the staged files; returns the relative paths that changed.

    Directories are 0750 and files 0640, secrets 0600, all owned by the daemon's user: it must
    read them, nobody else may read the secrets.
    """
    changed: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o750)
    _chown(target, owner)
    wanted = {p.relative_to(staging.root).as_posix() for p in staging.root.rglob("*") if p.is_file()}
    for rel in sorted(wanted):
        source, dest = staging.root / rel, target / rel
        for parent in reversed(dest.relative_to(target).parents[:-1]):
            directory = target / parent
            directory.mkdir(exist_ok=True)
            directory.chmod(0o750)
            _chown(directory, owner)
        mode = 0o600 if is_secret(rel) or rel in extra_secrets else 0o640
        if dest.is_file() and _digest(dest) == _digest(source):
            dest.chmod(mode)
            _chown(dest, owner)
            continue
        tmp = dest.with_name(f".{dest.name}.new")
        data = source.read_bytes()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        _chown(tmp, owner)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        changed.append(rel)
    for path in sorted(target.rglob("*"), reverse=True):
        rel = path.relative_to(target).as_posix()
        if path.is_file() and rel not in wanted:
            path.unlink()
            changed.append(f"{rel} (removed)")
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    _fsync_dir(target)
    return changed


def remove_secrets_from_card(
    card: Path, staging: Staging, extra_secrets: set[str] = frozenset()
) -> list[str]:
    """Delete the installed secrets from the FAT partition; returns what was removed."""
    removed: list[str] = []
    for rel in sorted(staging.from_card):
        if is_secret(rel) or rel in extra_secrets:
            try:
                (card / rel).unlink()
                removed.append(staging.display(rel))
            except FileNotFoundError:
                pass
    if removed:
        _fsync_dir(card)
        os.sync()
    return removed
