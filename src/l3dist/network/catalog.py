"""The lab's networks and subnets as the network driver reports them, with stable ids.

The ids are UUIDv5 of the names, so the API, the CLI and the tests can refer to ``anycast-net``'s
IPv4 subnet by the same id on every machine.
"""

from __future__ import annotations

import uuid

from l3dist.lab.config import LabConfig
from l3dist.network.exceptions import NetworkNotFound, SubnetNotFound
from l3dist.network.models import Network, Subnet

NAMESPACE = uuid.UUID("6c3d1f5e-9a57-4c38-9a0e-5b8f0d7d3a11")


def stable_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


class LabCatalog:
    """get_network / get_subnet over the lab's addressing plan (``LabConfig.networks``), with
    no database: what the noop network driver and the API tests serve."""

    def __init__(self, cfg: LabConfig | None = None) -> None:
        self._networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        for name, _bridge, v4, v6, has_gateway in (cfg or LabConfig()).networks():
            network = Network(id=stable_id(name), name=name)
            for version, cidr in ((4, v4), (6, v6)):
                subnet_name = f"{name}-v{version}"
                subnet = Subnet(
                    id=stable_id(subnet_name),
                    name=subnet_name,
                    network_id=network.id,
                    cidr=str(cidr),
                    ip_version=version,
                    gateway_ip=str(cidr[1]) if has_gateway else None,
                )
                self.subnets[subnet.id] = subnet
                network.subnets.append(subnet.id)
            self._networks[network.id] = network

    @property
    def networks(self) -> dict[str, Network]:
        return self._networks

    def get_network(self, network_id: str) -> Network:
        try:
            return self._networks[network_id]
        except KeyError:
            raise NetworkNotFound(f"network {network_id} not found") from None

    def get_subnet(self, subnet_id: str) -> Subnet:
        try:
            return self.subnets[subnet_id]
        except KeyError:
            raise SubnetNotFound(f"subnet {subnet_id} not found") from None

    def subnet_by_name(self, name: str) -> Subnet:
        return next(s for s in self.subnets.values() if s.name == name)
