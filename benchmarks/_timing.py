"""Call-latency measurement and result tables shared by the benchmark scripts (run them from the repository root or
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


def print_table(header, rows, markdown: bool) -> None:
    """Rows of strings as a Markdown table, or as aligned plain-text columns."""
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(str(r[i])) for r in list(rows) + [header]) for i in range(len(header))]
    for r in [header] + list(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
