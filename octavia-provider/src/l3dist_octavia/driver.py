"""``L3distProviderDriver``: Octavia's provider calls, carried out by l3dist.

Octavia validates a request, writes its own records (with their ids), locks the load
balancer and then calls the provider, which must only *accept* the work: l3dist queues a job
and answers at once, and its worker does the rest. Every object is created in l3dist under
Octavia's id, so either side's id names the same object (the driver keeps no mapping).

Flavors pick the L3 topology: every load balancer is ACTIVE_ACTIVE, ``amphora_count`` wide,
on the flavor's ``distributor`` (or the configured defaults). What l3dist does not have (L7,
TLS termination, availability zones, additional VIPs) is refused by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as exc
from octavia_lib.api.drivers import provider_base

from l3dist_octavia import translate
from l3dist_octavia.client import L3distClient, L3distError
from l3dist_octavia.config import Settings, from_oslo_config

LOG = logging.getLogger(__name__)

FLAVOR_METADATA = {
    "amphora_count": "How many amphorae serve the VIP (an integer >= 1): ECMP next hops.",
    "distributor": "The l3dist distributor (name or id) whose BGP speakers announce the VIP.",
    "speaker_driver": "The BGP speaker the amphorae run (bird or exabgp; default: l3dist's).",
}
L7_WHY = "l3dist has no L7 policies or rules (listeners forward to their default pool)"


@contextmanager
def l3dist_call(what: str) -> Iterator[None]:
    """l3dist's refusals as octavia-lib's exceptions: a 400 is an option l3dist cannot take
    (UnsupportedOptionError), a 404 NotFound, a 409 Conflict, anything else DriverError; the
    user sees l3dist's own message."""
    try:
        yield
    except L3distError as error:
        user = f"l3dist refused to {what}: {error.message}"
        operator = f"l3dist provider: {what}: {error}"
        kind: Callable[..., Exception] = exc.DriverError
        if error.status == 400:
            kind = exc.UnsupportedOptionError
        elif error.status == 404:
            kind = exc.NotFound
        elif error.status == 409:
            kind = exc.Conflict
        LOG.warning("%s", operator)
        raise kind(user_fault_string=user, operator_fault_string=operator) from error


