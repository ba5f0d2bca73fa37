"""The controller's part of a VIP route's flows (create_vip_route, delete_vip_route): its status,
and the network driver's reservation of its VIP address. The agents are called by the
distributor driver's subflows between them (``l3dist.distributor.l3_bgp_vip_routes``)."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from l3dist.common import constants as c
from l3dist.controller.tasks import ServiceTask
from l3dist.db.models import VipRoute
from l3dist.network.exceptions import NetworkException


class MarkVipRouteErrorOnRevert(ServiceTask):
    """First task of a VIP route's flow: if anything after it fails for good, the route ends
    in ERROR (the reason is the job's error, shown as its ``status_reason``), never PENDING_*."""

    def execute(self, route_id: str) -> None:
        return None

    def revert(self, route_id: str, **_: Any) -> None:
        with self.services.db.session(writer=True) as session:
            route = session.get(VipRoute, route_id)
            if route is not None:
                route.provisioning_status = c.ERROR


class MarkVipRouteActive(ServiceTask):
    """Last task of a route's create: every amphora that runs the distributor's speakers
    announces it."""

    def execute(self, route_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            route = session.get(VipRoute, route_id)
            if route is not None:
                route.provisioning_status = c.ACTIVE


class DeleteVipRouteRow(ServiceTask):
    """Last task of a route's delete, once it is withdrawn everywhere: the row goes, and with
    the last route of its VIP (same project and distributor) the address reservation, so the
    address may be handed out again."""

    def execute(self, route_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            route = session.get(VipRoute, route_id)
            if route is None:
                return  # a resumed flow: already gone
            others = session.scalar(
                select(VipRoute.id)
                .where(
                    VipRoute.id != route.id,
                    VipRoute.project_id == route.project_id,
                    VipRoute.distributor_id == route.distributor_id,
                    VipRoute.vip_ip == route.vip_ip,
                )
                .limit(1)
            )
            port_id = None if others else route.port_id
            session.delete(route)
        if port_id is not None:  # absent already (a resumed flow released it) is fine
            with contextlib.suppress(NetworkException):
                self.services.network.deallocate_vip(SimpleNamespace(port_id=port_id))
