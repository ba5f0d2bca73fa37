"""BGP MD5 authentication against a ToR that requires a password, for each speaker driver."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator

import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import amphora, fabric, vips
from l3dist_lab.amphora import LabAmphora, default_peers
from l3dist_lab.config import TOR_NS, LabConfig
from l3dist_lab.fib import FibWatcher, has

from .conftest import VIP4

PASSWORD = "lab-secret-1"


@pytest.fixture(scope="module")
def lab_config() -> LabConfig:
    return LabConfig(bgp_password=PASSWORD)


def md5_drops() -> int:
    """Segments the ToR kernel dropped for a missing or wrong MD5 signature."""
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            TOR_NS,
            "nstat",
            "-az",
            "TcpExtTCPMD5Failure",
            "TcpExtTCPMD5Unexpected",
            "TcpExtTCPMD5NotFound",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line.startswith("TcpExt"))


@pytest.fixture(scope="module", params=["bird", "exabgp"])
def pair(request: pytest.FixtureRequest, lab: LabConfig) -> Iterator[tuple[LabAmphora, LabAmphora]]:
    good = amphora.create(lab, request.param, speakers=default_peers(lab, PASSWORD))
    bad = amphora.create(lab, request.param, speakers=default_peers(lab, "wrong-password"))
    try:
        yield good, bad
    finally:
        amphora.delete(good.id)
        amphora.delete(bad.id)


def test_right_password_establishes_and_announces(
    pair: tuple[LabAmphora, LabAmphora], fib: FibWatcher
) -> None:
    good, _ = pair
    vips.announce(good, VIP4)
    fib.wait_until(host_prefix(VIP4), has(good.frontend_ip4), timeout=30)
    peers = {p["peer_id"]: p for p in good.client().bgp_status()["peers"]}
    assert peers["tor-v4"]["established"] and peers["tor-v6"]["established"]


def test_wrong_password_gets_no_session_and_status_says_so(
    pair: tuple[LabAmphora, LabAmphora], fib: FibWatcher
) -> None:
    _, bad = pair
    drops_before = md5_drops()
    vips.announce(bad, VIP4)  # accepted by the agent, but nothing reaches the fabric
    time.sleep(4)  # several connect attempts (connect retry is 1 s)
    status = bad.client().bgp_status()
    assert all(not p["established"] for p in status["peers"]), status
    assert {p["state"] for p in status["peers"]} & {"Established"} == set()
    sessions = {s.peer: s.state for s in fabric.bgp_sessions()}
    assert sessions.get(bad.mgmt_ip4) != "Established"
    assert bad.frontend_ip4 not in fib.nexthops(host_prefix(VIP4))
    assert md5_drops() > drops_before


def test_the_password_is_only_in_private_configuration_files(
    pair: tuple[LabAmphora, LabAmphora],
) -> None:
    """Never logged, never answered by the agent: only the assignment the controller sent,
    the amphora configuration the agent built from it and the speaker's own configuration
    hold it, each mode 0600."""
    good, _ = pair
    assert PASSWORD not in json.dumps(good.client().bgp_status())
    assert PASSWORD not in json.dumps(good.client().info())
    holders = []
    for path in good.dir.rglob("*"):
        if path.is_file() and not path.is_fifo() and PASSWORD.encode() in path.read_bytes():
            holders.append(path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert not path.name.endswith(".log"), path
    assert good.agent_config_path in holders
    assert len(holders) >= 3, holders  # assignment, amphora and speaker configurations
