"""Prometheus metrics, one way for every l3dist process: the client library's default registry,
served over HTTP on ``[metrics] bind_host`` and the process's own port, or (the API) on its
own ``/metrics`` route.

A process that runs several workers (``l3dist api --workers N``) sets
``PROMETHEUS_MULTIPROC_DIR`` before they start: each worker writes its samples there and a
scrape of any of them adds them all up (the client library's multiprocess mode).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Request and step durations: from 1 ms (an API show) to 60 s (a whole create flow).
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


def scrape_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def exposition() -> bytes:
    return generate_latest(scrape_registry())


def serve(host: str, port: int | None) -> bool:
    """Serve this process's metrics on host:port (a thread); nothing when port is None. A port
    already taken (a second worker on one machine with the same configuration) is logged and
    the process runs on without metrics: metrics never stop a control-plane process."""
    if not port:
        return False
    try:
        start_http_server(port, addr=host, registry=scrape_registry())
    except OSError as exc:
        logging.getLogger("l3dist.metrics").warning(
            "metrics not served on %s:%s: %s", host, port, exc
        )
        return False
    return True


def prepare_multiprocess(directory: Path) -> None:
    """An empty directory for the samples of workers about to start; set in the environment
    they inherit."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
