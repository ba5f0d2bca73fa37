"""Benchmarks (``l3dist bench ...``, JSON output)."""

from __future__ import annotations

import statistics
from typing import Any


def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile, interpolated between the closest ranks (one sample: itself)."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: list[float], digits: int = 2) -> dict[str, Any]:
    """The spread of a benchmark's samples (min, p10, median, p90, max) and their count."""
    return {
        "min": round(min(samples), digits),
        "p10": round(percentile(samples, 10), digits),
        "median": round(statistics.median(samples), digits),
        "p90": round(percentile(samples, 90), digits),
        "max": round(max(samples), digits),
        "samples": len(samples),
    }


def goal(what: str, value: float, target: float, unit: str) -> dict[str, Any]:
    """A figure against its goal (at most ``target``), and whether it was met."""
    return {"goal": what, "target": target, "value": round(value, 3), "unit": unit,
            "met": value <= target}  # fmt: skip
