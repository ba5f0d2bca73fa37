"""The real Octavia in front of l3dist: Octavia's released packages (``.venv-octavia``, made
by ``./run test``), its own database (a private MariaDB, migrated by ``octavia-db-manage``),
``octavia-api`` (noauth; Octavia's noop drivers for its own amphora parts) with only the
l3dist provider, and ``octavia-driver-agent`` running l3dist's provider agent; l3dist's
control plane and the lab behind them. Everything is driven with python-octaviaclient
(``openstack loadbalancer ...``), as an Octavia user would."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric, site, traffic
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import forget_processes, record_process
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on_site,
    wait_for_ecmp,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
OCTAVIA_BIN = ROOT / ".venv-octavia" / "bin"
PROJECT = "octavia-project"
# Octavia's noop network and compute drivers keep their records in this file, a fixed path
# of theirs; the test removes it unless it was there before.
NOOP_DB = Path("/tmp/octavia-network-noop.db")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Octavia:
    """octavia-api and its driver agent on a private MariaDB, in one directory."""

    def __init__(self, work: Path, l3dist_url: str) -> None:
        self.work = work
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.network_url = l3dist_url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.noop_db_was_there = NOOP_DB.exists()
        self.socket = work / "mysql.sock"
        self.conf = work / "octavia.conf"
        self.conf.write_text(f"""\
[DEFAULT]
log_file = {work / "octavia.log"}

[api_settings]
bind_host = 127.0.0.1
bind_port = {self.port}
auth_strategy = noauth
enabled_provider_drivers = l3dist:l3dist anycast active-active
default_provider_driver = l3dist

[database]
connection = mysql+pymysql://root@localhost/octavia?unix_socket={self.socket}

[controller_worker]
amphora_driver = amphora_noop_driver
compute_driver = compute_noop_driver
network_driver = network_noop_driver
volume_driver = volume_noop_driver
image_driver = image_noop_driver

[driver_agent]
status_socket_path = {work / "status.sock"}
stats_socket_path = {work / "stats.sock"}
get_socket_path = {work / "get.sock"}
enabled_provider_agents = l3dist

