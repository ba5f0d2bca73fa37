"""`l3dist demo`: the controller started as on an operator's site, networks defined and hosts
enrolled with the CLI, an IPv4 and an IPv6 load balancer with traffic per amphora and per
member, a scale-out, and nothing left afterwards."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from l3dist_lab import fabric, plumbing
from l3dist_lab.config import PREFIX
from l3dist_lab.controlplane import L3DIST


def test_demo_builds_serves_scales_and_cleans_up(lab_prerequisites: None) -> None:
    # The demo refuses to run over a lab that is up (an operator's); like every lab fixture,
    # start from none.
    fabric.down()
    before = set(Path(tempfile.gettempdir()).glob("l3dist-demo-*"))
    result = subprocess.run(
        [L3DIST, "demo", "--json", "--connections", "120"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    demo = json.loads(result.stdout)
    assert len(demo["ecmp_nexthops"]) == 3
    # The ToR's own view (BMP) agrees with its FIB.
    assert demo["router_view"] == dict.fromkeys(demo["ecmp_nexthops"], "installed")
    assert len(demo["per_amphora"]) == 3 and demo["failures"] == 0
    assert set(demo["per_member"]) == {"m1", "m2"}
    assert len(demo["scale_out"]["ecmp_nexthops"]) == 4
    assert len(demo["scale_out"]["per_amphora"]) == 4
    assert demo["scale_out"]["loop_failed_after"] == 0
    assert len(demo["ipv6"]["ecmp_nexthops"]) == 3 and ":" in demo["ipv6"]["vip"]
    assert len(demo["ipv6"]["per_amphora"]) == 3 and demo["ipv6"]["failures"] == 0
    assert demo["route_after_delete"] == [] and demo["route_after_delete_ipv6"] == []
    fip = demo["floating_ip"]  # bound with `openstack floating ip create ext-net --port`
    assert fip["ecmp_nexthops"] == demo["ecmp_nexthops"] and fip["failures"] == 0
    assert len(fip["per_amphora"]) == 3 and set(fip["per_member"]) == {"m1", "m2"}
    assert fip["ecmp_nexthops_after_scale_out"] == demo["scale_out"]["ecmp_nexthops"]
    assert fip["after_delete"] == {"port_id": None, "status": "DOWN"}
    assert fip["route_after_delete"] == []
    # The hosts went back to the pool clean (one per amphora, the scale-out's included).
    assert list(demo["hosts_after_delete"].values()) == ["AVAILABLE"] * 7
    assert plumbing.list_namespaces(PREFIX) == []
    assert set(Path(tempfile.gettempdir()).glob("l3dist-demo-*")) == before
    for daemon in ("l3dist (api|worker|health)", "l3dist-agent"):
        assert subprocess.run(["pgrep", "-f", daemon], check=False).returncode == 1, daemon
