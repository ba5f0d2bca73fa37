"""``l3dist demo``: an ACTIVE_ACTIVE load balancer built the way an operator builds one.

On the embedded lab (ToR with FRR, member servers), the demo starts the controller (REST API and
worker, SQLite and a local CA in a private state directory), then uses the ``l3dist`` CLI only:
BGP peer profiles and speakers, an L3_BGP distributor, a load balancer with 3 amphorae, an HTTP
listener, a pool of two members. It shows the ToR's ECMP route for the VIP and client traffic per
amphora and per member, scales out to 4 amphorae under a client loop, and deletes everything;
the lab, the processes and the state directory are gone at the end.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from l3dist.bgp.base import host_prefix
from l3dist.network.catalog import stable_id
from l3dist_lab import fabric, member, traffic
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import L3DIST, ControlPlane, private_lab


class Demo:
    def __init__(self, connections: int, console: Console | None, amphorae: int = 3) -> None:
        self.cfg = LabConfig()
        self.connections = connections
        self.console = console
        self.amphorae = amphorae
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
        self.say(f"[bold]Controller[/bold]: API {plane.url}, worker (SQLite in {plane.state_dir})")

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
        self.cli("distributor", "create", "--name", "fabric", *speakers)

        self.say(f"[bold]A load balancer with {self.amphorae} amphorae[/bold]")
        started = time.monotonic()
        lb = self.cli("loadbalancer", "create", "--name", "web",
                      "--vip-subnet-id", stable_id("anycast-net-v4"),
                      "--frontend-subnet-id", stable_id("frontend-net-v4"),
                      "--topology", "ACTIVE_ACTIVE", "--amphora-count", str(self.amphorae),
                      "--distributor", "fabric", "--wait")  # fmt: skip
        lb_active = time.monotonic() - started
        vip = lb["vip_address"]
        self.cli("listener", "create", "web", "--name", "http", "--protocol", "HTTP",
                 "--protocol-port", "80", "--wait")  # fmt: skip
        pool = self.cli("pool", "create", "--name", "members", "--listener", "http",
                        "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN",
                        "--wait")  # fmt: skip
        for m in members:
            self.cli("member", "create", pool["id"], "--name", m.name, "--address", m.ip4,
                     "--protocol-port", str(m.port), "--wait")  # fmt: skip
        names = self.wait_for_ecmp(vip, self.amphorae)
        carrying = time.monotonic() - started
        self.say(f"VIP {vip}: ACTIVE after {lb_active:.1f} s, carrying traffic after "
                 f"{carrying:.1f} s (listener, pool and members included)")  # fmt: skip
        hops = self.route_table(vip, names)
        before = traffic.run_clients(vip, self.connections)
        self.traffic_table(f"{self.connections} new connections to {vip}:80", before, names)

        self.say(f"[bold]Scale out to {self.amphorae + 1} amphorae[/bold] under a client loop")
        with traffic.ClientLoop(vip) as clients:
            time.sleep(1)
            asked = time.time()
            self.cli("loadbalancer", "set", "web", "--amphora-count", str(self.amphorae + 1),
                     "--wait")  # fmt: skip
            names = self.wait_for_ecmp(vip, self.amphorae + 1)
            done = time.time()
            time.sleep(1)
            attempts = clients.stop()
        self.say(f"scaled out in {done - asked:.1f} s; client loop: {len(attempts)} requests, "
                 f"{traffic.failures(attempts, asked, done)} failed during the change, "
                 f"{traffic.failures(attempts, done)} after it")  # fmt: skip
        hops_after = self.route_table(vip, names)
        after = traffic.run_clients(vip, self.connections)
        self.traffic_table(f"After scale-out: {self.connections} new connections", after, names)

        self.say("[bold]Delete[/bold] (withdrawn first, then torn down)")
        self.cli("loadbalancer", "delete", "web", "--cascade", "--wait")
        return {
            "vip": vip,
            "amphorae": self.amphorae,
            "create_to_active_s": round(lb_active, 2),
            "create_to_traffic_s": round(carrying, 2),
            "ecmp_nexthops": hops,
            "per_amphora": before["per_amphora"],
            "per_member": before["per_member"],
            "failures": before["failures"],
            "scale_out": {
                "seconds": round(done - asked, 2),
                "ecmp_nexthops": hops_after,
                "per_amphora": after["per_amphora"],
                "failures": after["failures"],
                "loop_requests": len(attempts),
                "loop_failed_during": traffic.failures(attempts, asked, done),
                "loop_failed_after": traffic.failures(attempts, done),
            },
            "route_after_delete": fabric.fib_nexthops(host_prefix(vip)),
        }

    def wait_for_ecmp(self, vip: str, count: int, timeout: float = 60) -> dict[str, str]:
        """Until the ToR routes the VIP to the front ends of exactly `count` amphorae; returns
        their front-end IPs by amphora id."""
        assert self.plane is not None
        deadline = time.monotonic() + timeout
        while True:
            amps = [a for a in self.plane.call("GET", "/v2/octavia/amphorae")["amphorae"]
                    if a["status"] == "ALLOCATED"]  # fmt: skip
            ips = {a["frontend_ip"] for a in amps}
            if len(ips) == count and set(fabric.fib_nexthops(host_prefix(vip))) == ips:
                return {a["id"]: a["frontend_ip"] for a in amps}
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ToR has no {count}-way route for {vip}")
            time.sleep(0.1)
