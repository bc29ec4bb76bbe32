"""Call-latency measurement shared by the benchmark scripts (run them from the repository root or
their own folder: `python benchmarks/<script>.py`)."""
from __future__ import annotations

import time


def call_times_us(fn, calls: int, warmup: int = 200) -> list[float]:
    """Sorted wall times in microseconds of `calls` calls of fn(), after `warmup` untimed calls."""
    for _ in range(min(warmup, calls)):
        fn()
    pc = time.perf_counter_ns
    times = []
    for _ in range(calls):
        t = pc()
        fn()
        times.append(pc() - t)
    return sorted(t / 1e3 for t in times)


def median_us(fn, calls: int, warmup: int = 200) -> float:
    times = call_times_us(fn, calls, warmup)
    n = len(times)
    return times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
