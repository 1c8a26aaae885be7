"""Problems found in a technician's file: where they are and what to do about them.

Every config, profile and rule validator reports through ``Problems`` so the CLI can list
all of them at once, each with file, line where known, key and a did-you-mean.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file a person wrote: the file, the key (``devices[2].options.port``),
    what is wrong in plain words, and the line when it is known."""

    file: str
    key: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    import difflib  # only a config with a mistake needs it: the daemon does not load it

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class ConfigError(Exception):
    """Raised when a file cannot be used; carries every problem found, not just the first.

    ``nonfatal`` are problems found alongside that alone would not stop the daemon (rule files).
    """

    def __init__(self, problems: list[Problem], nonfatal: list[Problem] | None = None):
        self.problems = problems
        self.nonfatal = list(nonfatal or [])
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Problems:
    """Collects problems for one file; ``locate`` maps a dotted key to a line number.

    ``warnings`` are worth a technician's look but never stop a start (a serial adapter that
    is not plugged in yet); they do not count towards ``bool(problems)``.
    """

    file: str
    locate: KeyLocator | None = None
    items: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def add(self, key: str, message: str) -> None:
        line = self.locate.line_of(key) if self.locate else None
        self.items.append(Problem(self.file, key, message, line))

    def warn(self, key: str, message: str) -> None:
        line = self.locate.line_of(key) if self.locate else None
        self.warnings.append(Problem(self.file, key, message, line))

    def extend(self, other: Problems) -> None:
        self.items.extend(other.items)

    def unknown_keys(self, prefix: str, table: dict[str, object], known: Iterable[str]) -> None:
        known = list(known)
        for key in table:
            if key not in known:
                where = f"{prefix}.{key}" if prefix else key
                self.add(where, f"unknown key '{key}'{did_you_mean(key, known)}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(list(self.items))


class KeyLocator:
    """Finds the line of a dotted TOML key such as ``devices[2].options.port``.

    tomllib gives no positions, so this scans table headers and ``key =`` lines. It is a
    best effort for error messages: an unmatched key simply has no line.
    """

    def __init__(self, text: str):
        self._lines: dict[str, int] = {}
        array_counts: dict[str, int] = {}
        table = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                name = line[2:].split("]]", 1)[0].strip()
                index = array_counts.get(name, 0)
                array_counts[name] = index + 1
                # a new [[rule]] starts its own [[rule.trigger]] numbering, as TOML does
                for nested in [k for k in array_counts if k.startswith(name + ".")]:
                    del array_counts[nested]
                table = self._with_index(name, index, array_counts)
                self._lines.setdefault(table, number)
            elif line.startswith("["):
                name = line[1:].split("]", 1)[0].strip()
                table = self._with_index(name, None, array_counts)
                self._lines.setdefault(table, number)
            elif "=" in line:
                key = line.split("=", 1)[0].strip().strip('"').strip("'")
                full = f"{table}.{key}" if table else key
                self._lines.setdefault(full, number)

    @staticmethod
    def _with_index(name: str, index: int | None, counts: dict[str, int]) -> str:
        # A sub-table of an array element, e.g. [devices.options] after the 3rd [[devices]],
        # belongs to devices[2].
        parts = name.split(".")
        out: list[str] = []
        for i, part in enumerate(parts):
            prefix = ".".join(parts[: i + 1])
            if i == len(parts) - 1 and index is not None:
                out.append(f"{part}[{index}]")
            elif prefix in counts and i < len(parts) - 1:
                out.append(f"{part}[{counts[prefix] - 1}]")
            else:
                out.append(part)
        return ".".join(out)

    def line_of(self, key: str) -> int | None:
        probe = key
        while probe:
            if probe in self._lines:
                return self._lines[probe]
            if "." not in probe and "[" not in probe:
                break
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut]
        return None


def read_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add("", "file not found")
    except PermissionError:
        problems.add("", "permission denied reading the file")
    except UnicodeDecodeError as exc:
        problems.add("", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    except IsADirectoryError:
        problems.add("", "is a directory, expected a file")
    except OSError as exc:  # a name longer than the filesystem allows, an I/O error
        problems.add("", f"cannot read the file: {exc.strerror or exc}")
    except ValueError:  # the path holds a NUL character
        problems.add("", "cannot read the file: its name contains a NUL character")
    return None


def load_toml(path: Path, problems: Problems) -> dict[str, object] | None:
    """The parsed TOML at ``path``, or None with the reason added to ``problems``.

    On success ``problems`` learns the file's key lines, so later problems carry them.
    """
    text = read_text(path, problems)
    if text is None:
        return None
    return parse_toml(text, problems)


def parse_toml(text: str, problems: Problems) -> dict[str, object] | None:
    """``text`` parsed as TOML, or None with the reason added to ``problems``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add("", f"malformed TOML: {exc}")
        return None
    except RecursionError:
        problems.add("", "malformed TOML: arrays or tables nested too deeply")
        return None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        problems.add("", f"malformed TOML: {exc}")
        return None
    problems.locate = KeyLocator(text)
    return raw