[l3dist]
api_url = {l3dist_url}
project_id = service
roles = admin
status_interval = 0.3
""")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.out").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        # A run that died leaves nothing: the next control plane (the controller fixture,
        # before this) stops what is recorded.
        record_process(proc.pid, argv[0])
        return proc

    def start(self) -> None:
        datadir = self.work / "db"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip
        self._spawn("mariadb", ["mariadbd", "--no-defaults", f"--datadir={datadir}",
                                f"--socket={self.socket}", "--skip-networking", "--user=root",
                                f"--pid-file={self.work / 'mysql.pid'}"])  # fmt: skip
        wait_until(self.socket.exists, 30, "MariaDB's socket")
        sql = ["mariadb", "--no-defaults", "-S", str(self.socket), "-uroot"]
        wait_until(lambda: subprocess.run([*sql, "-e", "SELECT 1"],
                                          capture_output=True).returncode == 0,
                   30, "MariaDB answering")  # fmt: skip
        subprocess.run([*sql, "-e", "CREATE DATABASE octavia"], check=True)
        subprocess.run([str(OCTAVIA_BIN / "octavia-db-manage"), "--config-file", str(self.conf),
                        "upgrade", "head"], check=True, capture_output=True)  # fmt: skip
        self._spawn("octavia-api", [str(OCTAVIA_BIN / "octavia-api"), "--config-file",
                                    str(self.conf)])  # fmt: skip
        self._spawn("driver-agent", [str(OCTAVIA_BIN / "octavia-driver-agent"), "--config-file",
                                     str(self.conf)])  # fmt: skip

        def api_up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(api_up, 60, "octavia-api listening")
        wait_until((self.work / "status.sock").exists, 60, "the driver agent's status socket")

    def stop(self) -> None:
        try:
            self._stop_processes()
        finally:
            if not self.noop_db_was_there:
                NOOP_DB.unlink(missing_ok=True)

    def _stop_processes(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):  # the driver agent's children
                os.killpg(proc.pid, signal.SIGKILL)
        forget_processes({proc.pid for proc in self.processes})

    def openstack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(OCTAVIA_BIN / "openstack"), "--os-auth-type", "none",
                "--os-endpoint", self.url, *args]  # fmt: skip
        # Names and ids of subnets resolve through the network service: l3dist's (its
        # Neutron-shaped /v2.0/subnets), as Neutron would answer them in a cloud.
        env = {**os.environ, "OS_NETWORK_ENDPOINT_OVERRIDE": self.network_url}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(args)}: {done.stderr or done.stdout}")
        return done

    def show(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.openstack(*args, "-f", "json").stdout))

    def log_tail(self) -> str:
        parts = []
        for name in ("octavia.log", "octavia-api.out", "driver-agent.out"):
            path = self.work / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-30:]))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def controller(
    lab_prerequisites: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    """l3dist's control plane and the lab (SQLite: Octavia's own database is the point here)."""
    work = tmp_path_factory.mktemp("controller")
    yield from controller_on_site(f"sqlite:///{work / 'l3dist.db'}", work)


@pytest.fixture(scope="module")
def octavia(controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Octavia]:
    if not (OCTAVIA_BIN / "octavia-api").exists() or shutil.which("mariadbd") is None:
        pytest.fail("Octavia's environment (.venv-octavia) or MariaDB is missing: ./run test")
    made = Octavia(tmp_path_factory.mktemp("octavia"), controller.url)
    try:
        made.start()
        yield made
    finally:
        made.stop()


def _wait_status(
    octavia: Octavia, lb_id: str, wanted: str, field: str = "provisioning_status"
) -> dict[str, Any]:
    """Octavia's load balancer, once its field is wanted (written by the driver agent from the
    provider agent's updates)."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal seen
        seen = octavia.show("loadbalancer", "show", lb_id)
        if seen.get(field) == "ERROR" and wanted != "ERROR":
            raise AssertionError(f"load balancer {lb_id} is ERROR\n{octavia.log_tail()}")
        return seen.get(field) == wanted

    try:
        wait_until(reached, 120, f"load balancer {lb_id} {field} {wanted}")
    except AssertionError as error:
        raise AssertionError(f"{error}: {seen}\n{octavia.log_tail()}") from None
    return seen


