"""The lab's networks and subnets as an in-memory catalog (``LabConfig.networks``), with the
stable ids the lab's network driver gives them: what the noop network driver serves in tests."""

from __future__ import annotations

from l3dist.network.catalog import Catalog, stable_id
from l3dist.network.models import Network, Subnet
from l3dist_lab.config import LabConfig


def lab_catalog(cfg: LabConfig | None = None) -> Catalog:
    networks: list[Network] = []
    subnets: list[Subnet] = []
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
            subnets.append(subnet)
            network.subnets.append(subnet.id)
        networks.append(network)
    return Catalog(networks, subnets)
