"""Queries the API, the worker and the health manager share (one definition each)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from l3dist.common import constants as c
from l3dist.db.models import Amphora


def live_amphora_ids(session: Any, loadbalancer_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Amphora.id)
            .where(
                Amphora.load_balancer_id == loadbalancer_id,
                Amphora.status.in_(c.LIVE_AMPHORA_STATUSES),
            )
            .order_by(Amphora.created_at)
        )
    )
