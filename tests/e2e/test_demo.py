"""`l3dist demo`: the controller started in one command, the load balancer built with the CLI,
traffic per amphora and per member, a scale-out, and nothing left afterwards."""

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
    assert len(demo["per_amphora"]) == 3 and demo["failures"] == 0
    assert set(demo["per_member"]) == {"m1", "m2"}
    assert len(demo["scale_out"]["ecmp_nexthops"]) == 4
    assert len(demo["scale_out"]["per_amphora"]) == 4
    assert demo["scale_out"]["loop_failed_after"] == 0
    assert demo["route_after_delete"] == []
    assert plumbing.list_namespaces(PREFIX) == []
    assert set(Path(tempfile.gettempdir()).glob("l3dist-demo-*")) == before
    assert subprocess.run(["pgrep", "-f", "l3dist (api|worker)"], check=False).returncode == 1
