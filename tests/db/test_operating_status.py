"""A load balancer's operating status follows its amphorae's registrations with the distributor:
ONLINE when all are registered, DEGRADED when some are, OFFLINE when none or when disabled."""

from __future__ import annotations

import pytest

from l3dist.common import constants as c
from l3dist.controller.tasks import operating_status
from l3dist.db.models import Amphora, AmphoraRegistration, LoadBalancer
from l3dist.db.session import Database, upgrade


@pytest.mark.parametrize(
    ("registered", "enabled", "expected"),
    [
        (3, True, c.ONLINE),
        (2, True, c.DEGRADED),
        (1, True, c.DEGRADED),
        (0, True, c.OFFLINE),
        (3, False, c.OFFLINE),
    ],
)
def test_operating_status_from_registrations(
    db_url: str, registered: int, enabled: bool, expected: str
) -> None:
    upgrade(db_url)
    db = Database(db_url)
    with db.session() as s:
        lb = LoadBalancer(
            id="lb",
            project_id="p",
            provisioning_status=c.ACTIVE,
            operating_status=c.ONLINE,
            enabled=enabled,
            topology=c.TOPOLOGY_ACTIVE_ACTIVE,
            amphora_count=3,
        )
        s.add(lb)
        s.flush()
        for i in range(3):
            s.add(Amphora(id=f"a{i}", status=c.AMPHORA_ALLOCATED, load_balancer_id="lb"))
        # An amphora being deleted does not count.
        s.add(Amphora(id="old", status=c.PENDING_DELETE, load_balancer_id="lb"))
        s.flush()
        for i in range(registered):
            s.add(AmphoraRegistration(amphora_id=f"a{i}", load_balancer_id="lb"))
        s.flush()
        assert operating_status(s, lb) == expected
