"""Built-in simulated device profiles: a streetlight, a car park, an air-quality station."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimPoint:
    name: str
    unit: str | None = None
    kind: str = "number"
    waveform: str = "sine"
    low: float = 0.0
    high: float = 100.0
    period: float = 600.0
    step: float = 0.0
    writable: bool = False
    initial: float | bool | str | None = None
    whole: bool = False  # counts (cars, people) are whole numbers


PROFILES: dict[str, tuple[SimPoint, ...]] = {
    "streetlight": (
        SimPoint("level", "%", writable=True, initial=100.0, low=0, high=100),
        SimPoint("power", "W", waveform="constant", low=0, high=120),
        SimPoint("lux", "lx", waveform="daily", low=0, high=20000),
        SimPoint("traffic", "veh/min", waveform="daily", low=0, high=30),
    ),
    "parking": (
        SimPoint("occupied", None, waveform="random_walk", low=0, high=120, step=4, whole=True),
        SimPoint("capacity", None, waveform="constant", low=120, high=120, whole=True),
        SimPoint("sign", None, kind="string", writable=True, initial="FREE"),
    ),
    "air_quality": (
        SimPoint("pm2_5", "ug/m3", waveform="random_walk", low=2, high=80, step=1.5),
        SimPoint("pm10", "ug/m3", waveform="random_walk", low=5, high=120, step=2.5),
        SimPoint("temperature", "Cel", waveform="sine", low=4, high=22, period=3600),
        SimPoint("humidity", "%RH", waveform="sine", low=40, high=90, period=5400),
    ),
}
