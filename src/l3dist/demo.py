"""``l3dist demo``: one anycast VIP (IPv4 and IPv6) served by three amphorae through the ToR's ECMP.

Brings up the lab, creates 3 amphorae, registers them for both VIPs, shows the ToR's ECMP routes,
spreads a few hundred client connections, unregisters one amphora and shows the route and the
traffic shrink, then tears everything down.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from l3dist.bgp.base import host_prefix
from l3dist.lab import amphora, fabric, traffic, vips
from l3dist.lab.config import LabConfig
from l3dist.lab.fib import FibWatcher, has, lacks


class Demo:
    def __init__(self, speaker_driver: str, connections: int, console: Console | None) -> None:
        self.cfg = LabConfig()
        self.speaker_driver = speaker_driver
        self.connections = connections
        self.console = console
        self.vip4 = self.cfg.vip(4)
        self.vip6 = self.cfg.vip(6)

    def say(self, text: str) -> None:
        if self.console:
            self.console.print(text)

    def routes_table(self, title: str) -> None:
        if not self.console:
            return
        table = Table(title=title)
        table.add_column("VIP route (ToR kernel FIB)")
        table.add_column("next hops")
        for prefix, hops in fabric.anycast_routes(self.cfg).items():
            table.add_row(prefix, "\n".join(hops))
        self.console.print(table)

    def traffic_table(
        self, title: str, results: list[dict[str, Any]], names: dict[str, str]
    ) -> None:
        if not self.console:
            return
        table = Table(title=title)
        table.add_column("VIP")
        for name in names.values():
            table.add_column(name, justify="right")
        table.add_column("failed", justify="right")
        for result in results:
            per = result["per_amphora"]
            table.add_row(
                result["vip"],
                *[str(per.get(amp_id, 0)) for amp_id in names],
                str(result["failures"]),
            )
        self.console.print(table)

    def run(self) -> dict[str, Any]:
        if fabric.is_up():
            raise RuntimeError("a lab is already running; `l3dist lab down` first")
        try:
            return self._run()
        finally:
            self.say("[bold]Tearing down the lab[/bold]")
            fabric.down()

    def _run(self) -> dict[str, Any]:
        self.say(f"[bold]Lab fabric[/bold]: ToR (FRR, AS {self.cfg.tor_asn}) with BGP multipath")
        fabric.up(self.cfg)
        self.say(f"[bold]Creating 3 amphorae[/bold] ({self.speaker_driver} speakers)")
        amps = amphora.create_many(self.cfg, self.speaker_driver, 3)
        names = {a.id: f"amphora-{i + 1}" for i, a in enumerate(amps)}
        for a in amps:
            self.say(f"  {names[a.id]}: {a.id}  mgmt {a.mgmt_ip4}  front-end {a.frontend_ip4}")

        announce_ms: list[float] = []
        with FibWatcher() as fib:
            self.say(f"[bold]Registering[/bold] the amphorae for {self.vip4} and {self.vip6}")
            for a in amps:
                for vip, version in ((self.vip4, 4), (self.vip6, 6)):
                    nexthop = a.frontend_ip(version)
                    start = time.perf_counter()
                    vips.announce(a, vip)
                    seen = fib.wait_for(host_prefix(vip), has(nexthop), start)
                    announce_ms.append((seen - start) * 1000)
            self.routes_table("ECMP routes with 3 amphorae")
            before = [
                traffic.run_clients(self.vip4, self.connections),
                traffic.run_clients(self.vip6, self.connections),
            ]
            self.traffic_table(f"{self.connections} connections per VIP", before, names)
            nexthops_v4 = fabric.fib_nexthops(host_prefix(self.vip4))
            nexthops_v6 = fabric.fib_nexthops(host_prefix(self.vip6))

            leaving = amps[0]
            self.say(f"[bold]Unregistering[/bold] {names[leaving.id]}")
            for vip, version in ((self.vip4, 4), (self.vip6, 6)):
                nexthop = leaving.frontend_ip(version)
                vips.withdraw(leaving, vip)
                fib.wait_until(host_prefix(vip), lacks(nexthop))
            self.routes_table("ECMP routes with 2 amphorae")
            after = [
                traffic.run_clients(self.vip4, self.connections),
                traffic.run_clients(self.vip6, self.connections),
            ]
            self.traffic_table("After the unregister", after, names)

        sessions = fabric.bgp_sessions()
        return {
            "speaker_driver": self.speaker_driver,
            "amphorae": [{"id": a.id, "name": names[a.id]} for a in amps],
            "vip_v4": self.vip4,
            "vip_v6": self.vip6,
            "ecmp_nexthops_v4": nexthops_v4,
            "ecmp_nexthops_v6": nexthops_v6,
            "established_sessions": sum(s.state == "Established" for s in sessions),
            "flows_per_amphora": {
                "v4": {names[k]: v for k, v in before[0]["per_amphora"].items()},
                "v6": {names[k]: v for k, v in before[1]["per_amphora"].items()},
            },
            "failures": before[0]["failures"] + before[1]["failures"],
            "after_unregister": {
                "ecmp_nexthops_v4": fabric.fib_nexthops(host_prefix(self.vip4)),
                "ecmp_nexthops_v6": fabric.fib_nexthops(host_prefix(self.vip6)),
                "flows_per_amphora": {
                    "v4": {names[k]: v for k, v in after[0]["per_amphora"].items()},
                    "v6": {names[k]: v for k, v in after[1]["per_amphora"].items()},
                },
            },
            "announce_to_fib_ms": {
                "min": round(min(announce_ms), 1),
                "median": round(statistics.median(announce_ms), 1),
                "max": round(max(announce_ms), 1),
                "samples": len(announce_ms),
            },
        }
