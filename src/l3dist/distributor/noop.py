"""The noop distributor driver: subflows that do nothing but record what they were asked
(API-level tests)."""

from __future__ import annotations

from taskflow import task
from taskflow.flow import Flow
from taskflow.patterns import linear_flow

from l3dist.distributor.base import AbstractDistributorDriver


class Record(task.Task):  # type: ignore[misc]
    def __init__(self, log: list[tuple[str, object]], name: str, requires: list[str]) -> None:
        super().__init__(name=name, requires=requires)
        self.log = log

    def execute(self, **arguments: object) -> None:
        self.log.append((self.name, arguments))


class NoopDistributorDriver(AbstractDistributorDriver):
    def __init__(self, services: object = None) -> None:
        super().__init__(None)
        self.calls: list[tuple[str, object]] = []

    def _flow(self, name: str, requires: list[str]) -> Flow:
        return linear_flow.Flow(name).add(Record(self.calls, f"noop-{name}", requires))

    def get_create_distributor_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"create-distributor{suffix}", ["distributor_id"])

    def get_update_distributor_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"update-distributor{suffix}", ["distributor_id"])

    def get_delete_distributor_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"delete-distributor{suffix}", ["distributor_id"])

    def get_add_vip_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"add-vip{suffix}", ["loadbalancer_id"])

    def get_remove_vip_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"remove-vip{suffix}", ["loadbalancer_id"])

    def get_register_amphorae_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"register{suffix}", ["loadbalancer_id", "amphora_ids"])

    def get_drain_amphorae_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"drain{suffix}", ["loadbalancer_id", "amphora_ids"])

    def get_unregister_amphorae_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"unregister{suffix}", ["loadbalancer_id", "amphora_ids"])

    def get_unregister_addresses_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"unregister-addresses{suffix}", ["loadbalancer_id", "amphora_ids", "addresses"]
        )

    def get_register_vip_route_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"register-vip-route{suffix}", ["route_id"])

    def get_unregister_vip_route_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"unregister-vip-route{suffix}", ["route_id"])

    def get_announce_vip_routes_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"announce-vip-routes{suffix}", ["loadbalancer_id", "amphora_ids"])
