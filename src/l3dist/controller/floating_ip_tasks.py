"""The tasks of the floating IP job (``update_floating_ips``).

A floating IP bound to a load balancer's virtual-ip is one more address of it
(``l3dist.db.queries.lb_addresses``): its amphorae put it on loopback, HAProxy binds it and
their speakers announce it with their own front-end next hop, exactly as the VIP. So binding
needs no step of its own beyond "register the registered amphorae again" (which now includes
the new address), and unbinding withdraws that address only. Failover, scale and drain find
the floating IPs in the same list and never touch a floating IP row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from l3dist.controller.tasks import ServiceTask
from l3dist.db.models import FloatingIp, VirtualIp
from l3dist.db.queries import FLOATING_ACTIVE as ACTIVE
from l3dist.db.queries import FLOATING_DOWN as DOWN
from l3dist.db.queries import FLOATING_ERROR as ERROR


def _bound_to(session: Any, loadbalancer_id: str, addresses: list[str]) -> list[FloatingIp]:
    return list(
        session.scalars(
            select(FloatingIp)
            .join(VirtualIp, FloatingIp.virtual_ip_id == VirtualIp.id)
            .where(
                VirtualIp.load_balancer_id == loadbalancer_id,
                FloatingIp.floating_ip_address.in_(addresses),
            )
        )
    )


class MarkFloatingIps(ServiceTask):
    """The job's floating IPs that are still bound to the load balancer are ACTIVE (their
    amphorae announce them); those unbound and not bound again meanwhile are DOWN. A row
    already in that status is not written (its updated_at says when it last changed)."""

    def execute(self, loadbalancer_id: str, add: list[str], remove: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            for fip in _bound_to(session, loadbalancer_id, add):
                if fip.status != ACTIVE:
                    fip.status = ACTIVE
            if remove:
                unbound = session.scalars(
                    select(FloatingIp).where(
                        FloatingIp.floating_ip_address.in_(remove),
                        FloatingIp.virtual_ip_id.is_(None),
                    )
                )
                for fip in unbound:
                    if fip.status != DOWN:
                        fip.status = DOWN


class MarkFloatingIpsErrorOnRevert(ServiceTask):
    """First in the job: whatever fails after it leaves the floating IPs the job was binding
    ERROR (still bound, so the user's next step is a new association or a dissociation)."""

    def execute(self) -> None:
        return None

    def revert(self, loadbalancer_id: str, add: list[str], **_: Any) -> None:
        with self.services.db.session(writer=True) as session:
            for fip in _bound_to(session, loadbalancer_id, add):
                fip.status = ERROR
