"""A dedicated distributor's amphorae joining and leaving: failover and scale.

Failover of a dedicated distributor's amphora: make the replacement, then break the old.

The health manager queues ``failover_distributor_amphora`` (target: the distributor, which is
PENDING_UPDATE meanwhile) for a distributor amphora whose heartbeats stopped. Its paths went
with its BGP sessions; the other distributor amphorae carry every path meanwhile (ADD-PATH:
each announces all of them), so nothing waits for this flow but the redundancy. The flow:

1. a replacement is built from the host pool as at create (front end plugged, sessions
   Established), its id from the job so a resumed flow finds it;
2. it takes over what the distributor announces: every registered load-balancing amphora of
   its load balancers (drained ones excepted) and its VIP routes; the load-balancing amphorae
   answer the BFD of the distributor amphorae running now (the replacement's watched paths
   come up once its BFD sessions are answered), and the registration rows name it;
3. the failed amphora goes (host reset, or left out of the pool when it does not answer; port
   released; its rows gone), and the distributor is ACTIVE again.

A failure reverts: the replacement is removed and the distributor is ERROR with the reason
(the failed amphora stays as it was; the remaining ones still announce).

Scale (a change of ``config_data.distributor_amphorae``, in the distributor's update flow):
new ones are built and take over every path the same way; surplus ones (the newest first)
go, the others carrying every path already; the load-balancing amphorae then answer the BFD
of those that remain.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from sqlalchemy import select

from l3dist.common import constants as c
from l3dist.common.parallel import each
from l3dist.controller.distributor_amphorae import (
    amphora_id_for,
    build_one,
    delete_amphorae,
    prepare,
)
from l3dist.controller.services import Services
from l3dist.controller.tasks import ServiceTask
from l3dist.db.models import (
    Amphora,
    AmphoraHealth,
    AmphoraRegistration,
    Distributor,
    LoadBalancer,
    Vip,
)
from l3dist.db.queries import live_amphora_ids, live_vip_routes
from l3dist.distributor import l3_bgp_config
from l3dist.distributor import l3_bgp_dedicated as dedicated
from l3dist.distributor import l3_bgp_vip_routes as vip_routes
from l3dist.distributor.l3_bgp import Target, speaker_configs

log = logging.getLogger(__name__)


def replacement_id(job_id: str, amphora_id: str) -> str:
    return amphora_id_for(job_id, f"replaces/{amphora_id}")


class BuildReplacementDistributorAmphora(ServiceTask):
    """The failed distributor amphora's replacement, built and serving sessions."""

    def execute(self, distributor_id: str, amphora_id: str, job_id: str) -> str:
        new_id = replacement_id(job_id, amphora_id)
        plan = prepare(self.services, distributor_id, [new_id])
        build_one(self.services, plan, new_id)
        log.info("distributor %s: amphora %s replaces %s", distributor_id, new_id, amphora_id)
        return new_id

    def revert(self, amphora_id: str, job_id: str, **_: Any) -> None:
        """The replacement goes; the failed one is the health manager's again (it tries once
        the distributor is ACTIVE again: the operator's update of an ERROR one checks it)."""
        delete_amphorae(self.services, [replacement_id(job_id, amphora_id)])
        with self.services.db.session(writer=True) as session:
            health = session.get(AmphoraHealth, amphora_id)
            if health is not None:
                health.busy = False


def _registered_targets(session: Any, lb: LoadBalancer) -> list[Target]:
    """The load balancer's amphorae the distributor announces: registered, not draining."""
    registered = set(
        session.scalars(
            select(AmphoraRegistration.amphora_id).where(
                AmphoraRegistration.load_balancer_id == lb.id
            )
        )
    )
    targets = []
    for amphora_id in live_amphora_ids(session, lb.id):
        amp = session.get(Amphora, amphora_id)
        if amp is None or amp.id not in registered or amp.drain_started_at is not None:
            continue
        if amp.lb_network_ip and amp.frontend_ip:
            targets.append(Target(amp.id, amp.lb_network_ip, amp.frontend_ip))
    return targets


