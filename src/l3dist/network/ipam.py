"""IP address management for the static network driver, persisted in the database.

An address is in use exactly when a ``net_ip_allocation`` row holds it; the row's primary key
(subnet, address) makes the database refuse a second holder, so two workers racing for the same
address cannot both get it: the loser retries with the next free one.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from l3dist.db.models import NetIpAllocation, NetSubnet
from l3dist.network.exceptions import NetworkException

MAX_SCAN = 65536
RETRIES = 20


class AddressInUse(NetworkException):
    pass


class SubnetFull(NetworkException):
    pass


def check_address(subnet: NetSubnet, address: str) -> str:
    """The normalized address, or NetworkException when it cannot be used on this subnet."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise NetworkException(f"{address!r} is not an IP address") from None
    network = ipaddress.ip_network(subnet.cidr)
    if ip.version != network.version or ip not in network:
        raise NetworkException(f"{ip} is not in subnet {subnet.id} ({subnet.cidr})")
    if ip == network.network_address or (network.version == 4 and ip == network.broadcast_address):
        raise NetworkException(f"{ip} is not a host address of {subnet.cidr}")
    if subnet.gateway_ip and ip == ipaddress.ip_address(subnet.gateway_ip):
        raise NetworkException(f"{ip} is the gateway of subnet {subnet.id}")
    return str(ip)


def _candidates(subnet: NetSubnet, used: set[str]) -> str:
    network = ipaddress.ip_network(subnet.cidr)
    for index, host in enumerate(network.hosts(), start=1):
        if index > MAX_SCAN:
            break
        if index < subnet.first_host_index:
            continue
        text = str(host)
        if text not in used and text != subnet.gateway_ip:
            return text
    raise SubnetFull(f"subnet {subnet.id} ({subnet.cidr}) has no free address")


def allocate(session: Session, subnet: NetSubnet, port_id: str, address: str | None = None) -> str:
    """Reserve an address (the given one, or the lowest free) for port_id; returns it."""
    if address is not None:
        address = check_address(subnet, address)
    for _ in range(RETRIES):
        used = set(
            session.scalars(
                select(NetIpAllocation.ip_address).where(NetIpAllocation.subnet_id == subnet.id)
            )
        )
        candidate = address or _candidates(subnet, used)
        if address is not None and address in used:
            raise AddressInUse(f"{address} is already in use on subnet {subnet.id}")
        try:
            with session.begin_nested():
                session.add(
                    NetIpAllocation(subnet_id=subnet.id, ip_address=candidate, port_id=port_id)
                )
            return candidate
        except IntegrityError:
            if address is not None:
                raise AddressInUse(f"{address} is already in use on subnet {subnet.id}") from None
    raise SubnetFull(f"could not allocate on subnet {subnet.id}: too much contention")


def release(session: Session, subnet_id: str, address: str) -> None:
    allocation = session.get(NetIpAllocation, (subnet_id, address))
    if allocation is not None:
        session.delete(allocation)
