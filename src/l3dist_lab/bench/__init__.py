"""Benchmarks (``l3dist bench ...``, JSON output)."""

from __future__ import annotations

import statistics
from typing import Any


def summary(samples: list[float], digits: int = 2) -> dict[str, Any]:
    """min / median / max of a benchmark's samples, and how many there were."""
    return {
        "min": round(min(samples), digits),
        "median": round(statistics.median(samples), digits),
        "max": round(max(samples), digits),
        "samples": len(samples),
    }
