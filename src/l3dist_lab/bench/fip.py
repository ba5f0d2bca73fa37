"""``l3dist bench fip``: a floating IP against the VIP it is bound to, in the same run.

On an operator's site (the controller with ``static`` network and ``hosts`` compute drivers,
5 enrolled hosts), one load balancer of 3 amphorae with an HTTP service; a client loop in the
client namespace (outside the cloud, through the ToR) times each change to the first answer
or the last one. Per run, alternated (floating IP first on even runs, VIP first on odd ones):

- ``associate_to_answering``: a floating IP bound to the VIP port (``PUT /v2.0/floatingips``)
  until the client is answered from it; baseline ``vip_start_to_answering``: the listener
  enabled again (the VIP announced by Register Amphora) until the VIP answers;
- ``dissociate_to_silent``: the floating IP unbound until it stops answering for good;
  baseline ``vip_stop_to_silent``: the listener disabled until the VIP stops answering;
- ``requests_lost`` (``--failures`` runs): one amphora's host frozen (a hung machine) while two
  loops run at once, one to the floating IP and one to the VIP, until the replacement is in
  both ECMP sets: failed requests of each loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric, member, scenario, site
from l3dist_lab.bench import goal, summary
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import private_lab
from l3dist_lab.traffic import Attempt, ClientLoop

FIPS = "/v2.0/floatingips"
# s of client loop before the change (its process started and sending) and after the change
# is seen in the FIB (answers through the new route, or failures for good)
SETTLE = 1.0
TIMEOUT = 30.0


def _first_answer(attempts: list[Attempt], since: float) -> float:
    """Seconds from since to the first answered attempt started after it."""
    answered = [a.started for a in attempts if a.ok and a.started >= since]
    if not answered:
        raise RuntimeError("never answered")
    return answered[0] - since


def _silent_from(attempts: list[Attempt], since: float) -> float:
    """Seconds from since to the first attempt after which nothing was answered any more."""
    after = [a for a in attempts if a.started >= since]
    last_ok = max((a.started for a in after if a.ok), default=since)
    failed = [a.started for a in after if not a.ok and a.started > last_ok]
    if not failed:
        raise RuntimeError("still answering")
    return failed[0] - since


class FipBench:
    def __init__(self, runs: int, failures: int) -> None:
        self.runs = runs
        self.failures = failures
        self.cfg = LabConfig()
        self.ms: dict[str, list[float]] = {}
        self.lost: dict[str, list[float]] = {"floating_ip": [], "vip": []}

    def run(self) -> dict[str, Any]:
        with private_lab(self.cfg, "l3dist-bench-") as self.plane:
            members = [member.add("m1"), member.add("m2")]
            self.plane.start()
            self.site = site.build(self.plane, 5, self.cfg)
            lb = scenario.create_lb(self.plane, self.site.distributor["id"], 3,
                                    subnets=self.site.subnets)  # fmt: skip
            self.lb = scenario.add_web_service(self.plane, lb, members)
            self.listener_id = self._listener_id()
            scenario.wait_for_ecmp(self.plane, self.lb, 3)
            network = self.plane.call("GET", "/v2.0/networks?name=ext-net")["networks"][0]["id"]
            self.fip = self.plane.call("POST", FIPS, {"floatingip": {
                "floating_network_id": network}}, expect=201)["floatingip"]  # fmt: skip
            self.address = self.fip["floating_ip_address"]
            for i in range(self.runs):
                variants = [self._fip_cycle, self._vip_cycle]
                for cycle in variants if i % 2 == 0 else reversed(variants):
                    cycle()
            if self.failures:
                self._associate()
                for _ in range(self.failures):
                    self._amphora_fails()
        return self._result()

    # -- what is timed ---------------------------------------------------------------------

    def _listener_id(self) -> str:
        listeners = self.plane.call("GET", f"/v2/lbaas/listeners?loadbalancer_id={self.lb['id']}")
        return str(listeners["listeners"][0]["id"])

    def _timed(self, name: str, address: str, change: Callable[[], None], appears: bool) -> None:
        prefix = host_prefix(address)
        with ClientLoop(address, timeout=0.5) as clients:
            time.sleep(SETTLE)
            since = time.time()
            change()
            _wait(lambda: bool(fabric.fib_nexthops(prefix)) == appears, f"{name} in the FIB")
            time.sleep(SETTLE)
            attempts = clients.stop()
        took = _first_answer(attempts, since) if appears else _silent_from(attempts, since)
        self.ms.setdefault(name, []).append(took * 1000)

    def _associate(self) -> None:
        body = {"floatingip": {"port_id": self.lb["vip_port_id"]}}
        self.plane.call("PUT", f"{FIPS}/{self.fip['id']}", body)
        _wait(lambda: len(fabric.fib_nexthops(host_prefix(self.address))) == 3, "3 next hops")
        self._wait_fip("ACTIVE")

    def _wait_fip(self, status: str) -> None:
        path = f"{FIPS}/{self.fip['id']}"
        _wait(lambda: self.plane.call("GET", path)["floatingip"]["status"] == status, status)

    def _fip_cycle(self) -> None:
        path = f"{FIPS}/{self.fip['id']}"
        bind = {"floatingip": {"port_id": self.lb["vip_port_id"]}}
        self._timed("associate_to_answering", self.address,
                    lambda: self.plane.call("PUT", path, bind), appears=True)  # fmt: skip
        self._wait_fip("ACTIVE")
        unbind = {"floatingip": {"port_id": None}}
        self._timed("dissociate_to_silent", self.address,
                    lambda: self.plane.call("PUT", path, unbind), appears=False)  # fmt: skip
        self._wait_fip("DOWN")

    def _vip_cycle(self) -> None:
        path = f"/v2/lbaas/listeners/{self.listener_id}"
        vip = self.lb["vip_address"]
        off = {"listener": {"admin_state_up": False}}
        self._timed("vip_stop_to_silent", vip,
                    lambda: self.plane.call("PUT", path, off), appears=False)  # fmt: skip
        self.plane.wait_for(scenario.lb_path(self.lb), "loadbalancer", "ACTIVE")
        on = {"listener": {"admin_state_up": True}}
        self._timed("vip_start_to_answering", vip,
                    lambda: self.plane.call("PUT", path, on), appears=True)  # fmt: skip
        self.plane.wait_for(scenario.lb_path(self.lb), "loadbalancer", "ACTIVE")
        scenario.wait_for_ecmp(self.plane, self.lb, 3)

    def _amphora_fails(self) -> None:
        plane = self.plane
        victim = scenario.amphorae_of(plane, self.lb["id"])[0]
        host = self.site.host_of(victim)
        prefixes = (host_prefix(self.address), host_prefix(self.lb["vip_address"]))
        with ClientLoop(self.address) as to_fip, ClientLoop(self.lb["vip_address"]) as to_vip:
            time.sleep(1.0)
            site.freeze(host)
            try:

                def replaced() -> bool:
                    return all(
                        len(set(fabric.fib_nexthops(p)) - {victim["frontend_ip"]}) == 3
                        for p in prefixes
                    )

                _wait(replaced, "a replacement in both ECMP sets", 120)
                time.sleep(1.0)
                lost = {"floating_ip": to_fip.stop(), "vip": to_vip.stop()}
            finally:
                site.thaw(host)
        for name, attempts in lost.items():
            self.lost[name].append(float(sum(1 for a in attempts if not a.ok)))
        plane.wait_for(scenario.lb_path(self.lb), "loadbalancer", "ACTIVE", timeout=120)
        scenario.wait_for_ecmp(plane, self.lb, 3)
        # The thawed host fenced itself; the controller resets it and offers it again.
        _wait(lambda: self.site.pool()[host.name]["status"] == "AVAILABLE",
              "the thawed host back in the pool", 120)  # fmt: skip

    # -- the result -----------------------------------------------------------------------

    def _result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"runs": self.runs, "unit": "ms", "amphorae": 3}
        for name, samples in self.ms.items():
            result[name] = summary(samples, 1)
        median = {name: statistics.median(samples) for name, samples in self.ms.items()}
        result["associate_vs_vip_start"] = round(
            median["associate_to_answering"] / median["vip_start_to_answering"], 2
        )
        result["dissociate_vs_vip_stop"] = round(
            median["dissociate_to_silent"] / median["vip_stop_to_silent"], 2
        )
        result["goals"] = [
            goal("a dissociated floating IP silent", median["dissociate_to_silent"], 1000.0, "ms"),
            goal(
                "an associated floating IP answering",
                median["associate_to_answering"],
                2000.0,
                "ms",
            ),
        ]
        if self.failures:
            result["requests_lost"] = {k: summary(v, 1) for k, v in self.lost.items()}
            extra = statistics.median(self.lost["floating_ip"]) - statistics.median(
                self.lost["vip"]
            )
            beyond = "requests lost when an amphora fails: floating IP beyond the VIP"
            result["goals"].append(goal(beyond, extra, 2.0, "requests"))
        return result


def _wait(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f} s")
        time.sleep(0.02)


def run(runs: int = 5, failures: int = 3) -> dict[str, Any]:
    return FipBench(runs, failures).run()
