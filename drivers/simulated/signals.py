"""Deterministic signal shapes for simulated points: pure functions of time and a seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

WAVEFORMS = ("sine", "random_walk", "constant", "counter", "toggle", "daily")


@dataclass(slots=True)
class Signal:
    waveform: str
    low: float
    high: float
    period: float
    step: float
    rng: random.Random
    value: float = 0.0
    kind: str = "number"
    whole: bool = False

    def __post_init__(self) -> None:
        self.value = (self.low + self.high) / 2 if self.waveform != "counter" else self.low

    def sample(self, t: float) -> float | int | bool:
        span = self.high - self.low
        if self.waveform == "sine":
            v = self.low + span * (0.5 + 0.5 * math.sin(2 * math.pi * t / self.period))
            v += self.rng.gauss(0, span * 0.01)
        elif self.waveform == "daily":
            # Peaks mid-afternoon UTC, like traffic or temperature.
            hour = (t % 86400) / 3600
            v = (
                self.low + span * max(0.0, math.sin(math.pi * (hour - 6) / 14))
                if 6 <= hour <= 20
                else self.low
            )
            v += self.rng.gauss(0, span * 0.03)
        elif self.waveform == "random_walk":
            self.value += self.rng.gauss(0, self.step or span * 0.05)
            v = self.value = min(self.high, max(self.low, self.value))
        elif self.waveform == "counter":
            self.value += self.rng.randint(0, max(1, int(self.step or 3)))
            v = self.value
        elif self.waveform == "toggle":
            return self.rng.random() < 0.5
        else:
            v = self.value
        v = min(self.high, max(self.low, v))
        return int(round(v)) if self.whole else round(v, 2)
