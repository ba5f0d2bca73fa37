"""The ``noop`` network driver: records every call and returns consistent fake objects.

For API-level tests only. Networks and subnets come from the catalog it is given (none by
default); ports, interfaces and VIPs exist only in memory, and the documented exceptions are
raised as the real driver raises them.
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from typing import Any

from l3dist.db.session import Database
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.catalog import Catalog
from l3dist.network.exceptions import (
    AllocateVIPException,
    AmphoraNotFound,
    PluggedVIPNotFound,
    PlugNetworkException,
    PortNotFound,
    UnplugNetworkException,
    VIPConfigurationNotFound,
)
from l3dist.network.models import FixedIP, Interface, Network, Port, Subnet, VipInfo


class NoopNetworkDriver(AbstractNetworkDriver):
    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ports: dict[str, Port] = {}
        self.amphorae: set[str] = set()
        self.plugged_vips: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @property
    def networks(self) -> dict[str, Network]:
        return self.catalog.networks

    def _record(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))

    def add_amphora(self, compute_id: str) -> None:
        """Make a compute id known (the noop compute driver's job)."""
        self.amphorae.add(compute_id)

    def _address(self, subnet: Subnet, wanted: str | None) -> str:
        used = {
            f.ip_address
            for p in self.ports.values()
            for f in p.fixed_ips
            if f.subnet_id == subnet.id
        }
        if wanted is not None:
            if wanted in used or not subnet.contains(wanted):
                raise AllocateVIPException(f"{wanted} is not free on subnet {subnet.id}")
            return wanted
        for index, host in enumerate(ipaddress.ip_network(subnet.cidr).hosts(), start=1):
            if index >= 10 and str(host) not in used:
                return str(host)
        raise AllocateVIPException(f"subnet {subnet.id} is full")

    def _port(
        self,
        network_id: str,
        wanted: list[tuple[Subnet, str | None]],
        device_id: str,
        owner: str,
    ) -> Port:
        with self._lock:
            port = Port(
                id=str(uuid.uuid4()),
                network_id=network_id,
                device_id=device_id,
                device_owner=owner,
                status="ACTIVE",
                fixed_ips=[FixedIP(sn.id, self._address(sn, address)) for sn, address in wanted],
            )
            self.ports[port.id] = port
            return port

    def plug_vip(self, loadbalancer: Any, vip: Any) -> list[Any]:
        self._record("plug_vip", loadbalancer, vip)
        for amphora in loadbalancer.amphorae:
            if amphora.id not in self.amphorae:
                raise PortNotFound(f"amphora {amphora.id} has no port")
            self.plugged_vips.add((amphora.id, vip.ip_address))
        return list(loadbalancer.amphorae)

    def unplug_vip(self, loadbalancer: Any, vip: Any) -> None:
        self._record("unplug_vip", loadbalancer, vip)
        keys = {(a.id, vip.ip_address) for a in loadbalancer.amphorae} & self.plugged_vips
        if not keys:
            raise PluggedVIPNotFound(f"VIP {vip.ip_address} is not plugged")
        self.plugged_vips -= keys

    def allocate_vip(self, loadbalancer: Any) -> Any:
        self._record("allocate_vip", loadbalancer)
        subnet = self.get_subnet(loadbalancer.vip.subnet_id)
        port = self._port(
            subnet.network_id,
            [(subnet, loadbalancer.vip.ip_address)],
            f"lb-{loadbalancer.id}",
            "Octavia",
        )
        return VipInfo(
            loadbalancer.id, port.fixed_ips[0].ip_address, subnet.id, subnet.network_id, port.id
        )

    def deallocate_vip(self, vip: Any) -> None:
        self._record("deallocate_vip", vip)
        if self.ports.pop(vip.port_id, None) is None:
            raise VIPConfigurationNotFound(f"VIP port {vip.port_id} not found")

    def plug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> Interface:
        self._record("plug_network", compute_id, network_id, ip_address)
        network = self.get_network(network_id)
        if compute_id not in self.amphorae:
            raise AmphoraNotFound(f"amphora {compute_id} not found")
        for port in self.ports.values():
            if (
                port.device_id == compute_id
                and port.network_id == network_id
                and (ip_address is None or any(f.ip_address == ip_address for f in port.fixed_ips))
            ):
                return Interface(port.id, network_id, compute_id, port.fixed_ips)
        subnets = [self.get_subnet(s) for s in network.subnets]
        if ip_address is None:
            wanted: list[tuple[Subnet, str | None]] = [(s, None) for s in subnets]
        else:
            wanted = [(s, ip_address) for s in subnets if s.contains(ip_address)]
            if not wanted:
                raise PlugNetworkException(f"{ip_address} is on no subnet of {network_id}")
        try:
            port = self._port(network_id, wanted, compute_id, "compute:l3dist-amphora")
        except AllocateVIPException as exc:
            raise PlugNetworkException(str(exc)) from exc
        return Interface(port.id, network_id, compute_id, port.fixed_ips)

    def unplug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> None:
        self._record("unplug_network", compute_id, network_id, ip_address)
        self.get_network(network_id)
        if compute_id not in self.amphorae:
            raise AmphoraNotFound(f"amphora {compute_id} not found")
        doomed = [
            p.id
            for p in self.ports.values()
            if p.device_id == compute_id
            and p.network_id == network_id
            and (ip_address is None or any(f.ip_address == ip_address for f in p.fixed_ips))
        ]
        if not doomed:
            raise UnplugNetworkException(f"amphora {compute_id} has no port on {network_id}")
        for port_id in doomed:
            self.ports.pop(port_id, None)

    def get_plugged_networks(self, compute_id: str) -> list[Interface]:
        self._record("get_plugged_networks", compute_id)
        return [
            Interface(p.id, p.network_id, compute_id, p.fixed_ips)
            for p in self.ports.values()
            if p.device_id == compute_id
        ]

    def update_vip(self, loadbalancer: Any) -> None:
        self._record("update_vip", loadbalancer)

    def get_network(self, network_id: str) -> Network:
        return self.catalog.get_network(network_id)

    def get_subnet(self, subnet_id: str) -> Subnet:
        return self.catalog.get_subnet(subnet_id)

    def get_port(self, port_id: str) -> Port:
        try:
            return self.ports[port_id]
        except KeyError:
            raise PortNotFound(f"port {port_id} not found") from None

    def failover_preparation(self, amphora: Any) -> None:
        self._record("failover_preparation", amphora)
        if not any(p.device_id == amphora.id for p in self.ports.values()):
            raise PortNotFound(f"amphora {amphora.id} has no ports")


def from_database(db: Database) -> NoopNetworkDriver:
    """The entry point's factory: the noop driver keeps nothing in the database."""
    return NoopNetworkDriver()
