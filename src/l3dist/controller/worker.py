"""The controller worker: takes jobs from the database queue and runs their flows with taskflow,
persisting every task's state in the database (logbook and flow detail named by the job id).

A worker that dies mid-flow stops heartbeating; another worker (or the same one restarted)
takes the job over and resumes the flow: completed tasks are not run again, the interrupted one
is, and a flow that fails for good reverts, leaving its objects in ERROR, never PENDING_*.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from taskflow import engines
from taskflow import exceptions as tf_exc
from taskflow.persistence import models
from taskflow.persistence.backends.impl_sqlalchemy import SQLAlchemyBackend

from l3dist.amphora_client.driver import AmphoraDriver
from l3dist.certificates import LocalCA, client_context
from l3dist.common import plugins
from l3dist.common.config import Config
from l3dist.common.metrics import DURATION_BUCKETS
from l3dist.compute.base import AbstractComputeDriver
from l3dist.controller import flows
from l3dist.controller.heartbeat import heartbeat_settings
from l3dist.controller.services import Services
from l3dist.db import jobs
from l3dist.db.models import WorkerJob, utcnow
from l3dist.db.session import Database
from l3dist.distributor.base import AbstractDistributorDriver
from l3dist.network import drivers as network_drivers

log = logging.getLogger(__name__)
# Threads for the flows' tasks, per job the worker runs at once (a flow's widest step is one
# task per amphora: a wider one queues on the pool, it does not fail).
TASK_THREADS_PER_JOB = 16


def services_from_config(config: Config, db: Database) -> Services:
    """The drivers the configuration names (entry points, ``l3dist.common.plugins``) bound
    together; a driver that is not configured or not installed is a clear error."""
    ctl = config.controller
    compute: AbstractComputeDriver = plugins.load(
        plugins.COMPUTE, ctl.compute_driver, "compute driver"
    )(db, config)
    distributor: AbstractDistributorDriver = plugins.load(
        plugins.DISTRIBUTOR, ctl.distributor_driver, "distributor driver"
    )()
    ca = LocalCA(config.certificates.ca_dir)
    ca.ensure()  # created on first start
    amphora: AmphoraDriver = plugins.load(plugins.AMPHORA, ctl.amphora_driver, "amphora driver")(
        lambda: client_context(ca.directory)
    )
    services = Services(
        db=db,
        network=network_drivers.load(config.network.driver, db),
        compute=compute,
        distributor=distributor,
        ca=ca,
        heartbeat=heartbeat_settings(config),
        amphora=amphora,
        speaker_driver=ctl.speaker_driver,
        drain_timeout=ctl.drain_timeout,
    )
    distributor.bind(services)
    return services


FLOWS = Histogram(
    "l3dist_worker_flow_duration_seconds",
    "Jobs run by this worker, by flow and outcome (done, failed), from start to end",
    ["flow", "outcome"],
    buckets=DURATION_BUCKETS,
)
RESUMED = Counter(
    "l3dist_worker_flows_resumed",
    "Jobs this worker took over from a silent worker and resumed, by flow",
    ["flow"],
)


class QueueCollector(Collector):
    """The job queue as the database holds it, read on each scrape: jobs pending and
    running (any worker's), by flow."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue = GaugeMetricFamily(
            "l3dist_worker_queue_depth",
            "Jobs in the queue, by flow and state",
            labels=["flow", "state"],
        )
        with self.db.session(writer=False) as session:
            for flow, state, count in jobs.queue_depth(session):
                queue.add_metric([flow, state], count)
        yield queue


