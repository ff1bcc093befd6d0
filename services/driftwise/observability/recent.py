"""What the server did lately, always on and cheap (InsightService.GetServerStats; the Prometheus
endpoint is optional and keeps no window of its own):

- `LatencyWindow`: durations of the last few minutes, as histograms of 10 s slots with
  log-spaced bins (5% apart), so recording is O(1), memory is fixed whatever the rate, and a
  quantile is within 2.5% of the true one;
- `RateWindow`: how many things happened per second over the last minute, in 1 s slots.

Times are a monotonic clock's (a wall-clock step cannot empty or stretch a window).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

_GROWTH = 1.05  # one bin's upper bound over its lower bound
_SMALLEST = 1e-5  # seconds: the first bin holds everything faster (10 us)
_BINS = math.ceil(math.log(1e3 / _SMALLEST) / math.log(_GROWTH)) + 1  # up to 1,000 s, then the last bin


@dataclass(frozen=True, slots=True)
class LatencySummary:
    calls: int
    p50_ms: float  # 0 without calls
    p99_ms: float
    window_seconds: float


class LatencyWindow:
    def __init__(
        self,
        seconds: float = 300.0,
        slot_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self._slot_seconds = slot_seconds
        self._clock = clock
        slots = math.ceil(seconds / slot_seconds)
        self._numbers = [-1] * slots  # slot number each histogram holds now
        self._bins = [[0] * _BINS for _ in range(slots)]

    def record(self, seconds: float) -> None:
        number = math.floor(self._clock() / self._slot_seconds)
        slot = number % len(self._numbers)
        if self._numbers[slot] != number:
            self._numbers[slot] = number
            self._bins[slot] = [0] * _BINS
        self._bins[slot][_bin(seconds)] += 1

    def summary(self) -> LatencySummary:
        """Calls and quantiles over the window (the slots of the last `seconds`, the current one
        included)."""
        newest = math.floor(self._clock() / self._slot_seconds)
        oldest = newest - len(self._numbers) + 1
        merged = [0] * _BINS
        for number, bins in zip(self._numbers, self._bins, strict=True):
            if oldest <= number <= newest:
                for i, n in enumerate(bins):
                    merged[i] += n
        calls = sum(merged)
        return LatencySummary(
            calls, _quantile(merged, calls, 0.5) * 1e3, _quantile(merged, calls, 0.99) * 1e3, self.seconds
        )


class RateWindow:
    def __init__(self, seconds: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._numbers = [-1] * (seconds + 1)  # the current second is partial: one more slot
        self._counts = [0] * (seconds + 1)

    def add(self, n: int = 1) -> None:
        number = math.floor(self._clock())
        slot = number % len(self._numbers)
        if self._numbers[slot] != number:
            self._numbers[slot], self._counts[slot] = number, 0
        self._counts[slot] += n

    def per_second(self) -> float:
        """What was added in the last `seconds` full seconds and the current second so far, per
        second of that span."""
        now = self._clock()
        newest = math.floor(now)
        total = sum(
            n
            for number, n in zip(self._numbers, self._counts, strict=True)
            if newest - number <= self.seconds
        )
        return total / (self.seconds + now - newest)


def _bin(seconds: float) -> int:
    if seconds <= _SMALLEST:
        return 0
    return min(_BINS - 1, 1 + int(math.log(seconds / _SMALLEST) / math.log(_GROWTH)))


def _quantile(bins: list[int], calls: int, q: float) -> float:
    """Seconds: the geometric middle of the bin holding the q-quantile call (0 without calls)."""
    if calls == 0:
        return 0.0
    rank = max(1, math.ceil(q * calls))
    seen = 0
    for i, n in enumerate(bins):
        seen += n
        if seen >= rank:
            if i == 0:
                return _SMALLEST
            low = _SMALLEST * _GROWTH ** (i - 1)
            return low * math.sqrt(_GROWTH)
    return _SMALLEST * _GROWTH ** (_BINS - 1)
