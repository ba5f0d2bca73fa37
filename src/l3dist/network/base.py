"""AbstractNetworkDriver: the methods of the network-driver-interface spec.

Implementations must be stateless and safe in parallel, and must expect a rollback (revert) when
one of their non-nullipotent methods raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from l3dist.network.models import Interface, Network, Port, Subnet


class AbstractNetworkDriver(ABC):
    @abstractmethod
    def plug_vip(self, loadbalancer: Any, vip: Any) -> list[Any]:
        """Route VIP traffic to the load balancer's amphorae; returns the amphorae.

        Raises PlugVIPException, PortNotFound."""

    @abstractmethod
    def unplug_vip(self, loadbalancer: Any, vip: Any) -> None:
        """Raises UnplugVIPException, PluggedVIPNotFound."""

    @abstractmethod
    def allocate_vip(self, loadbalancer: Any) -> Any:
        """Reserve a VIP for the load balancer; returns the VIP.

        Raises AllocateVIPException, PortNotFound, SubnetNotFound."""

    @abstractmethod
    def deallocate_vip(self, vip: Any) -> None:
        """Raises DeallocateVIPException, VIPInUse, VIPConfigurationNotFound."""

    @abstractmethod
    def plug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> Interface:
        """Raises PlugNetworkException, AmphoraNotFound, NetworkNotFound."""

    @abstractmethod
    def unplug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> None:
        """Raises UnplugNetworkException, AmphoraNotFound, NetworkNotFound, NetworkException."""

    @abstractmethod
    def get_plugged_networks(self, compute_id: str) -> list[Interface]:
        """The amphora's current interfaces."""

    @abstractmethod
    def update_vip(self, loadbalancer: Any) -> None:
        """Hook to update the VIP from the load balancer's state."""

    @abstractmethod
    def get_network(self, network_id: str) -> Network:
        """Raises NetworkException, NetworkNotFound."""

    @abstractmethod
    def get_subnet(self, subnet_id: str) -> Subnet:
        """Raises NetworkException, SubnetNotFound."""

    @abstractmethod
    def get_port(self, port_id: str) -> Port:
        """Raises NetworkException, PortNotFound."""

    @abstractmethod
    def failover_preparation(self, amphora: Any) -> None:
        """Raises PortNotFound."""

    # l3dist addition: the API lists networks (GET /v2/networks) for clients such as
    # python-octaviaclient that resolve names through the network service.
    @property
    @abstractmethod
    def networks(self) -> dict[str, Network]:
        """Every network the driver can plug, by id."""
