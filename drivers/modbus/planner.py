"""Coalescing of a device's points into as few block reads as the protocol allows.

Sans-IO: point addresses in, an ordered list of (table, start, count) reads out. A block
never exceeds the per-request limit and never bridges more unused registers than allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .constants import MAX_READ_BITS, MAX_READ_REGISTERS, Table


@dataclass(frozen=True, slots=True)
class Span:
    """One point's footprint: ``count`` registers (or bits) from ``address`` in ``table``."""

    name: str
    table: Table
    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class Block:
    """One read request and the points it serves."""

    table: Table
    start: int
    count: int
    spans: tuple[Span, ...]

    @property
    def end(self) -> int:
        return self.start + self.count

    def describe(self) -> str:
        return f"{self.table}:{self.start}+{self.count}"


@dataclass(frozen=True, slots=True)
class Limits:
    max_gap: int = 10
    max_registers: int = MAX_READ_REGISTERS
    max_bits: int = MAX_READ_BITS
    coalesce: bool = True

    def size_limit(self, table: Table) -> int:
        return self.max_bits if table.is_bit else self.max_registers

    def gap_limit(self, table: Table) -> int:
        # Bits are cheap: a gap of G registers is worth 16*G bits on the wire.
        return self.max_gap * 16 if table.is_bit else self.max_gap


_TABLE_ORDER = {t: i for i, t in enumerate(Table)}


def plan_reads(spans: Iterable[Span], limits: Limits = Limits()) -> list[Block]:
    """Group ``spans`` into block reads.

    Points sharing registers (bits of one status word, overlapping views) share a block.
    With ``coalesce`` off every point gets its own request, which is what a naive poller does.
    """
    ordered = sorted(spans, key=lambda s: (_TABLE_ORDER[s.table], s.address, -s.count, s.name))
    blocks: list[Block] = []
    current: list[Span] = []
    start = end = 0
    for span in ordered:
        if span.count > limits.size_limit(span.table):
            raise ValueError(
                f"point {span.name} spans {span.count} registers, more than one request "
                f"may read ({limits.size_limit(span.table)})"
            )
        if current and _fits(current[0].table, start, end, span, limits):
            current.append(span)
            end = max(end, span.end)
            continue
        if current:
            blocks.append(Block(current[0].table, start, end - start, tuple(current)))
        current, start, end = [span], span.address, span.end
    if current:
        blocks.append(Block(current[0].table, start, end - start, tuple(current)))
    return blocks


def _fits(table: Table, start: int, end: int, span: Span, limits: Limits) -> bool:
    if span.table is not table or not limits.coalesce:
        return False
    new_end = max(end, span.end)
    if new_end - start > limits.size_limit(table):
        return False
    if span.address < end:  # overlapping points (bits of one status word) share
        return True
    return span.address - end <= limits.gap_limit(table)


def split_block(block: Block, apart: bool = False) -> list[Block]:
    """Re-plan ``block`` without bridging gaps, or with every point apart when ``apart``.

    Used when a device refuses a register inside the block: first drop the gaps, and if the
    contiguous run is still refused, read each point on its own so one missing register
    costs only its own point.
    """
    # max_gap -1 keeps only overlapping points (bits of one word) together.
    gap = -1 if apart else 0
    return plan_reads(block.spans, Limits(max_gap=gap, max_registers=block.count, max_bits=block.count))


def requests_per_cycle(spans: Sequence[Span], limits: Limits) -> int:
    return len(plan_reads(spans, limits))
