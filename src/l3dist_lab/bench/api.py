"""``l3dist bench api``: REST API latency and throughput with 10,000 load balancers in the database.

For each database (SQLite, and PostgreSQL when a server URL is given) it seeds the load balancers,
starts ``l3dist api`` with one worker process, and measures over HTTP on loopback:
p50/p99 of create, show and a paginated list (limit 100, following ``next`` links), and requests
per second of show with several concurrent clients.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text

from l3dist.common import constants as c
from l3dist.db.models import LoadBalancer, Vip, utcnow
from l3dist.db.session import Database, make_engine, upgrade
from l3dist.network.static import StaticNetworkDriver
from l3dist_lab.catalog import lab_catalog
from l3dist_lab.networks import register_lab_networks


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return round(ordered[index], 2)


def latency(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": round(statistics.mean(samples), 2),
        "samples": len(samples),
    }


def seed(url: str, count: int) -> list[str]:
    """Insert count load balancers (with VIPs on a subnet of their own) in one transaction."""
    engine = make_engine(url)
    now = utcnow()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    lbs = [{"id": i, "project_id": f"project-{n % 50}", "name": f"lb-{n:05d}", "description": "",
            "provisioning_status": c.ACTIVE, "operating_status": c.ONLINE, "enabled": True,
            "topology": c.TOPOLOGY_ACTIVE_ACTIVE, "amphora_count": 3, "provider": "amphora",
            "tags": [], "created_at": now} for n, i in enumerate(ids)]  # fmt: skip
    vips = [{"load_balancer_id": i, "ip_address": f"10.{n // 65536 % 256}.{n // 256 % 256}."
             f"{n % 256}", "subnet_id": "bench-seed-subnet", "network_id": "bench-seed-net",
             "octavia_owned": True} for n, i in enumerate(ids)]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(LoadBalancer), lbs)
        conn.execute(insert(Vip), vips)
    engine.dispose()
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = workdir / "l3dist.toml"
    config.write_text('[network]\ndriver = "static"\n')  # on the lab's networks (seed)
    env = {**os.environ, "L3DIST_DATABASE_URL": url, "L3DIST_CONFIG": str(config)}
    l3dist = str(Path(sys.executable).with_name("l3dist"))
    proc = subprocess.Popen([l3dist, "api", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base, timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("l3dist api did not start")


def measure(base: str, ids: list[str], requests: int, seconds: float, clients: int
            ) -> dict[str, Any]:  # fmt: skip
    subnet = lab_catalog().subnet_by_name("anycast-net-v6").id
    rng = random.Random(7)
    with httpx.Client(base_url=base, timeout=30) as http:

        def timed(method: str, path: str, **kw: Any) -> tuple[float, httpx.Response]:
            start = time.perf_counter()
            response = http.request(method, path, **kw)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return elapsed, response

        creates = [
            timed(
                "POST",
                "/v2/lbaas/loadbalancers",
                json={"loadbalancer": {"name": f"bench-{n}", "vip_subnet_id": subnet}},
            )[0]
            for n in range(requests)
        ]
        shows = [timed("GET", f"/v2/lbaas/loadbalancers/{rng.choice(ids)}")[0]
                 for _ in range(requests)]  # fmt: skip
        pages: list[float] = []
        url = "/v2/lbaas/loadbalancers?limit=100"
        while len(pages) < requests:
            elapsed, response = timed("GET", url)
            pages.append(elapsed)
            links = {x["rel"]: x["href"] for x in response.json()["loadbalancers_links"]}
            url = links.get("next", "/v2/lbaas/loadbalancers?limit=100")

    done = [0]
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def hammer(seed_value: int) -> None:
        local_rng = random.Random(seed_value)
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop:
                response = http.get(f"/v2/lbaas/loadbalancers/{local_rng.choice(ids)}")
                with lock:
                    done[0] += 1
                    errors[0] += response.status_code != 200

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    return {
        "create": latency(creates),
        "show": latency(shows),
        "list_page_100": latency(pages),
        "show_requests_per_second": round(done[0] / wall, 1),
        "show_concurrent_clients": clients,
        "errors": errors[0],
    }


def run_one(url: str, count: int, requests: int, seconds: float, clients: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="l3dist-bench-") as workdir:
        upgrade(url)
        started = time.perf_counter()
        ids = seed(url, count)
        db = Database(url)
        register_lab_networks(StaticNetworkDriver(db))  # the site's networks, defined
        db.engine.dispose()
        seed_s = time.perf_counter() - started
        proc, base = start_api(url, Path(workdir))
        try:
            result = measure(base, ids, requests, seconds, clients)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
    return {"load_balancers": count, "seed_seconds": round(seed_s, 2), **result}


def run(count: int = 10000, requests: int = 200, seconds: float = 5.0, clients: int = 8,
        postgres_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    results: dict[str, Any] = {"benchmark": "api", "api_workers": 1}
    with tempfile.TemporaryDirectory(prefix="l3dist-bench-db-") as tmp:
        results["sqlite"] = run_one(f"sqlite:///{tmp}/bench.db", count, requests, seconds,
                                    clients)  # fmt: skip
    if postgres_url:
        name = f"l3dist_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
            results["postgresql"] = run_one(url, count, requests, seconds, clients)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        results["postgresql"] = {"skipped": "give --postgres-url (a role that may CREATE DATABASE)"}
    if "p50_ms" in results.get("postgresql", {}).get("show", {}):
        results["postgresql_to_sqlite_show_p50_ratio"] = round(
            results["postgresql"]["show"]["p50_ms"] / results["sqlite"]["show"]["p50_ms"], 2
        )
    return results
