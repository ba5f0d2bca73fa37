"""API fixtures: the real app on a fresh database (SQLite and PostgreSQL), driven over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pytest

from l3dist.api.app import create_app
from l3dist.common.config import ApiConfig, Config
from l3dist.controller.worker import Worker, services_from_config
from l3dist.db.session import Database, upgrade
from l3dist.network.static import StaticNetworkDriver
from l3dist_lab.catalog import lab_catalog
from l3dist_lab.networks import register_lab_networks
from tests.conftest import database_copy, database_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

W = TypeVar("W")
BIN = Path(sys.executable).parent
CATALOG = lab_catalog()
ANYCAST_V4 = CATALOG.subnet_by_name("anycast-net-v4")
ANYCAST_V6 = CATALOG.subnet_by_name("anycast-net-v6")
FRONTEND_V4 = CATALOG.subnet_by_name("frontend-net-v4")
MEMBER_V4 = CATALOG.subnet_by_name("member-net-v4")

ADMIN = {"X-Project-Id": "admin-project", "X-Roles": "admin"}
TENANT_A = {"X-Project-Id": "project-a", "X-Roles": "member"}
TENANT_B = {"X-Project-Id": "project-b", "X-Roles": "member"}
READER_A = {"X-Project-Id": "project-a", "X-Roles": "reader"}


def network_driver(db: Database) -> StaticNetworkDriver:
    """The production network driver with the lab's networks defined (ids as the catalog's)."""
    driver = StaticNetworkDriver(db)
    register_lab_networks(driver)
    return driver


class Api:
    """An HTTP client of the API, with the controller worker that runs its jobs."""

    def __init__(self, client: TestClient, db: Database, ca_dir: Path) -> None:
        self.client = client
        self.db = db
        self.ca_dir = ca_dir
        self._worker: Worker | None = None

    def get(self, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> Any:
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
        return self.client.post(path, json=body, headers=headers)

    def put(self, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
        return self.client.put(path, json=body, headers=headers)

    def delete(self, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> Any:
        return self.client.delete(path, headers=headers, **kw)

    def close(self) -> None:
        """Its worker's task threads ended (the database is the fixture's)."""
        if self._worker is not None:
            self._worker.tasks.shutdown(wait=True)
            self._worker = None

    @property
    def worker(self) -> Worker:
        """The real controller worker on this database (made on first use)."""
        if self._worker is None:
            self._worker = make_worker(self.db, self.ca_dir)
        return self._worker

    def settle(self) -> None:
        """The worker runs every queued job: whatever status follows is the one it wrote."""
        run_jobs(self.worker)

    def active_distributor(self, worker: Worker, name: str = "fabric") -> dict[str, Any]:
        """An L3_BGP distributor with one speaker peering with a router, made ACTIVE by the
        worker (the only status a load balancer may be built on)."""
        speaker = self.create("/v2/lbaas/bgpspeakers", "bgp_speaker", ADMIN,
                              name=f"{name}-v4", ip_version=4, local_as=65001)  # fmt: skip
        peer = self.create("/v2/lbaas/bgppeers", "bgp_peer", ADMIN, name=f"{name}-tor",
                           peer_ip="198.18.0.1", remote_as=65000)  # fmt: skip
        added = self.put(f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer",
                         {"bgp_peer_id": peer["id"]})  # fmt: skip
        assert added.status_code == 200, added.text
        made = self.create("/v2/lbaas/distributors", "distributor", ADMIN, name=name,
                           distributor_type="L3_BGP",
                           config_data={"bgp_speaker_ids": [speaker["id"]]})  # fmt: skip
        run_jobs(worker)
        shown = self.get(f"/v2/lbaas/distributors/{made['id']}").json()["distributor"]
        assert shown["status"] == "ACTIVE", shown
        return dict(shown)

    def create_lb(self, headers: dict[str, str] = TENANT_A, **fields: Any) -> dict[str, Any]:
        body = {"vip_subnet_id": ANYCAST_V4.id, **fields}
        response = self.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, headers)
        assert response.status_code == 201, response.text
        self.settle()
        return dict(response.json()["loadbalancer"])

    def create(
        self,
        path: str,
        kind: str,
        headers: dict[str, str] = TENANT_A,
        settle: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """POST, 201, then (settle) the worker runs the job; the object as the POST said."""
        response = self.post(path, {kind: fields}, headers)
        assert response.status_code == 201, response.text
        if settle:
            self.settle()
        return dict(response.json()[kind])

    def snapshot(self) -> dict[str, Any]:
        """Every object the API knows, as an admin sees it (to prove a refusal changed nothing)."""
        paths = {
            "loadbalancers": "/v2/lbaas/loadbalancers",
            "listeners": "/v2/lbaas/listeners",
            "pools": "/v2/lbaas/pools",
            "healthmonitors": "/v2/lbaas/healthmonitors",
            "distributors": "/v2/lbaas/distributors",
            "bgp_speakers": "/v2/lbaas/bgpspeakers",
            "bgp_peers": "/v2/lbaas/bgppeers",
            "amphorae": "/v2/octavia/amphorae",
        }
        result = {key: self.get(path).json()[key] for key, path in paths.items()}
        result["members"] = {
            pool["id"]: self.get(f"/v2/lbaas/pools/{pool['id']}/members").json()["members"]
            for pool in result["pools"]
        }
        return result


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    upgrade(db_url)
    db = Database(db_url)
    app = create_app(ApiConfig(pagination_max_limit=1000), db, network_driver(db))
    with TestClient(app) as client:
        yield Api(client, db, tmp_path / "ca")
    db.engine.dispose()


@dataclass
class WorldTemplate(Generic[W]):
    """A module's starting point (its "world": objects made through the real API and worker)
    built once per database kind, in a database each test gets a copy of."""

    kind: str
    url: str
    ca_dir: Path
    world: W


def world_fixtures(build: Callable[[Api], W]) -> tuple[Any, Any, Any]:
    """Fixtures for a module whose every test starts from the same world: ``world_template``
    (module scope, on SQLite and on PostgreSQL: build(api) run once on a fresh database),
    ``db_url`` (for a test that asks for ``world``, its own copy of it, so the ``api``
    fixture serves the copy: what a test changes no other test sees; for the module's other
    tests an empty database of the same kind) and ``world`` (what build returned). A copy
    costs a file copy instead of the build's flows for every test."""

    @pytest.fixture(name="world_template", scope="module", params=["sqlite", "postgresql"])
    def world_template(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[WorldTemplate[W]]:
        directory = tmp_path_factory.mktemp("world")
        with database_url(request.param, directory) as url:
            upgrade(url)
            db = Database(url)
            app = create_app(ApiConfig(pagination_max_limit=1000), db, network_driver(db))
            with TestClient(app) as client:
                builder = Api(client, db, directory / "ca")
                world = build(builder)
                builder.close()
            db.engine.dispose()
            yield WorldTemplate(request.param, url, directory / "ca", world)

    @pytest.fixture(name="db_url")
    def db_url(
        world_template: WorldTemplate[W], request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[str]:
        if "world" not in request.fixturenames:  # the module's other tests: an empty one
            with database_url(world_template.kind, tmp_path) as url:
                yield url
            return
        if world_template.ca_dir.exists():  # the certificates its amphorae were given
            shutil.copytree(world_template.ca_dir, tmp_path / "ca")
        with database_copy(world_template.url, tmp_path) as url:
            yield url

    @pytest.fixture(name="world")
    def world(world_template: WorldTemplate[W], api: Api) -> W:
        return world_template.world

    return world_template, db_url, world


def make_worker(db: Database, ca_dir: Path) -> Worker:
    """The real controller worker on the test's database: the production network driver with
    the lab's networks (as the API has them), the L3_BGP distributor driver, and the noop
    compute and amphora drivers (amphorae recorded, their agents answered in process). Its
    flows are the production flows: the statuses they write are what the tests assert."""
    config = Config.model_validate(
        {
            "database": {"url": str(db.url)},
            "network": {"driver": "static"},
            "controller": {
                "compute_driver": "noop",
                "distributor_driver": "l3_bgp",
                "amphora_driver": "noop",
            },
            "certificates": {"ca_dir": str(ca_dir)},
        }
    )
    return Worker(config, services_from_config(config, db))


@pytest.fixture
def worker(api: Api) -> Worker:
    return api.worker


def run_jobs(worker: Worker) -> int:
    """Every queued job run by the worker, one after the other; how many there were."""
    count = 0
    while worker.run_one():
        count += 1
    return count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str, db: Database, ca_dir: Path) -> None:
        self.url = url
        self.db = db
        self.ca_dir = ca_dir
        self._worker: Worker | None = None

    def close(self) -> None:
        """Its worker's task threads ended (the database is the fixture's)."""
        if self._worker is not None:
            self._worker.tasks.shutdown(wait=True)
            self._worker = None

    @property
    def worker(self) -> Worker:
        """The real controller worker on the server's database (made on first use)."""
        if self._worker is None:
            self._worker = make_worker(self.db, self.ca_dir)
        return self._worker

    def settle(self) -> None:
        """The worker runs every queued job (the API server only queues them)."""
        run_jobs(self.worker)

    def openstack(self, *args: str, output: bool = True) -> Any:
        auth = ["--os-auth-type", "none", "--os-endpoint", self.url]
        result = subprocess.run(
            [str(BIN / "openstack"), *auth, *args, *(["-f", "json"] if output else [])],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    config = tmp_path / "l3dist.toml"
    config.write_text('[network]\ndriver = "static"\n')
    upgrade(db_url)
    network_driver(Database(db_url)).db.engine.dispose()  # the site's networks defined
    env = {
        **os.environ,
        "L3DIST_DATABASE_URL": db_url,
        "L3DIST_CONFIG": str(config),
        "L3DIST_CA_DIR": str(tmp_path / "ca"),  # made on the first enrollment
    }
    proc = subprocess.Popen(
        [str(BIN / "l3dist"), "api", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "l3dist api did not start"
            time.sleep(0.1)
        db = Database(db_url)
        yield Server(url, db, tmp_path / "ca")
        db.engine.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