def _flavor(octavia: Octavia, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A flavor profile of the l3dist provider with data, and its flavor (both named name)."""
    octavia.openstack("loadbalancer", "flavorprofile", "create", "--name", name,
                      "--provider", "l3dist", "--flavor-data", json.dumps(data))  # fmt: skip
    return octavia.show("loadbalancer", "flavor", "create", "--name", name,
                        "--flavorprofile", name, "--enable")  # fmt: skip


def _create_lb(octavia: Octavia, **fields: Any) -> dict[str, Any]:
    """A load balancer created through Octavia's REST API: in noauth mode the CLI's --project
    would ask Keystone for the project; the body names it, as an admin's request may."""
    created = httpx.post(f"{octavia.url}/v2/lbaas/loadbalancers", timeout=60,
                         json={"loadbalancer": {**fields, "project_id": PROJECT}})  # fmt: skip
    assert created.status_code == 201, f"{created.text}\n{octavia.log_tail()}"
    return dict(created.json()["loadbalancer"])


def _delete_lb(octavia: Octavia, ctl: Controller, lb_id: str) -> None:
    """Cascade delete through Octavia, until Octavia lists it no more; l3dist has none left."""
    octavia.openstack("loadbalancer", "delete", "--cascade", lb_id)

    def gone() -> bool:
        listed = json.loads(octavia.openstack("loadbalancer", "list", "-f", "json").stdout)
        return lb_id not in {item["id"] for item in listed}

    wait_until(gone, 120, "Octavia's load balancer gone")
    assert ctl.call("GET", "/v2/lbaas/loadbalancers")["loadbalancers"] == []


def test_an_octavia_load_balancer_is_built_by_l3dist_and_serves(
    controller: Controller, octavia: Octavia
) -> None:
    ctl, cfg = controller, LabConfig()
    anycast = ctl.site.subnets["anycast-net-v4"]
    distributor = ctl.site.distributor["name"]
    flavor = _flavor(octavia, "anycast-3", {"amphora_count": 3, "speaker_driver": "exabgp",
                                            "distributor": distributor})  # fmt: skip
    vip = str(cfg.anycast_v4.network_address + 60)
    lb = _create_lb(octavia, name="web", flavor_id=flavor["id"], vip_subnet_id=anycast,
                    vip_address=vip)  # fmt: skip
    assert lb["provider"] == "l3dist" and lb["vip_address"] == vip
    # The same object in l3dist, under Octavia's id, ACTIVE_ACTIVE with 3 amphorae.
    mine = ctl.call("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
    assert (mine["topology"], mine["amphora_count"], mine["vip_address"]) == (
        "ACTIVE_ACTIVE",
        3,
        vip,
    )
    # The VIP port is l3dist's (create_vip_port): the one Octavia records.
    assert lb["vip_port_id"] == mine["vip_port_id"], (lb, mine)
    _wait_status(octavia, lb["id"], "ACTIVE")
    listener = octavia.show("loadbalancer", "listener", "create", "--name", "http",
                            "--protocol", "HTTP", "--protocol-port", "80", lb["id"])  # fmt: skip
    _wait_status(octavia, lb["id"], "ACTIVE")
    pool = octavia.show("loadbalancer", "pool", "create", "--name", "members", "--listener",
                        listener["id"], "--protocol", "HTTP",
                        "--lb-algorithm", "ROUND_ROBIN")  # fmt: skip
    _wait_status(octavia, lb["id"], "ACTIVE")
    for m in ctl.members:
        octavia.openstack("loadbalancer", "member", "create", "--address", m.ip4,
                          "--protocol-port", str(m.port), pool["id"])  # fmt: skip
        _wait_status(octavia, lb["id"], "ACTIVE")

    # Octavia shows what l3dist's provider agent reported: ACTIVE / ONLINE everywhere.
    _wait_status(octavia, lb["id"], "ONLINE", field="operating_status")
    tree = json.loads(octavia.openstack("loadbalancer", "status", "show", lb["id"]).stdout)
    [octavia_listener] = tree["loadbalancer"]["listeners"]
    [octavia_pool] = octavia_listener["pools"]
    assert octavia_listener["provisioning_status"] == "ACTIVE"
    assert len(octavia_pool["members"]) == 2
    assert {m["provisioning_status"] for m in octavia_pool["members"]} == {"ACTIVE"}

    # Traffic from the lab's client through the router reaches both members over 3 next hops.
    amps = amphorae_of(ctl, lb["id"])
    assert len(amps) == 3
    assert wait_for_ecmp(ctl, {**mine, "id": lb["id"]}, 3) == {a["frontend_ip"] for a in amps}
    result = traffic.run_clients(vip, 60)
    assert result["failures"] == 0, result
    assert set(result["per_member"]) == {"m1", "m2"}, result
    assert set(result["per_amphora"]) == {a["id"] for a in amps}, result
    # The flavor's speaker: every amphora announces through ExaBGP (the lab's default is BIRD).
    for amp in amps:
        with ctl.site.agent(amp) as agent:
            assert agent.info()["speaker_driver"] == "exabgp", amp["id"]

    # Octavia's listener statistics: the 60 connections, counted by the amphorae's HAProxy,
    # summed by l3dist's health manager and pushed by the provider agent.
    def octavia_stats() -> dict[str, Any]:
        return octavia.show("loadbalancer", "listener", "stats", "show", listener["id"])

    wait_until(lambda: octavia_stats()["total_connections"] >= 60, 30, "Octavia's stats")
    stats = octavia_stats()
    assert stats["total_connections"] == 60 and stats["bytes_in"] > 0, stats
    assert stats["bytes_out"] > 0 and stats["request_errors"] == 0, stats

    # Octavia's member batch update (REST: the CLI has none): only m1 stays, as one change.
    first = ctl.members[0]
    only_first = {"members": [{"address": first.ip4, "protocol_port": first.port}]}
    batch = httpx.put(f"{octavia.url}/v2/lbaas/pools/{pool['id']}/members", json=only_first,
                      timeout=60)  # fmt: skip
    assert batch.status_code == 202, f"{batch.text}\n{octavia.log_tail()}"
    _wait_status(octavia, lb["id"], "ACTIVE")
    listed = json.loads(octavia.openstack("loadbalancer", "member", "list", pool["id"],
                                          "-f", "json").stdout)  # fmt: skip
    assert [(m["address"], m["provisioning_status"]) for m in listed] == [(first.ip4, "ACTIVE")]
    in_l3dist = ctl.call("GET", f"/v2/lbaas/pools/{pool['id']}/members")["members"]
    assert [m["address"] for m in in_l3dist] == [first.ip4]
    result = traffic.run_clients(vip, 30)
    assert result["failures"] == 0 and set(result["per_member"]) == {"m1"}, result

    # A frozen amphora (a hung host): Octavia shows DEGRADED when l3dist's health manager
    # finds it, then ONLINE once l3dist's replacement serves.
    victim = amphorae_of(ctl, lb["id"])[0]
    frozen = ctl.site.host_of(victim)

    def octavia_lb() -> dict[str, Any]:
        shown = httpx.get(f"{octavia.url}/v2/lbaas/loadbalancers/{lb['id']}", timeout=10)
        return dict(shown.json()["loadbalancer"])

    def replaced() -> bool:
        now = octavia_lb()
        if (now["provisioning_status"], now["operating_status"]) != ("ACTIVE", "ONLINE"):
            return False
        return victim["id"] not in {a["id"] for a in amphorae_of(ctl, lb["id"])}

    assert site.freeze(frozen) >= 3
    try:
        wait_until(lambda: octavia_lb()["operating_status"] == "DEGRADED", 30, "DEGRADED")
        wait_until(replaced, 90, "Octavia ACTIVE / ONLINE after l3dist's failover")
    finally:
        site.thaw(frozen)
    amps = amphorae_of(ctl, lb["id"])
    assert len(amps) == 3 and victim["id"] not in {a["id"] for a in amps}
    assert wait_for_ecmp(ctl, {**mine, "id": lb["id"]}, 3) == {a["frontend_ip"] for a in amps}
    result = traffic.run_clients(vip, 30)
    assert result["failures"] == 0 and set(result["per_amphora"]) <= {a["id"] for a in amps}

    # Refused by name: an L7 policy (l3dist has none) is Octavia's 400 naming it.
    refused = octavia.openstack("loadbalancer", "l7policy", "create", "--action", "REJECT",
                                listener["id"], check=False)  # fmt: skip
    assert refused.returncode != 0 and "L7" in refused.stderr, refused.stderr

    # Cascade delete through Octavia: nothing left in l3dist or at the router.
    _delete_lb(octavia, ctl, lb["id"])
    assert amphorae_of(ctl, lb["id"]) == []
    # Nor at the router: the VIP's route is withdrawn from its FIB.
    wait_until(lambda: fabric.fib_nexthops(host_prefix(vip)) == [], 30, "the VIP withdrawn")


def test_an_l3dist_error_is_octavias_error_with_the_reason_in_its_log(
    controller: Controller, octavia: Octavia
) -> None:
    """More amphorae than the lab has hosts: l3dist's create fails ("no free amphora host"),
    Octavia shows ERROR, and the provider agent logs l3dist's reason; the load balancer can
    then be deleted through Octavia."""
    ctl = controller
    flavor = _flavor(octavia, "anycast-9",
                     {"amphora_count": 9, "distributor": ctl.site.distributor["name"]})  # fmt: skip
    lb = _create_lb(octavia, name="too-wide", flavor_id=flavor["id"],
                    vip_subnet_id=ctl.site.subnets["anycast-net-v4"])  # fmt: skip
    _wait_status(octavia, lb["id"], "ERROR")
    logs = "".join(
        (octavia.work / name).read_text() for name in ("octavia.log", "driver-agent.out")
        if (octavia.work / name).exists()
    )  # fmt: skip
    assert f"load balancer {lb['id']} is in ERROR: " in logs and "no free amphora host" in logs
    _delete_lb(octavia, ctl, lb["id"])
