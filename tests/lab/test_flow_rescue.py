"""Flow rescue (spec P2) on real FRR ECMP: 300 long-lived connections (a request every 150 ms
on each) through a VIP served by 3 amphorae while a 4th is announced. Without rescue the router
remaps about half of the flows to the new amphora, which resets them; with every amphora's rescue
rules in place before the 4th is announced, none breaks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from l3dist.bgp.base import host_prefix
from l3dist.lab import amphora, vips
from l3dist.lab.amphora import LabAmphora
from l3dist.lab.config import LabConfig
from l3dist.lab.fib import FibWatcher, has
from l3dist.lab.traffic import finish_clients, start_long_lived


@pytest.fixture(scope="module")
def cluster(lab: LabConfig) -> Iterator[list[LabAmphora]]:
    amps = amphora.create_many(lab, "bird", 4)
    try:
        yield amps
    finally:
        for amp in amps:
            amphora.delete(amp.id)


def peers_of(amp: LabAmphora, cluster: list[LabAmphora]) -> list[str]:
    return [ip for other in cluster if other.id != amp.id
            for ip in (other.frontend_ip4, other.frontend_ip6)]  # fmt: skip


@pytest.mark.parametrize(("rescue", "vip_index"), [(False, 30), (True, 31)])
def test_scale_out_keeps_established_connections(
    cluster: list[LabAmphora], lab: LabConfig, fib: FibWatcher, rescue: bool, vip_index: int
) -> None:
    vip = lab.vip(4, vip_index)
    prefix = host_prefix(vip)
    three, fourth = cluster[:3], cluster[3]
    for amp in cluster:
        if rescue:
            status = amp.client().set_flow_rescue(peers_of(amp, cluster))
            assert status["enabled"] and status["router_macs_in_use"], status
        else:
            amp.client().clear_flow_rescue()
    try:
        for amp in three:
            vips.announce(amp, vip)
        fib.wait_until(prefix, lambda hops: len(hops) == 3, timeout=30)
        clients = start_long_lived(vip, 300, 6)
        time.sleep(2)
        vips.announce(fourth, vip)
        fib.wait_until(prefix, has(fourth.frontend_ip4), timeout=30)
        result = finish_clients(clients)
        packets = [amp.client().flow_rescue().get("packets", {}) for amp in cluster]
    finally:
        for amp in cluster:
            vips.withdraw(amp, vip)
            amp.client().clear_flow_rescue()
    assert len(result["per_amphora"]) == 3 and sum(result["per_amphora"].values()) == 300
    print(
        f"rescue {'on' if rescue else 'off'}: {result['broken']} of 300 broken {result['errors']}"
    )
    if rescue:
        assert result["broken"] == 0, result
        # The new amphora copied the moved flows' packets to their owners, who took them; the
        # other owners dropped their copies as not theirs.
        assert packets[3]["rescued"] > 0, packets
        assert sum(p["not_ours"] for p in packets[:3]) > 0, packets
    else:
        assert result["broken"] >= 30, result  # the baseline: the router did remap flows
