"""The lab's networks and subnets as an in-memory catalog (``LabConfig.networks``), with the
stable ids the lab's own networks (``l3dist_lab.networks``) give them: what the noop network
driver serves in tests, and what the API tests define for the static driver."""

from __future__ import annotations

from l3dist.network.catalog import Catalog, stable_id
from l3dist.network.models import Network, Subnet
from l3dist_lab.config import LabConfig


def lab_catalog(cfg: LabConfig | None = None) -> Catalog:
    networks: list[Network] = []
    subnets: list[Subnet] = []
    for net in (cfg or LabConfig()).networks():
        network = Network(id=stable_id(net.name), name=net.name, router_external=net.external)
        for version, cidr in net.subnets():
            subnet_name = f"{net.name}-v{version}"
            subnet = Subnet(
                id=stable_id(subnet_name),
                name=subnet_name,
                network_id=network.id,
                cidr=str(cidr),
                ip_version=version,
                gateway_ip=str(cidr[1]) if net.routed else None,
                role=net.role,
            )
            subnets.append(subnet)
            network.subnets.append(subnet.id)
        networks.append(network)
    return Catalog(networks, subnets)