def take_over(
    services: Services, distributor_id: str, joining: list[str], leaving: set[str]
) -> None:
    """The joining distributor amphorae announce every path and VIP route the distributor
    announces; the load-balancing amphorae answer the BFD of every running one (joining
    included, leaving excluded). Repeatable: what is registered stays."""
    with services.db.session(writer=False) as session:
        distributor = session.get(Distributor, distributor_id)
        assert distributor is not None
        timers = l3_bgp_config.nexthop_bfd(distributor.config_data)
        peers = speaker_configs(session, distributor_id)
        running = [
            s
            for s in dedicated.distributor_amphorae(session, distributor_id)
            if s.amphora_id not in leaving
        ]
        new = [s for s in running if s.amphora_id in joining]
        balancers = session.scalars(
            select(LoadBalancer).join(Vip).where(Vip.distributor_id == distributor_id)
        )
        work = [
            (lb.id, str(lb.vip.ip_address), _registered_targets(session, lb))
            for lb in balancers
            if lb.vip is not None and lb.vip.ip_address
        ]
        routes = [vip_routes.Route.of(r) for r in live_vip_routes(session, distributor_id)]

    answers = {
        version: dedicated.bfd_peers(services, running, timers, version)
        for version in {ipaddress.ip_address(vip).version for _, vip, _ in work}
    }

    def answer_bfd(job: tuple[str, Target]) -> None:
        vip, target = job
        with services.agent(target.amphora_id, target.lb_network_ip) as client:
            client.set_bfd_peers(answers[ipaddress.ip_address(vip).version])

    each(answer_bfd, [(vip, target) for _, vip, targets in work for target in targets])
    for speaker in new:
        for _, vip, targets in work:
            dedicated.announce(services, speaker, vip, targets)
        vip_routes.register_all(
            services, vip_routes.Speaker(speaker.amphora_id, speaker.lb_network_ip), routes
        )
    with services.db.session(writer=True) as session:
        for lb_id, vip, targets in work:
            version = ipaddress.ip_address(vip).version
            for target in targets:
                dedicated.record(session, new, lb_id, distributor_id, target.nexthop_ip,
                                 peers, version)  # fmt: skip


class TakeOverPaths(ServiceTask):
    """The replacement announces what the failed one did (and all the rest)."""

    def execute(self, distributor_id: str, amphora_id: str, replacement_id: str) -> None:
        take_over(self.services, distributor_id, [replacement_id], {amphora_id})


class RemoveFailedDistributorAmphora(ServiceTask):
    """The failed distributor amphora goes, once its replacement announces."""

    def execute(self, amphora_id: str) -> None:
        delete_amphorae(self.services, [amphora_id])


def failover_tasks(services: Services) -> list[ServiceTask]:
    """The failover flow's steps between its distributor's error-on-revert and ACTIVE
    tasks."""
    return [
        BuildReplacementDistributorAmphora(
            services, "build-replacement", provides="replacement_id"
        ),
        TakeOverPaths(services, "take-over-paths"),
        RemoveFailedDistributorAmphora(services, "remove-failed"),
    ]


class ScaleDistributorAmphorae(ServiceTask):
    """As many distributor amphorae as the distributor's configuration says (dedicated mode;
    combined mode has none): missing ones built (ids from the job, so a resumed flow finds
    them) and taking over every path; surplus ones, the newest first, removed."""

    def execute(self, distributor_id: str, job_id: str) -> None:
        with self.services.db.session(writer=False) as session:
            distributor = session.get(Distributor, distributor_id)
            assert distributor is not None
            wanted = l3_bgp_config.distributor_amphorae(distributor.config_data)
            if l3_bgp_config.mode(distributor.config_data) != l3_bgp_config.DEDICATED:
                return
            running = [
                s.amphora_id for s in dedicated.distributor_amphorae(session, distributor_id)
            ]
        candidates = _scale_ids(job_id)
        built_before = [a for a in candidates if a in running]  # a resumed flow's
        missing = max(0, wanted - len(running))
        building = [a for a in candidates if a not in running][:missing]
        if building:
            plan = prepare(self.services, distributor_id, building)
            each(lambda amphora_id: build_one(self.services, plan, amphora_id), building)
        if building or built_before:
            take_over(self.services, distributor_id, built_before + building, set())
        surplus = running[wanted:]
        if surplus:
            take_over(self.services, distributor_id, [], set(surplus))  # BFD answered first
            delete_amphorae(self.services, surplus)
        if building or surplus:
            log.info("distributor %s scaled to %d amphorae (+%d, -%d)", distributor_id,
                     wanted, len(building), len(surplus))  # fmt: skip

    def revert(self, distributor_id: str, job_id: str, **_: Any) -> None:
        """The ones this job built go (those it removed stay removed)."""
        candidates = _scale_ids(job_id)
        with self.services.db.session(writer=False) as session:
            rows = session.scalars(select(Amphora).where(Amphora.id.in_(candidates)))
            mine = [a.id for a in rows if a.status != c.DELETED]
        if mine:
            delete_amphorae(self.services, mine)


def _scale_ids(job_id: str) -> list[str]:
    """The ids of the amphorae a scale job may build, in the order it builds them."""
    return [
        amphora_id_for(job_id, f"scale/{i}") for i in range(l3_bgp_config.MAX_DISTRIBUTOR_AMPHORAE)
    ]
