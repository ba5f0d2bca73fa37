"""Networks and subnets held in memory (what the noop network driver serves), and stable ids.

Stable ids are UUIDv5 of a name, so a network or subnet defined by name gets the same id on
every machine (configuration, tests and documentation can refer to it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from l3dist.network.exceptions import NetworkNotFound, SubnetNotFound
from l3dist.network.models import Network, Subnet

NAMESPACE = uuid.UUID("6c3d1f5e-9a57-4c38-9a0e-5b8f0d7d3a11")


def stable_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


class Catalog:
    """get_network / get_subnet over a fixed set of networks and subnets, with no database."""

    def __init__(self, networks: Iterable[Network] = (), subnets: Iterable[Subnet] = ()) -> None:
        self._networks = {n.id: n for n in networks}
        self.subnets = {s.id: s for s in subnets}

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
