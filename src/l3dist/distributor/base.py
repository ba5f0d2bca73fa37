"""The distributor driver contract (Octavia's, as the L3 active-active spec uses it): each call
returns a taskflow subflow that the controller's flows embed.

Requires / provides, for every driver:
- get_create_distributor_subflow, get_update_distributor_subflow (its configuration, speakers
  or peer profiles changed: checked again, and what runs on its amphorae brought up to date),
  get_delete_distributor_subflow: require ``distributor_id``.
- get_add_vip_subflow, get_remove_vip_subflow: require ``loadbalancer_id``.
- get_register_amphorae_subflow, get_drain_amphorae_subflow, get_unregister_amphorae_subflow:
  require ``loadbalancer_id`` and ``amphora_ids``. Register makes the amphorae receive the VIP's
  traffic; drain stops new flows reaching them and returns once their established connections
  finished (or the drain timeout expired); unregister stops all traffic at once. Each acts on
  every address of the load balancer (``l3dist.db.queries.lb_addresses``: its VIP and the
  floating IPs bound to its virtual-ip).
- get_unregister_addresses_subflow: requires ``loadbalancer_id``, ``amphora_ids`` and
  ``addresses`` (floating IPs just unbound): the amphorae stop receiving traffic for those
  addresses only; their registrations stay.
- get_register_vip_route_subflow, get_unregister_vip_route_subflow: require ``route_id`` (a
  VIP route, the spec's Register VIP / Unregister VIP): announced by, or withdrawn from, every
  amphora that runs the distributor's speakers (``l3dist.db.queries.speaker_amphorae``).
- get_announce_vip_routes_subflow: requires ``loadbalancer_id`` and ``amphora_ids`` (new
  amphorae): those that run the distributor's speakers announce its VIP routes too.
None of them provides a value. Names are made unique with ``suffix`` so one flow can embed the
same subflow twice (e.g. register the new amphora, unregister the old one in a failover).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from taskflow import task
from taskflow.flow import Flow

from l3dist.amphora_client import AgentClient
from l3dist.db.session import Database


class DistributorServices(Protocol):
    """What a distributor driver's tasks use of the controller's services (the controller's
    ``Services`` has them): the database, agent clients and the drain timeout. A protocol, so
    drivers depend on this contract and not on the controller."""

    db: Database
    drain_timeout: float

    def agent(
        self, amphora_id: str, lb_network_ip: str | None, timeout: float = 10.0
    ) -> AgentClient: ...


class DistributorTask(task.Task):  # type: ignore[misc]
    """A task of a distributor driver: it works through the controller's services."""

    def __init__(self, services: DistributorServices, name: str) -> None:
        super().__init__(name=name)
        self.services = services


class AbstractDistributorDriver(ABC):
    def __init__(self, services: DistributorServices | None = None) -> None:
        self._services = services

    @property
    def services(self) -> DistributorServices:
        assert self._services is not None, "distributor driver used before bind()"
        return self._services

    def bind(self, services: DistributorServices) -> None:
        self._services = services

    @abstractmethod
    def get_create_distributor_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_update_distributor_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_delete_distributor_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_add_vip_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_remove_vip_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_register_amphorae_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_drain_amphorae_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_unregister_amphorae_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_unregister_addresses_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_register_vip_route_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_unregister_vip_route_subflow(self, suffix: str = "") -> Flow: ...

    @abstractmethod
    def get_announce_vip_routes_subflow(self, suffix: str = "") -> Flow: ...
