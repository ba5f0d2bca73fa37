"""``l3dist demo``: ACTIVE_ACTIVE load balancers built the way an operator builds them.

The lab simulates a datacenter: a router (FRR) with its networks, member servers, and racked
amphora hosts. The demo starts the controller as an operator runs it on a site (REST API,
worker and health manager; the ``static`` network and ``hosts`` compute drivers; SQLite and a
local CA in a private state directory), then uses the ``l3dist`` CLI only: the site's networks
with their roles, BGP peer profiles and speakers, an L3_BGP distributor, the hosts enrolled
with one-time tokens (each host's agent runs ``l3dist-agent enroll`` and ``l3dist-agent run``),
a load balancer with an IPv4 VIP and one with an IPv6 VIP (3 amphorae each, an HTTP listener,
a pool of two members). It shows the router's ECMP routes and client traffic per amphora and
per member, scales the IPv4 one out to 4 amphorae under a client loop, and deletes everything:
the hosts go back to the pool clean; the lab, the processes and the state directory are gone
at the end.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric, hosts, member, scenario, traffic
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import L3DIST, ControlPlane, private_lab

# python-openstackclient, installed with l3dist's test extras: the standard Neutron commands.
OPENSTACK = str(Path(L3DIST).with_name("openstack"))


class Demo:
    def __init__(self, connections: int, console: Console | None, amphorae: int = 3) -> None:
        self.cfg = LabConfig()
        self.connections = connections
        self.console = console
        self.amphorae = amphorae
        # One host per amphora: the IPv4 load balancer scaled out by one, the IPv6 one.
        self.hosts = 2 * amphorae + 1
        self.plane: ControlPlane | None = None

    def say(self, text: str) -> None:
        if self.console:
            self.console.print(text)

    def cli(self, *args: str) -> Any:
        """Run an ``l3dist`` CLI command against the demo's API, echoed as typed."""
        assert self.plane is not None
        self.say(f"[cyan]$ l3dist {shlex.join(args)}[/cyan]")
        result = subprocess.run(
            [L3DIST, *args, *([] if "delete" in args else ["-f", "json"])],
            env=self.plane.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(f"l3dist {shlex.join(args)} failed: {result.stderr.strip()}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    # -- tables -------------------------------------------------------------------------------

    def openstack(self, *args: str) -> Any:
        """Run a standard ``openstack`` command against the demo's API (no-auth, the endpoint
        given), echoed as typed."""
        assert self.plane is not None
        self.say(f"[cyan]$ openstack {shlex.join(args)}[/cyan]")
        auth = ["--os-auth-type", "none", "--os-endpoint", self.plane.url]
        output = [] if "delete" in args else ["-f", "json"]
        result = subprocess.run([OPENSTACK, *auth, *args, *output], capture_output=True,
                                text=True, timeout=120)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"openstack {shlex.join(args)} failed: {result.stderr.strip()}")
        return json.loads(result.stdout) if result.stdout.strip() else None

    def route_table(self, vip: str, names: dict[str, str]) -> list[str]:
        """The VIP's route in the ToR's FIB; names: front-end IP by amphora id."""
        hops = fabric.fib_nexthops(host_prefix(vip))
        if self.console:
            by_ip = {ip: amphora_id for amphora_id, ip in names.items()}
            table = Table(title=f"ToR kernel FIB: {host_prefix(vip)}")
            table.add_column("next hop (amphora front end)")
            table.add_column("amphora")
            for hop in hops:
                table.add_row(hop, by_ip.get(hop, "?"))
            self.console.print(table)
        return hops

    def router_view(self, lb: dict[str, Any], vip: str, hops: list[str]) -> dict[str, str]:
        """What the ToR itself says it holds (BMP to ``l3dist routerview``), once it has
        confirmed every next hop; shown with the CLI, and where the dashboard is."""
        assert self.plane is not None
        path = f"/v2/lbaas/loadbalancers/{lb['id']}/routes"

        def states() -> dict[str, str]:
            report = self.plane.call("GET", path)["routes"]["addresses"]  # type: ignore[union-attr]
            return {h["next_hop"]: h["state"] for a in report if a["address"] == vip
                    for r in a["routers"] for h in r["next_hops"]}  # fmt: skip

        deadline = time.monotonic() + 20
        while states() != dict.fromkeys(hops, "installed") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.say("[bold]The router's own view[/bold] (BMP from the ToR to l3dist routerview)")
        report = self.cli("loadbalancer", "routes", "web")
        if self.console:
            table = Table("address", "router", "next hop", "state", "register → router")
            for address in report["addresses"]:
                for router in address["routers"]:
                    for hop in router["next_hops"]:
                        table.add_row(address["address"], router["router"], hop["next_hop"],
                                      hop["state"], f"{hop['latency_ms']} ms")  # fmt: skip
            self.console.print(table)
        self.say(f"Live dashboard (while the demo runs): {self.plane.url}/dashboard")
        return states()

    def traffic_table(self, title: str, result: dict[str, Any], names: dict[str, str]) -> None:
        if not self.console:
            return
        table = Table(title=title)
        table.add_column("answered by")
        table.add_column("requests", justify="right")
        for amphora_id, count in result["per_amphora"].items():
            table.add_row(f"amphora {amphora_id} ({names.get(amphora_id, '?')})", str(count))
        for name, count in result["per_member"].items():
            table.add_row(f"member {name}", str(count))
        table.add_row("[red]failed[/red]", str(result["failures"]))
        self.console.print(table)

    # -- the story ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.say(
            f"[bold]Lab[/bold]: ToR (FRR, AS {self.cfg.tor_asn}, BGP multipath), member servers"
        )
        with private_lab(self.cfg, "l3dist-demo-") as self.plane:
            try:
                return self._run()
            finally:
                self.say("[bold]Tearing down[/bold]: controller processes, lab, state")

    def _run(self) -> dict[str, Any]:
        cfg, plane = self.cfg, self.plane
        assert plane is not None
        members = [member.add("m1"), member.add("m2")]
        plane.start()
        self.say(f"[bold]Controller[/bold]: API {plane.url}, worker, health manager, router "
                 "view (static network and hosts compute drivers, SQLite in "
                 f"{plane.state_dir})")  # fmt: skip

        self.say("[bold]The site's networks[/bold], each subnet with its role")
        for net in cfg.networks():
            external = ["--external"] if net.external else []
            self.cli("network", "create", "--name", net.name, *external)
            for version, cidr in net.subnets():
                gateway = [] if net.routed else ["--gateway-ip", "none"]
                self.cli("subnet", "create", "--name", f"{net.name}-v{version}",
                         "--network", net.name, "--cidr", str(cidr), "--role", net.role,
                         *gateway)  # fmt: skip
        subnets = {s["name"]: s["id"] for s in self.cli("subnet", "list")}

        self.say("[bold]The fabric's BGP peer profiles and the distributor[/bold]")
        speakers = []
        for version in (4, 6):
            self.cli("bgp-peer", "create", "--name", f"tor-v{version}",
                     "--peer-ip", cfg.mgmt.gateway(version), "--remote-as", str(cfg.tor_asn),
                     "--ttl-hops", "1", "--hold-time", str(cfg.hold_time),
                     "--keepalive-interval", str(cfg.keepalive))  # fmt: skip
            self.cli("bgp-speaker", "create", "--name", f"amphora-v{version}",
                     "--ip-version", str(version), "--local-as", str(cfg.amphora_asn))  # fmt: skip
            self.cli("bgp-speaker", "add-peer", f"amphora-v{version}", f"tor-v{version}")
            speakers += ["--bgp-speaker", f"amphora-v{version}"]
        made = self.cli("distributor", "create", "--name", "fabric", *speakers)
        shown = scenario.wait_for_distributor(plane, made["id"])  # checked by the worker
        self.say(f"distributor fabric: {shown['status']}")

        self.enroll_hosts()

        self.say(f"[bold]A load balancer with {self.amphorae} amphorae, IPv4 VIP[/bold]")
        started = time.monotonic()
        lb = self.web_service("web", subnets, 4, members)
        lb_active = lb["active_after"]
        vip = lb["vip_address"]
        names = self.wait_for_ecmp(vip, self.amphorae)
        carrying = time.monotonic() - started
        self.say(f"VIP {vip}: ACTIVE after {lb_active:.1f} s, carrying traffic after "
                 f"{carrying:.1f} s (listener, pool and members included)")  # fmt: skip
        hops = self.route_table(vip, names)
        before = traffic.run_clients(vip, self.connections)
        self.traffic_table(f"{self.connections} new connections to {vip}:80", before, names)
        router_view = self.router_view(lb, vip, hops)

        self.say("[bold]A floating IP on the VIP port[/bold], with the standard OpenStack client")
        vip_port = plane.call("GET", f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
        fip = self.openstack("floating", "ip", "create", "ext-net",
                             "--port", vip_port["vip_port_id"])  # fmt: skip
        floating = fip["floating_ip_address"]
        self.wait_for_ecmp(floating, self.amphorae, lb["id"])
        fip_hops = self.route_table(floating, names)
        fip_traffic = traffic.run_clients(floating, self.connections)
        self.traffic_table(f"{self.connections} new connections to the floating IP {floating}:80",
                           fip_traffic, names)  # fmt: skip

        self.say(f"[bold]A load balancer with {self.amphorae} amphorae, IPv6 VIP[/bold]")
        lb6 = self.web_service("web6", subnets, 6, members)
        vip6 = lb6["vip_address"]
        names6 = self.wait_for_ecmp(vip6, self.amphorae, lb6["id"])
        hops6 = self.route_table(vip6, names6)
        traffic6 = traffic.run_clients(vip6, self.connections)
        self.traffic_table(f"{self.connections} new connections to [{vip6}]:80", traffic6,
                           names6)  # fmt: skip

        self.say(f"[bold]Scale out to {self.amphorae + 1} amphorae[/bold] under a client loop")
        with traffic.ClientLoop(vip) as clients:
            time.sleep(1)
            asked = time.time()
            self.cli("loadbalancer", "set", "web", "--amphora-count", str(self.amphorae + 1),
                     "--wait")  # fmt: skip
            names = self.wait_for_ecmp(vip, self.amphorae + 1, lb["id"])
            done = time.time()
            time.sleep(1)
            attempts = clients.stop()
        self.say(f"scaled out in {done - asked:.1f} s; client loop: {len(attempts)} requests, "
                 f"{traffic.failures(attempts, asked, done)} failed during the change, "
                 f"{traffic.failures(attempts, done)} after it")  # fmt: skip
        hops_after = self.route_table(vip, names)
        after = traffic.run_clients(vip, self.connections)
        self.traffic_table(f"After scale-out: {self.connections} new connections", after, names)
        self.say("The floating IP followed through the load balancer's virtual-ip (no call "
                 "touched it):")  # fmt: skip
        self.wait_for_ecmp(floating, self.amphorae + 1, lb["id"])
        fip_hops_after = self.route_table(floating, names)

        self.say("[bold]Delete[/bold] (withdrawn first, then the hosts reset)")
        self.cli("loadbalancer", "delete", "web", "--cascade", "--wait")
        self.cli("loadbalancer", "delete", "web6", "--cascade", "--wait")
        fip_after = self.openstack("floating", "ip", "show", fip["id"])
        self.say(f"floating IP {floating}: port {fip_after['port_id']}, {fip_after['status']} "
                 "(dissociated with its load balancer)")  # fmt: skip
        self.openstack("floating", "ip", "delete", fip["id"])
        pool = self.wait_for_pool()
        return {
            "vip": vip,
            "amphorae": self.amphorae,
            "create_to_active_s": round(lb_active, 2),
            "create_to_traffic_s": round(carrying, 2),
            "ecmp_nexthops": hops,
            "router_view": router_view,
            "per_amphora": before["per_amphora"],
            "per_member": before["per_member"],
            "failures": before["failures"],
            "ipv6": {
                "vip": vip6,
                "ecmp_nexthops": hops6,
                "per_amphora": traffic6["per_amphora"],
                "per_member": traffic6["per_member"],
                "failures": traffic6["failures"],
            },
            "scale_out": {
                "seconds": round(done - asked, 2),
                "ecmp_nexthops": hops_after,
                "per_amphora": after["per_amphora"],
                "failures": after["failures"],
                "loop_requests": len(attempts),
                "loop_failed_during": traffic.failures(attempts, asked, done),
                "loop_failed_after": traffic.failures(attempts, done),
            },
            "floating_ip": {
                "address": floating,
                "ecmp_nexthops": fip_hops,
                "per_amphora": fip_traffic["per_amphora"],
                "per_member": fip_traffic["per_member"],
                "failures": fip_traffic["failures"],
                "ecmp_nexthops_after_scale_out": fip_hops_after,
                "after_delete": {"port_id": fip_after["port_id"], "status": fip_after["status"]},
                "route_after_delete": fabric.fib_nexthops(host_prefix(floating)),
            },
            "route_after_delete": fabric.fib_nexthops(host_prefix(vip)),
            "route_after_delete_ipv6": fabric.fib_nexthops(host_prefix(vip6)),
            "hosts_after_delete": pool,
        }

    def enroll_hosts(self) -> None:
        """The operator's step per host: a one-time token from the API, the host's agent
        enrolls with it (its key stays on the host), then runs."""
        assert self.plane is not None
        self.say(f"[bold]{self.hosts} amphora hosts[/bold] racked, each enrolled once")
        racked = [hosts.create(self.cfg, i, self.plane.url) for i in range(1, self.hosts + 1)]
        for host in racked:
            added = self.cli("amphora-host", "enroll", "--name", host.name)
            self.say(f"[cyan]{host.name}# l3dist-agent enroll --token=...[/cyan]")
            hosts.enroll(host, added["enrollment_token"])
        with ThreadPoolExecutor(len(racked)) as workers:
            list(workers.map(hosts.start_agent, racked))
        listed = self.cli("amphora-host", "list")
        if self.console:
            table = Table(title="amphora hosts")
            for column in ("name", "status", "management_address"):
                table.add_column(column)
            for row in listed:
                table.add_row(row["name"], row["status"], row["management_address"])
            self.console.print(table)

    def web_service(
        self, name: str, subnets: dict[str, str], version: int, members: list[member.LabMember]
    ) -> dict[str, Any]:
        started = time.monotonic()
        lb = self.cli("loadbalancer", "create", "--name", name,
                      "--vip-subnet-id", subnets[f"anycast-net-v{version}"],
                      "--frontend-subnet-id", subnets[f"frontend-net-v{version}"],
                      "--topology", "ACTIVE_ACTIVE", "--amphora-count", str(self.amphorae),
                      "--distributor", "fabric", "--wait")  # fmt: skip
        active_after = time.monotonic() - started
        self.cli("listener", "create", name, "--name", f"{name}-http", "--protocol", "HTTP",
                 "--protocol-port", "80", "--wait")  # fmt: skip
        pool = self.cli("pool", "create", "--name", f"{name}-members",
                        "--listener", f"{name}-http", "--protocol", "HTTP",
                        "--lb-algorithm", "ROUND_ROBIN", "--wait")  # fmt: skip
        for m in members:
            self.cli("member", "create", pool["id"], "--name", m.name, "--address", m.ip4,
                     "--protocol-port", str(m.port), "--wait")  # fmt: skip
        return {**lb, "active_after": active_after}

    def wait_for_pool(self, timeout: float = 60) -> dict[str, str]:
        """Until every host is back in the pool; their statuses by name."""
        assert self.plane is not None
        deadline = time.monotonic() + timeout
        while True:
            rows = self.plane.call("GET", "/v2/octavia/amphora-hosts")["amphora_hosts"]
            statuses = {h["name"]: h["status"] for h in rows}
            if set(statuses.values()) == {"AVAILABLE"} or time.monotonic() > deadline:
                self.say("hosts: " + ", ".join(f"{n} {s}" for n, s in sorted(statuses.items())))
                return statuses
            time.sleep(0.2)

    def wait_for_ecmp(
        self, vip: str, count: int, lb_id: str | None = None, timeout: float = 60
    ) -> dict[str, str]:
        """Until the ToR routes the VIP to the front ends of exactly `count` amphorae (of the
        load balancer lb_id, or of all); returns their front-end IPs by amphora id."""
        assert self.plane is not None
        path = "/v2/octavia/amphorae" + (f"?loadbalancer_id={lb_id}" if lb_id else "")
        deadline = time.monotonic() + timeout
        while True:
            amps = [a for a in self.plane.call("GET", path)["amphorae"]
                    if a["status"] == "ALLOCATED"]  # fmt: skip
            ips = {a["frontend_ip"] for a in amps}
            if len(ips) == count and set(fabric.fib_nexthops(host_prefix(vip))) == ips:
                return {a["id"]: a["frontend_ip"] for a in amps}
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ToR has no {count}-way route for {vip}")
            time.sleep(0.1)
