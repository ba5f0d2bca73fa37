"""One call per item, in parallel: what a task does on every amphora of a load balancer (each
call waits on its own agent, so N amphorae take the time of the slowest, not of all)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
MAX_THREADS = 16


def each(fn: Callable[[T], object], items: Sequence[T]) -> None:
    """fn on every item in parallel; every call finishes, then the first error is raised."""
    if not items:
        return
    with ThreadPoolExecutor(min(len(items), MAX_THREADS)) as pool:
        futures = [pool.submit(fn, item) for item in items]
    for future in futures:
        future.result()