class L3distProviderDriver(provider_base.ProviderDriver):  # type: ignore[misc]
    """The provider ``l3dist`` (entry point group ``octavia.api.drivers``)."""

    name = "l3dist"

    def __init__(
        self, settings: Settings | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else from_oslo_config()
        self.client = L3distClient(self.settings, transport=transport)

    # -- load balancers --------------------------------------------------------------------

    def create_vip_port(
        self,
        loadbalancer_id: str,
        project_id: str,
        vip_dictionary: dict[str, Any],
        additional_vip_dicts: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The VIP from l3dist's anycast pool, ahead of the load balancer: a VIP reservation
        (``POST /v2/ports``, device ``lb-<id>``, as Octavia's network driver asks Neutron) on
        the requested subnet (or the network's anycast subnet), at the requested address or
        the lowest free one. ``loadbalancer_create`` then names it (``vip_port_id``) and
        l3dist's load balancer adopts it. Octavia does not own the port: l3dist releases it
        with the load balancer."""
        if additional_vip_dicts:
            raise translate.refuse("additional_vips", "a load balancer has one VIP")
        if vip_dictionary.get("vip_sg_ids"):
            raise translate.refuse("vip_sg_ids", "l3dist has no security groups on VIPs")
        if vip_dictionary.get("vip_port_id"):
            raise translate.refuse(
                "vip_port_id", "l3dist makes the VIP port from its anycast pool: give a subnet"
            )
        address = vip_dictionary.get("vip_address")
        with l3dist_call(f"reserve the VIP of load balancer {loadbalancer_id}"):
            subnet = self._vip_subnet(vip_dictionary, address)
            fixed = {"subnet_id": subnet["id"], **({"ip_address": address} if address else {})}
            port = self.client.create("/v2/ports", "port", {
                "network_id": subnet["network_id"], "fixed_ips": [fixed],
                "device_id": f"lb-{loadbalancer_id}", "device_owner": "Octavia",
                "name": f"octavia-lb-{loadbalancer_id}", "project_id": project_id,
            })  # fmt: skip
        [given] = port["fixed_ips"]
        vip = {
            "vip_address": given["ip_address"],
            "vip_network_id": port["network_id"],
            "vip_port_id": port["id"],
            "vip_subnet_id": given["subnet_id"],
        }
        if vip_dictionary.get("vip_qos_policy_id"):
            vip["vip_qos_policy_id"] = vip_dictionary["vip_qos_policy_id"]
        return vip, []

    def _vip_subnet(self, vip: dict[str, Any], address: str | None) -> dict[str, Any]:
        """The subnet the VIP comes from: the one named, or the network's anycast subnet (of
        the address's IP version, else the lowest version)."""
        if vip.get("vip_subnet_id"):
            answer = self.client.request("GET", f"/v2/subnets/{vip['vip_subnet_id']}")
            return dict(answer["subnet"])
        network_id = vip.get("vip_network_id")
        if not network_id:
            raise translate.refuse("vip_subnet_id", "a VIP needs a subnet or a network")
        params = {"network_id": network_id, "role": "anycast"}
        subnets = self.client.request("GET", "/v2/subnets", params=params)["subnets"]
        version = 6 if address and ":" in address else 4 if address else None
        fitting = sorted(
            (s for s in subnets if version is None or s["ip_version"] == version),
            key=lambda s: s["ip_version"],
        )
        if not fitting:
            raise translate.refuse(
                "vip_network_id", f"network {network_id} has no anycast subnet for the VIP"
            )
        return dict(fitting[0])

    def loadbalancer_create(self, loadbalancer: dm.LoadBalancer) -> None:
        flavor = loadbalancer.flavor if translate.given(loadbalancer.flavor) else {}
        try:
            topology = self.topology(flavor)
            body = translate.loadbalancer_body(loadbalancer, topology)
            with l3dist_call(f"create load balancer {loadbalancer.loadbalancer_id}"):
                self.client.create("/v2/lbaas/loadbalancers", "loadbalancer", body)
        except Exception:
            # Octavia rolls its load balancer back: the reservation create_vip_port made
            # would stay unused.
            self._release_reservation(loadbalancer)
            raise

    def _release_reservation(self, loadbalancer: dm.LoadBalancer) -> None:
        port_id = loadbalancer.vip_port_id
        if not translate.given(port_id):
            return
        try:
            self.client.delete(f"/v2/ports/{port_id}")
        except L3distError as error:  # not ours, or adopted after all: nothing to release
            LOG.info("l3dist provider: VIP port %s kept: %s", port_id, error)

    def loadbalancer_update(self, old_loadbalancer: Any, new_loadbalancer: Any) -> None:
        lb_id = old_loadbalancer.loadbalancer_id
        body = translate.loadbalancer_update_body(new_loadbalancer)
        with l3dist_call(f"update load balancer {lb_id}"):
            self.client.update(f"/v2/lbaas/loadbalancers/{lb_id}", "loadbalancer", body)

    def loadbalancer_delete(self, loadbalancer: Any, cascade: bool = False) -> None:
        lb_id = loadbalancer.loadbalancer_id
        params = {"cascade": "true" if cascade else "false"}
        with l3dist_call(f"delete load balancer {lb_id}"):
            self.client.delete(f"/v2/lbaas/loadbalancers/{lb_id}", params)

    def loadbalancer_failover(self, loadbalancer_id: str) -> None:
        """Replaces each amphora in turn, drained first (l3dist's planned failover)."""
        with l3dist_call(f"fail over load balancer {loadbalancer_id}"):
            self.client.request("PUT", f"/v2/lbaas/loadbalancers/{loadbalancer_id}/failover")

    # -- listeners, pools, members, health monitors -----------------------------------------

    def listener_create(self, listener: dm.Listener) -> None:
        body = translate.listener_body(listener)
        with l3dist_call(f"create listener {listener.listener_id}"):
            self.client.create("/v2/lbaas/listeners", "listener", body)

    def listener_update(self, old_listener: Any, new_listener: Any) -> None:
        body = translate.listener_update_body(new_listener)
        listener_id = old_listener.listener_id
        with l3dist_call(f"update listener {listener_id}"):
            self.client.update(f"/v2/lbaas/listeners/{listener_id}", "listener", body)

    def listener_delete(self, listener: Any) -> None:
        with l3dist_call(f"delete listener {listener.listener_id}"):
            self.client.delete(f"/v2/lbaas/listeners/{listener.listener_id}")

    def pool_create(self, pool: dm.Pool) -> None:
        body = translate.pool_body(pool)
        with l3dist_call(f"create pool {pool.pool_id}"):
            self.client.create("/v2/lbaas/pools", "pool", body)

    def pool_update(self, old_pool: Any, new_pool: Any) -> None:
        body = translate.pool_update_body(new_pool)
        with l3dist_call(f"update pool {old_pool.pool_id}"):
            self.client.update(f"/v2/lbaas/pools/{old_pool.pool_id}", "pool", body)

    def pool_delete(self, pool: Any) -> None:
        with l3dist_call(f"delete pool {pool.pool_id}"):
            self.client.delete(f"/v2/lbaas/pools/{pool.pool_id}")

    def member_create(self, member: dm.Member) -> None:
        body = translate.member_body(member)
        with l3dist_call(f"create member {member.member_id}"):
            self.client.create(f"/v2/lbaas/pools/{member.pool_id}/members", "member", body)

    def member_update(self, old_member: Any, new_member: Any) -> None:
        body = translate.member_update_body(new_member)
        path = f"/v2/lbaas/pools/{old_member.pool_id}/members/{old_member.member_id}"
        with l3dist_call(f"update member {old_member.member_id}"):
            self.client.update(path, "member", body)

    def member_delete(self, member: Any) -> None:
        with l3dist_call(f"delete member {member.member_id}"):
            self.client.delete(f"/v2/lbaas/pools/{member.pool_id}/members/{member.member_id}")

    def member_batch_update(self, pool_id: str, members: list[dm.Member]) -> None:
        """Octavia hands the pool's whole new member list (new ones with fresh ids); l3dist's
        batch call makes it one change (one lock), creating, updating and deleting alike."""
        body = {"members": [translate.member_body(member) for member in members]}
        with l3dist_call(f"batch update the members of pool {pool_id}"):
            self.client.request("PUT", f"/v2/lbaas/pools/{pool_id}/members", body)

    def health_monitor_create(self, healthmonitor: dm.HealthMonitor) -> None:
        body = translate.health_monitor_body(healthmonitor)
        with l3dist_call(f"create health monitor {healthmonitor.healthmonitor_id}"):
            self.client.create("/v2/lbaas/healthmonitors", "healthmonitor", body)

    def health_monitor_update(self, old_healthmonitor: Any, new_healthmonitor: Any) -> None:
        body = translate.health_monitor_update_body(new_healthmonitor)
        hm_id = old_healthmonitor.healthmonitor_id
        with l3dist_call(f"update health monitor {hm_id}"):
            self.client.update(f"/v2/lbaas/healthmonitors/{hm_id}", "healthmonitor", body)

    def health_monitor_delete(self, healthmonitor: Any) -> None:
        hm_id = healthmonitor.healthmonitor_id
        with l3dist_call(f"delete health monitor {hm_id}"):
            self.client.delete(f"/v2/lbaas/healthmonitors/{hm_id}")

    # -- L7: l3dist has none ------------------------------------------------------------------

    def l7policy_create(self, l7policy: Any) -> None:
        raise translate.refuse("l7policy", L7_WHY)

    def l7policy_update(self, old_l7policy: Any, new_l7policy: Any) -> None:
        raise translate.refuse("l7policy", L7_WHY)

    def l7policy_delete(self, l7policy: Any) -> None:
        raise translate.refuse("l7policy", L7_WHY)

    def l7rule_create(self, l7rule: Any) -> None:
        raise translate.refuse("l7rule", L7_WHY)

    def l7rule_update(self, old_l7rule: Any, new_l7rule: Any) -> None:
        raise translate.refuse("l7rule", L7_WHY)

    def l7rule_delete(self, l7rule: Any) -> None:
        raise translate.refuse("l7rule", L7_WHY)

    # -- flavors and availability zones -------------------------------------------------------

    def get_supported_flavor_metadata(self) -> dict[str, str]:
        return dict(FLAVOR_METADATA)

    def validate_flavor(self, flavor_metadata: dict[str, Any]) -> None:
        """Each key known and well typed, and the distributor one l3dist has."""
        self.topology(flavor_metadata)

    def topology(self, flavor: dict[str, Any]) -> translate.Topology:
        """The load balancer's amphora count and distributor id: the flavor's, else the
        configured defaults (no distributor at all: l3dist's only one)."""
        for key in flavor:
            if key not in FLAVOR_METADATA:
                raise translate.refuse(
                    f"flavor key {key}", f"the keys are {', '.join(FLAVOR_METADATA)}"
                )
        count = flavor.get("amphora_count", self.settings.default_amphora_count)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise translate.refuse(f"flavor key amphora_count {count!r}", "an integer >= 1")
        speaker = flavor.get("speaker_driver")
        if speaker is not None and (not isinstance(speaker, str) or not speaker):
            raise translate.refuse(
                f"flavor key speaker_driver {speaker!r}", "a speaker driver's name"
            )
        reference = flavor.get("distributor", self.settings.default_distributor)
        if reference is None:
            return translate.Topology(count, None, speaker)
        if not isinstance(reference, str) or not reference:
            raise translate.refuse(
                f"flavor key distributor {reference!r}", "a distributor's name or id"
            )
        with l3dist_call(f"find distributor {reference}"):
            found = self.client.find_distributor(reference)
        if found is None:
            raise exc.NotFound(
                user_fault_string=f"flavor key distributor: l3dist has no distributor {reference}",
                operator_fault_string=f"l3dist provider: no distributor {reference!r}",
            )
        return translate.Topology(count, str(found["id"]), speaker)

    def get_supported_availability_zone_metadata(self) -> dict[str, str]:
        """None: l3dist places amphorae on its own hosts, with no zones."""
        return {}

    def validate_availability_zone(self, availability_zone_metadata: dict[str, Any]) -> None:
        for key in availability_zone_metadata:
            raise translate.refuse(
                f"availability zone key {key}", "l3dist has no availability zones"
            )
