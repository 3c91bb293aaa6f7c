"""Time one inference callable: first call, warm-up, then perf_counter_ns per call on seeded windows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

STAT_KEYS = ("mean", "std", "p50", "p90", "p99", "min", "max")
# Inputs cycle through this many distinct windows so no runtime can serve a cached answer for one array.
POOL_SIZE = 64
INPUT_DESCRIPTION = f"seeded standard-normal float32 windows (pool of {POOL_SIZE}), i.e. already preprocessed"


@dataclass(frozen=True)
class Timing:
    """What one measured callable produced; latencies are per call (one call = ``batch`` windows)."""

    first_ms: float
    warmup_avg_us: float | None
    latency_us: dict[str, float]
    throughput_per_s: float
    runs: int
    warmup: int
    batch: int

    def as_row(self) -> dict[str, Any]:
        """The timing fields of a result row (see hartool.bench.schema)."""
        return {"first_ms": self.first_ms, "warmup_avg_us": self.warmup_avg_us, "latency_us": self.latency_us,
                "throughput_per_s": self.throughput_per_s, "runs": self.runs, "warmup": self.warmup,
                "batch": self.batch}


def input_pool(window: int | None, channels: int, batch: int = 1, seed: int = 0,
               size: int = POOL_SIZE) -> np.ndarray:
    """``size`` batches of shape (batch, window, channels): standard-normal, i.e. like standardized windows.

    Latency does not depend on the values for these models, and accuracy is measured separately on real
    windows, so the benchmark needs no dataset.
    """
    rng = np.random.default_rng(seed)
    one = (channels,) if window is None else (window, channels)  # a feature model takes a vector per window
    return rng.standard_normal((size, batch, *one)).astype(np.float32)


def summarize_ns(samples_ns: np.ndarray) -> dict[str, float]:
    """Mean, std, p50/p90/p99, min and max of nanosecond samples, in microseconds (2 decimals)."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    if us.size == 0:
        raise ValueError("no timing samples")
    values = {
        "mean": us.mean(), "std": us.std(),
        "p50": np.percentile(us, 50), "p90": np.percentile(us, 90), "p99": np.percentile(us, 99),
        "min": us.min(), "max": us.max(),
    }
    return {k: round(float(values[k]), 2) for k in STAT_KEYS}


def time_calls(fn: Callable[[np.ndarray], Any], pool: np.ndarray, runs: int, warmup: int,
               tick: Callable[[int], None] | None = None, tick_every: int = 0,
               budget_s: float | None = None) -> Timing:
    """Call ``fn`` once (first), ``warmup`` times, then ``runs`` timed times, cycling through ``pool``.

    ``tick(n)`` is called with the number of calls done so far, every ``tick_every`` calls (0 = every
    1% of the total) and at the end; it is how a child process reports progress to the CLI's bar.
    With ``budget_s``, timed runs stop once they have taken that long (at least one run); ``Timing.runs``
    says how many ran. Only the Keras baselines use it: an eager LSTM call can take a second.
    """
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    total = 1 + warmup + runs
    every = tick_every or max(1, total // 100)
    report = tick or (lambda _n: None)
    clock = time.perf_counter_ns
    size = len(pool)

    t0 = clock()
    fn(pool[0])
    first_ns = clock() - t0
    warm = np.empty(warmup, dtype=np.int64)
    for i in range(warmup):
        t0 = clock()
        fn(pool[(i + 1) % size])
        warm[i] = clock() - t0
        if (i + 2) % every == 0:
            report(i + 2)
    samples = np.empty(runs, dtype=np.int64)
    offset = 1 + warmup
    deadline = None if budget_s is None else clock() + int(budget_s * 1e9)
    done = 0
    for i in range(runs):
        x = pool[(offset + i) % size]
        t0 = clock()
        fn(x)
        t1 = clock()
        samples[i] = t1 - t0
        done = i + 1
        if (offset + done) % every == 0:
            report(offset + done)
        if deadline is not None and t1 > deadline:
            break
    report(total)
    samples = samples[:done]
    stats = summarize_ns(samples)
    batch = int(pool.shape[1]) if pool.ndim == 4 else 1
    return Timing(
        first_ms=round(first_ns / 1e6, 3),
        warmup_avg_us=round(float(warm.mean()) / 1000.0, 2) if warmup else None,
        latency_us=stats,
        # Single-stream throughput: windows finished per second when calls run back to back.
        throughput_per_s=round(batch * 1e6 / stats["mean"], 1) if stats["mean"] > 0 else 0.0,
        runs=done, warmup=warmup, batch=batch,
    )
