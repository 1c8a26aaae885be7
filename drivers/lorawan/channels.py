"""Regional channel plans as data: data rates, RX1 frequency and data-rate offset tables,
RX2 defaults. Adding a region is adding a ``ChannelPlan`` value, not a code branch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grid:
    """Evenly spaced channels: index ``first_index + n`` sits at ``start + n * step`` MHz."""

    start: float
    step: float
    count: int
    first_index: int = 0

    def index_of(self, freq: float) -> int | None:
        n = round((freq - self.start) / self.step)
        if 0 <= n < self.count and abs(self.start + n * self.step - freq) < 0.001:
            return self.first_index + n
        return None

    def frequency(self, index: int) -> float:
        return round(self.start + (index - self.first_index) * self.step, 4)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    name: str
    #: data rate index -> LoRa modulation name ("SF7BW125"); None for non-LoRa rates
    data_rates: tuple[str | None, ...]
    #: rx1_data_rate[uplink DR][RX1DROffset] -> downlink DR
    rx1_data_rate: tuple[tuple[int, ...], ...]
    #: uplink channel grids; empty means RX1 uses the uplink frequency itself
    uplink_grids: tuple[Grid, ...]
    #: downlink channels; RX1 uses channel (uplink index mod count)
    rx1_grid: Grid | None
    rx2_frequency: float
    rx2_data_rate: int
    downlink_power: int  # dBm at the antenna port
    net_id_default: int = 0

    def data_rate_index(self, datr: str, *, downlink: bool = False) -> int:
        """DR index of a modulation name; uplinks prefer the lowest index that matches."""
        indices = [i for i, name in enumerate(self.data_rates) if name == datr]
        if not indices:
            raise ValueError(f"data rate {datr} is not part of {self.name}")
        return indices[-1] if downlink else indices[0]

    def datr(self, index: int) -> str:
        name = self.data_rates[index] if 0 <= index < len(self.data_rates) else None
        if name is None:
            raise ValueError(f"{self.name} has no LoRa data rate DR{index}")
        return name

    def rx1(self, uplink_freq: float, uplink_datr: str, dr_offset: int) -> tuple[float, str]:
        up_dr = self.data_rate_index(uplink_datr)
        row = self.rx1_data_rate[up_dr]
        down_dr = row[min(dr_offset, len(row) - 1)]
        if self.rx1_grid is None:
            return uplink_freq, self.datr(down_dr)
        for grid in self.uplink_grids:
            index = grid.index_of(uplink_freq)
            if index is not None:
                return self.rx1_grid.frequency(index % self.rx1_grid.count), self.datr(down_dr)
        raise ValueError(f"{uplink_freq} MHz is not an uplink channel of {self.name}")

    def rx2(self) -> tuple[float, str]:
        return self.rx2_frequency, self.datr(self.rx2_data_rate)


EU868 = ChannelPlan(
    name="EU868",
    data_rates=("SF12BW125", "SF11BW125", "SF10BW125", "SF9BW125", "SF8BW125", "SF7BW125", "SF7BW250", None),
    rx1_data_rate=tuple(tuple(max(0, up - offset) for offset in range(6)) for up in range(8)),
    uplink_grids=(),
    rx1_grid=None,
    rx2_frequency=869.525,
    rx2_data_rate=0,
    downlink_power=14,
)

US915 = ChannelPlan(
    name="US915",
    data_rates=(
        "SF10BW125",
        "SF9BW125",
        "SF8BW125",
        "SF7BW125",
        "SF8BW500",
        None,
        None,
        None,
        "SF12BW500",
        "SF11BW500",
        "SF10BW500",
        "SF9BW500",
        "SF8BW500",
        "SF7BW500",
    ),
    rx1_data_rate=(
        (10, 9, 8, 8),
        (11, 10, 9, 8),
        (12, 11, 10, 9),
        (13, 12, 11, 10),
        (13, 13, 12, 11),
    ),
    uplink_grids=(Grid(902.3, 0.2, 64, 0), Grid(903.0, 1.6, 8, 64)),
    rx1_grid=Grid(923.3, 0.6, 8, 0),
    rx2_frequency=923.3,
    rx2_data_rate=8,
    downlink_power=20,
)

PLANS: dict[str, ChannelPlan] = {plan.name: plan for plan in (EU868, US915)}