class FlowPersistence(SQLAlchemyBackend):  # type: ignore[misc]
    """taskflow's SQLAlchemy persistence, with one connection object for every call.

    taskflow asks its backend for a connection on every state change of every atom, and
    each new one builds the table definitions again: about 10 ms each, most of a short
    flow's time (5 tasks took 250 ms, 65 ms with this; measured on SQLite). The object holds
    no database connection (each call checks one out of the engine's pool, and its close()
    does nothing), so one serves every thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shared_lock = threading.Lock()
        self._shared: Any = None

    def get_connection(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                self._shared = super().get_connection()
            return self._shared


class Worker:
    def __init__(self, config: Config, services: Services) -> None:
        self.config = config.controller
        self.services = services
        self.db = services.db
        self.owner = jobs.owner_name(uuid.uuid4().hex[:8])
        # taskflow reads then writes in one transaction, from parallel tasks: on SQLite it must
        # take the write lock at BEGIN or a later write fails on its stale snapshot.
        self.backend = FlowPersistence(
            {"connection": self.db.url},
            engine=self.db.engine.execution_options(sqlite_immediate=True),
        )
        self.stopping = threading.Event()
        self.running: set[str] = set()
        self.lock = threading.Lock()
        # The flows' tasks run on one pool that outlives the jobs: an engine that made its own
        # pool would shut it down at the end of every job, which takes taskflow's (futurist's)
        # idle threads up to a second to notice, and the load balancer's next job waits for it.
        self.tasks = ThreadPoolExecutor(
            TASK_THREADS_PER_JOB * self.config.max_parallel_jobs, "task"
        )

    # -- the loop ---------------------------------------------------------------------------

    def run_forever(self) -> None:
        beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beat.start()
        with ThreadPoolExecutor(self.config.max_parallel_jobs, "flow") as pool:
            while not self.stopping.is_set():
                if not self.run_one(pool):
                    self.stopping.wait(self.config.poll_interval)
        self.tasks.shutdown(wait=True)
        log.info("worker %s stopped", self.owner)

    def run_one(self, pool: ThreadPoolExecutor | None = None) -> bool:
        """Take one job and run it (in pool when given); False when there was none."""
        with self.lock:
            if len(self.running) >= self.config.max_parallel_jobs:
                return False
        if not jobs.claimable(self.db, self.owner, self.config.job_stale_after):
            return False
        job = jobs.claim(self.db, self.owner, self.config.job_stale_after)
        if job is None:
            return False
        with self.lock:
            self.running.add(job.id)
        if pool is None:
            self._run(job)
        else:
            pool.submit(self._run, job)
        return True

    def stop(self) -> None:
        self.stopping.set()

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.config.heartbeat_interval):
            with contextlib.suppress(Exception):
                jobs.heartbeat(self.db, self.owner)

    # -- one job ----------------------------------------------------------------------------

    def _run(self, job: WorkerJob) -> None:
        started = time.monotonic()
        waited = (utcnow() - job.created_at).total_seconds() if job.created_at else 0.0
        try:
            error = self.execute(job)
        except Exception:  # a bug, not a flow failure: record it, keep the worker alive
            error = traceback.format_exc()
        finally:
            with self.lock:
                self.running.discard(job.id)
        jobs.finish(self.db, job.id, self.owner, error)
        FLOWS.labels(job.flow, "failed" if error else "done").observe(time.monotonic() - started)
        # What an operator reads to see where a change's time goes: queued, then run.
        log.info("job %s (%s %s) %s in %.0f ms, %.0f ms after it was queued", job.id, job.flow,
                 job.target_id, "failed" if error else "done",
                 (time.monotonic() - started) * 1000, waited * 1000)  # fmt: skip
        if error:
            log.error("job %s (%s %s) failed: %s", job.id, job.flow, job.target_id, error)

    def execute(self, job: WorkerJob) -> str | None:
        """Run (or resume) the job's flow; the error text when it failed and reverted."""
        arguments = flows.plan(self.services, job.flow, job.target_id, dict(job.arguments))
        if arguments != job.arguments:
            jobs.save_arguments(self.db, job.id, arguments)
        flow = flows.build(self.services, job.flow, job.target_id, arguments)
        book, detail = self._flow_detail(job)
        engine = engines.load(
            flow,
            store=flows.store(job.target_id, job.id, job.flow, arguments),
            book=book,
            flow_detail=detail,
            backend=self.backend,
            engine="parallel",
            executor=self.tasks,
        )
        try:
            engine.run()
        except tf_exc.WrappedFailure as exc:
            return "; ".join(str(f.exception) for f in exc)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def _flow_detail(self, job: WorkerJob) -> tuple[Any, Any]:
        with contextlib.closing(self.backend.get_connection()) as conn:
            try:
                book = conn.get_logbook(job.id)
                detail = book.find(job.id)
                if detail is not None:
                    log.info("resuming job %s (%s) from %s", job.id, job.flow, detail.state)
                    RESUMED.labels(job.flow).inc()
                    return book, detail
            except tf_exc.NotFound:
                book = models.LogBook(f"job-{job.id}", uuid=job.id)
            detail = models.FlowDetail(job.flow, uuid=job.id)
            book.add(detail)
            conn.save_logbook(book)
            return book, detail
