"""Block coalescing, without I/O: gaps, limits, overlapping points, bit tables."""

import random

import pytest

from drivers.modbus.constants import MAX_READ_REGISTERS, Table
from drivers.modbus.planner import Limits, Span, plan_reads, split_block

HR, IR, CO = Table.HOLDING_REGISTER, Table.INPUT_REGISTER, Table.COIL


def spans(*items):
    return [Span(f"p{i}", table, address, count) for i, (table, address, count) in enumerate(items)]


def test_near_points_share_a_block_and_far_ones_do_not():
    blocks = plan_reads(spans((HR, 0, 2), (HR, 5, 2), (HR, 30, 1)), Limits(max_gap=10))
    assert [(b.start, b.count) for b in blocks] == [(0, 7), (30, 1)]


def test_gap_limit_is_inclusive():
    assert len(plan_reads(spans((HR, 0, 1), (HR, 11, 1)), Limits(max_gap=10))) == 1
    assert len(plan_reads(spans((HR, 0, 1), (HR, 12, 1)), Limits(max_gap=10))) == 2


def test_tables_never_mix():
    blocks = plan_reads(spans((HR, 0, 1), (IR, 1, 1), (CO, 2, 1)))
    assert sorted(b.table for b in blocks) == sorted([HR, IR, CO])


def test_no_block_exceeds_125_registers():
    points = [Span(f"p{i}", HR, i * 2, 2) for i in range(200)]
    blocks = plan_reads(points, Limits(max_gap=10))
    assert all(b.count <= MAX_READ_REGISTERS for b in blocks)
    assert sum(len(b.spans) for b in blocks) == 200
    assert len(blocks) == 4  # 400 registers / 125


def test_device_specific_block_limit():
    blocks = plan_reads([Span(f"p{i}", HR, i, 1) for i in range(40)], Limits(max_registers=16))
    assert [b.count for b in blocks] == [16, 16, 8]


def test_overlapping_points_share_registers():
    blocks = plan_reads(spans((IR, 8, 1), (IR, 8, 1), (IR, 7, 2)), Limits(max_gap=0))
    assert len(blocks) == 1 and blocks[0].start == 7 and blocks[0].count == 2


def test_without_coalescing_every_point_is_a_request():
    points = spans((HR, 0, 1), (HR, 1, 1), (HR, 2, 2))
    assert len(plan_reads(points, Limits(coalesce=False))) == 3


def test_forty_scattered_registers_take_a_handful_of_requests():
    rng = random.Random(7)
    address, points = 0, []
    for i in range(40):
        address += rng.randint(1, 8)
        points.append(Span(f"r{i}", HR, address, rng.choice([1, 2])))
        address += 2
    blocks = plan_reads(points, Limits(max_gap=10))
    assert len(blocks) <= 4
    covered = {s.name for b in blocks for s in b.spans}
    assert covered == {p.name for p in points}
    for block in blocks:
        for span in block.spans:
            assert block.start <= span.address and span.end <= block.end


def test_bit_tables_allow_wider_gaps_and_2000_bits():
    blocks = plan_reads([Span(f"c{i}", CO, i * 100, 1) for i in range(30)], Limits(max_gap=10))
    assert len(blocks) == 2  # 160-bit gaps allowed, 2000-bit cap splits 2901 bits


def test_split_block_drops_the_gaps_but_keeps_contiguous_points_together():
    (block,) = plan_reads(spans((HR, 0, 1), (HR, 1, 1), (HR, 5, 2)), Limits(max_gap=10))
    parts = split_block(block)
    assert [(p.start, p.count) for p in parts] == [(0, 2), (5, 2)]


def test_a_point_wider_than_one_request_is_refused():
    with pytest.raises(ValueError, match="more than one request"):
        plan_reads([Span("s", HR, 0, 126)])
