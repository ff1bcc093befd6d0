import math

import pytest

from driftwise.observability.recent import LatencyWindow, RateWindow


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_latency_quantiles_are_within_a_few_percent() -> None:
    clock = Clock()
    window = LatencyWindow(seconds=300, clock=clock)
    assert window.summary().calls == 0 and window.summary().p50_ms == window.summary().p99_ms == 0
    durations = [0.001 * (k + 1) for k in range(1000)]  # 1 ms .. 1 s
    for d in durations:
        window.record(d)
    summary = window.summary()
    assert summary.calls == 1000 and summary.window_seconds == 300
    assert summary.p50_ms == pytest.approx(500, rel=0.03)
    assert summary.p99_ms == pytest.approx(990, rel=0.03)


def test_latency_window_forgets_calls_older_than_its_length() -> None:
    clock = Clock()
    window = LatencyWindow(seconds=300, slot_seconds=10, clock=clock)
    window.record(0.5)
    clock.now += 200
    window.record(0.01)
    assert window.summary().calls == 2
    clock.now += 150  # the first call is 350 s old now
    summary = window.summary()
    assert summary.calls == 1 and summary.p99_ms == pytest.approx(10, rel=0.03)
    clock.now += 3600
    assert window.summary().calls == 0


def test_extreme_durations_land_in_the_end_bins() -> None:
    window = LatencyWindow(clock=Clock())
    window.record(0.0)
    window.record(1e6)
    summary = window.summary()
    assert summary.calls == 2 and summary.p50_ms == pytest.approx(0.01) and math.isfinite(summary.p99_ms)


def test_rate_over_the_last_minute() -> None:
    clock = Clock(1000.5)
    rate = RateWindow(seconds=60, clock=clock)
    assert rate.per_second() == 0
    for _ in range(30):
        rate.add(4)
        clock.now += 1
    # 120 added over the last 30 s; the span is 60 s and half of the current second
    assert rate.per_second() == pytest.approx(120 / 60.5)
    clock.now += 61
    assert rate.per_second() == 0
