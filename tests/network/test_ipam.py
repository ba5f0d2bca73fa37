"""IPAM in the database: no address is ever handed out twice, even under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from l3dist.db.models import NetNetwork, NetPort, NetSubnet
from l3dist.db.session import Database, upgrade
from l3dist.network import ipam


@pytest.fixture
def db(db_url: str) -> Database:
    upgrade(db_url)
    database = Database(db_url)
    with database.session() as s:
        s.add(NetNetwork(id="net", name="net"))
        s.add(
            NetSubnet(
                id="sub",
                network_id="net",
                name="sub",
                cidr="198.18.50.0/24",
                ip_version=4,
                gateway_ip="198.18.50.1",
                first_host_index=10,
            )
        )
        s.add_all([NetPort(id=f"port-{i}", network_id="net") for i in range(40)])
    return database


def test_twenty_concurrent_allocations_get_distinct_addresses(db: Database) -> None:
    def grab(i: int) -> str:
        with db.session(writer=True) as s:
            subnet = s.get(NetSubnet, "sub")
            assert subnet is not None
            return ipam.allocate(s, subnet, f"port-{i}")

    with ThreadPoolExecutor(20) as pool:
        addresses = list(pool.map(grab, range(20)))
    assert len(set(addresses)) == 20
    assert min(addresses, key=lambda a: int(a.split(".")[-1])) == "198.18.50.10"


def test_a_taken_or_invalid_address_is_refused(db: Database) -> None:
    with db.session(writer=True) as s:
        subnet = s.get(NetSubnet, "sub")
        assert subnet is not None
        assert ipam.allocate(s, subnet, "port-0", "198.18.50.77") == "198.18.50.77"
    with pytest.raises(ipam.AddressInUse), db.session(writer=True) as s:
        ipam.allocate(s, s.get(NetSubnet, "sub"), "port-1", "198.18.50.77")  # type: ignore[arg-type]
    for bad in ("198.18.51.5", "198.18.50.1", "198.18.50.255", "nope"):
        with pytest.raises(ipam.NetworkException), db.session(writer=True) as s:
            ipam.allocate(s, s.get(NetSubnet, "sub"), "port-1", bad)  # type: ignore[arg-type]
    with db.session(writer=True) as s:
        ipam.release(s, "sub", "198.18.50.77")
        assert ipam.allocate(s, s.get(NetSubnet, "sub"), "port-1", "198.18.50.77")  # type: ignore[arg-type]
