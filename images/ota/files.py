"""Where the tryboot backend and the commit service keep their files, and the one atomic write.

Paths can be moved with environment variables so the host tests run the real scripts on
scratch directories; on the box they are the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Paths:
    config: Path  # p1, the config FAT: autoboot.txt, tryboot.req, slot-state.txt
    cmdline: Path  # the running kernel's command line
    dt_partition: Path  # the Pi firmware's chosen/bootloader/partition (big-endian u32)
    data: Path  # p7's update records (rollback reasons, the tried version)

    @property
    def autoboot(self) -> Path:
        return self.config / "autoboot.txt"

    @property
    def tryboot_request(self) -> Path:
        """Present while a one-shot tryboot is wanted: the reboot helper passes
        ``0 tryboot`` to the kernel, and the emulator's firmware consumes it."""
        return self.config / "tryboot.req"

    @property
    def slot_states(self) -> Path:
        return self.config / "slot-state.txt"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Paths:
        env = dict(os.environ if env is None else env)
        return cls(
            config=Path(env.get("GATEWAY_TRYBOOT_DIR", "/boot/config")),
            cmdline=Path(env.get("GATEWAY_TRYBOOT_CMDLINE", "/proc/cmdline")),
            dt_partition=Path(
                env.get("GATEWAY_TRYBOOT_DT_PARTITION", "/proc/device-tree/chosen/bootloader/partition")
            ),
            data=Path(env.get("GATEWAY_UPDATE_DIR", "/data/update")),
        )


def write_atomic(path: Path, text: str) -> None:
    """New file next to the old one, fsync, rename over it, fsync it again under its new name,
    fsync the directory: after a power cut the firmware sees the old file or the new one,
    never half of one (on FAT the rename is as close to atomic as that filesystem gets).

    The second fsync is for Linux's vfat: a rename over an existing file reuses the old
    file's directory entry and fills in the new file's first cluster and size only when the
    renamed inode is written back, while the old file's clusters are freed in the FAT at
    once. A directory fsync writes the FAT but not that entry, so a power cut then left
    autoboot.txt pointing at a freed cluster (seen in images/test-ota). Fsyncing the renamed
    file writes its directory entry, then the FAT."""
    tmp = path.with_name(path.name + ".new")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for target, flags in ((path, os.O_RDONLY), (path.parent, os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(target, flags)
        try:
            os.fsync(fd)
        except OSError:  # some filesystems refuse fsync on a directory; the rename stands
            pass
        finally:
            os.close(fd)


def read_dt_partition(path: Path) -> int | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
