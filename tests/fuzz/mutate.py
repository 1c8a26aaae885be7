"""Mutation fuzzing on top of hypothesis: real valid inputs, bent by a few random edits.

A seed that is already valid gets the fuzzer past the first length or checksum test, so the
edits land deep in the parser. Hypothesis picks the seed and the edits' random source, so a
failure is reported with a reproducible example.

``FUZZ`` is the settings every fuzz test uses: ``GATEWAY_FUZZ_EXAMPLES`` (default 10000) sets
the number of examples, e.g. ``GATEWAY_FUZZ_EXAMPLES=100000 pytest tests/fuzz``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "10000"))

settings.register_profile(
    "gateway-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    # The example database would only replay old crashes; a fixed run is easier to reason about.
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("gateway-fuzz")

#: values that break careless number and text handling, spliced into text inputs
HOSTILE_TEXT = (
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "-0",
    "0x10",
    "1_000",
    "99999999999999999999999",
    "9" * 400,
    "9" * 5000,
    "²",
    "٣",
    "\u0000",
    "\udcff",
    "\ufeff",
    "\r\n",
    "\n",
    "\t",
    '"',
    "'",
    "\\",
    "\\u0000",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "#",
    "null",
    "true",
    "false",
    "[" * 40,
    "{" * 40,
    "A" * 300,
    "../" * 20,
    "/",
    "%",
    "é",
    "€",
)
#: byte values and runs that sit on boundaries
HOSTILE_BYTES = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff" * 4, b"\x00" * 4, b"\r\n", b"\n", b"$", b"*")


def _mutate_bytes(data: bytes, rng: random.Random, edits: int, extras: Sequence[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(edits):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip one bit
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # set one byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 2:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 3 and buf:  # delete a run
            del buf[pos : pos + rng.randrange(1, 9)]
        elif op == 4 and buf:  # duplicate a run
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randrange(1, 33)]
        elif op == 5:  # splice a hostile value
            buf[pos:pos] = rng.choice(extras)
        else:  # truncate
            del buf[pos:]
    return bytes(buf)


def _mutate_text(text: str, rng: random.Random, edits: int, extras: Sequence[str]) -> str:
    chars = list(text)
    for _ in range(edits):
        op = rng.randrange(6)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 and chars:  # replace one character
            chars[min(pos, len(chars) - 1)] = chr(
                rng.choice((rng.randrange(32, 127), rng.randrange(0x110000)))
            )
        elif op == 1 and chars:  # delete a run
            del chars[pos : pos + rng.randrange(1, 9)]
        elif op == 2 and chars:  # duplicate a run (repeats keys, tables, brackets)
            start = rng.randrange(len(chars))
            chars[pos:pos] = chars[start : start + rng.randrange(1, 65)]
        elif op == 3:  # splice a hostile value
            chars[pos:pos] = list(rng.choice(extras))
        elif op == 4 and chars:  # replace a word-ish run with a hostile value
            chars[pos : pos + rng.randrange(1, 6)] = list(rng.choice(extras))
        else:  # insert printable ASCII
            chars[pos:pos] = [chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 5))]
    text = "".join(chars)
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def mutated_bytes(
    seeds: Sequence[bytes], extras: Sequence[bytes] = HOSTILE_BYTES, max_edits: int = 8
) -> st.SearchStrategy[bytes]:
    """A seed with 0..max_edits edits; 0 keeps the valid seed itself in the mix.

    One drawn integer seeds everything else: hypothesis' per-draw cost, not the parser,
    would otherwise dominate a 10,000-example run.
    """
    pool = list(seeds)

    def build(n: int) -> bytes:
        rng = random.Random(n)
        return _mutate_bytes(rng.choice(pool), rng, rng.randrange(max_edits + 1), extras)

    return st.integers(0, 2**64 - 1).map(build)


def mutated_text(
    seeds: Sequence[str], extras: Sequence[str] = HOSTILE_TEXT, max_edits: int = 6
) -> st.SearchStrategy[str]:
    pool = list(seeds)

    def build(n: int) -> str:
        rng = random.Random(n)
        return _mutate_text(rng.choice(pool), rng, rng.randrange(max_edits + 1), extras)

    return st.integers(0, 2**64 - 1).map(build)


def bytes_case(n: int, seeds: Sequence[bytes], extras: Sequence[bytes] = HOSTILE_BYTES) -> bytes:
    """The input ``fuzz_bytes`` draws for the integer ``n`` (a failure report shows ``build(n)``)."""
    rng = random.Random(n)
    if rng.randrange(10) == 0:
        return rng.randbytes(rng.randrange(300))
    return _mutate_bytes(rng.choice(list(seeds)), rng, rng.randrange(9), extras)


def text_case(n: int, seeds: Sequence[str], extras: Sequence[str] = HOSTILE_TEXT) -> str:
    """The input ``fuzz_text`` draws for the integer ``n``."""
    rng = random.Random(n)
    if rng.randrange(10) == 0:
        return "".join(
            chr(rng.choice((rng.randrange(32, 127), rng.randrange(0xD800))))
            for _ in range(rng.randrange(200))
        )
    return _mutate_text(rng.choice(list(seeds)), rng, rng.randrange(7), extras)


def fuzz_bytes(seeds: Sequence[bytes], extras: Sequence[bytes] = HOSTILE_BYTES) -> st.SearchStrategy[bytes]:
    """Mostly mutated seeds; one in ten is plain random bytes, which no seed would lead to."""
    pool = list(seeds)

    def build(n: int) -> bytes:
        return bytes_case(n, pool, extras)

    return st.integers(0, 2**64 - 1).map(build)


def fuzz_text(seeds: Sequence[str], extras: Sequence[str] = HOSTILE_TEXT) -> st.SearchStrategy[str]:
    """Mostly mutated seeds; one in ten is random text."""
    pool = list(seeds)

    def build(n: int) -> str:
        return text_case(n, pool, extras)

    return st.integers(0, 2**64 - 1).map(build)
