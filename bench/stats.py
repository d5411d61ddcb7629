"""Percentiles and the few number formats the tables use."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    value = seconds * 1000
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def secs(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds:.2f} s"


def rate(count: float, seconds: float, unit: str = "/s") -> str:
    if seconds <= 0 or math.isnan(seconds):
        return "n/a"
    return f"{count / seconds:,.0f}{unit}"


def p50_p99(seconds: Sequence[float]) -> str:
    return f"p50 {ms(percentile(seconds, 50))}, p99 {ms(percentile(seconds, 99))}"


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"
