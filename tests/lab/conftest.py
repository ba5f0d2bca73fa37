"""Lab fixtures: a fresh fabric per test module, amphorae per driver."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import amphora, fabric, vips
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import environment
from l3dist_lab.fib import FibWatcher, has

VIP4 = LabConfig().vip(4)
VIP6 = LabConfig().vip(6)


@pytest.fixture(scope="session", autouse=True)
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The controller database the lab records its networks in and the local CA that issues the
    amphorae's certificates (the CLI processes the tests start inherit both): fresh for the
    run, never the machine's own."""
    state = tmp_path_factory.mktemp("lab-state")
    url = f"sqlite:///{state / 'l3dist.db'}"
    with environment(L3DIST_DATABASE_URL=url, L3DIST_CA_DIR=str(state / "ca")):
        yield url


@pytest.fixture(scope="module")
def lab_config() -> LabConfig:
    return LabConfig()


@pytest.fixture(scope="module")
def lab(lab_prerequisites: None, lab_config: LabConfig) -> Iterator[LabConfig]:
    fabric.down()
    fabric.up(lab_config)
    try:
        yield lab_config
    finally:
        fabric.down()


@pytest.fixture(scope="module")
def fib(lab: LabConfig) -> Iterator[FibWatcher]:
    with FibWatcher() as watcher:
        yield watcher


create_amphorae = amphora.create_many


def announce_all(amps: list[LabAmphora], fib: FibWatcher) -> None:
    for vip in (VIP4, VIP6):
        for amp in amps:
            vips.announce(amp, vip)
    for vip, version in ((VIP4, 4), (VIP6, 6)):
        wanted = {a.frontend_ip(version) for a in amps}
        fib.wait_until(host_prefix(vip), lambda hops, w=wanted: w <= hops, timeout=30)


@pytest.fixture(scope="module", params=["bird", "exabgp"])
def amp(request: pytest.FixtureRequest, lab: LabConfig, fib: FibWatcher) -> Iterator[LabAmphora]:
    """One amphora of each speaker announcing the two lab VIPs through its agent."""
    created = amphora.create(lab, request.param)
    vips.announce(created, VIP4)
    vips.announce(created, VIP6)
    fib.wait_until(host_prefix(VIP4), has(created.frontend_ip4), timeout=30)
    fib.wait_until(host_prefix(VIP6), has(created.frontend_ip6), timeout=30)
    try:
        yield created
    finally:
        amphora.delete(created.id)


@pytest.fixture
def http(amp: LabAmphora) -> Iterator[httpx.Client]:
    """The agent API of ``amp``, with the controller's certificate."""
    with amp.client() as client:
        yield client.http
