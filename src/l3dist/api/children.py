"""What listeners, pools, members and health monitors share: Octavia's status rules.

A change to a child object locks its load balancer (ACTIVE/ERROR -> PENDING_UPDATE, else 409),
marks the object PENDING_CREATE / PENDING_UPDATE / PENDING_DELETE and leaves the rest to the
controller worker.
"""

from __future__ import annotations

from typing import Any

from l3dist.api.common import lock_load_balancer, timestamp
from l3dist.db import jobs
from l3dist.db.models import ProvisionedMixin


def base_fields(obj: ProvisionedMixin) -> dict[str, Any]:
    return {
        "id": obj.id,
        "name": obj.name or "",
        "description": obj.description or "",
        "admin_state_up": obj.enabled,
        "project_id": obj.project_id,
        "tenant_id": obj.project_id,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        "created_at": timestamp(obj.created_at),
        "updated_at": timestamp(obj.updated_at),
        "tags": obj.tags or [],
    }


def apply_common_update(obj: ProvisionedMixin, req: Any) -> None:
    for name in ("name", "description", "tags"):
        value = getattr(req, name, None)
        if value is not None:
            setattr(obj, name, value)
    if getattr(req, "admin_state_up", None) is not None:
        obj.enabled = req.admin_state_up


def mark(obj: ProvisionedMixin, lb_id: str, session: Any, status: str) -> None:
    """Lock the load balancer, mark the object, and queue the worker's flow that applies it."""
    lock_load_balancer(session, lb_id)
    obj.provisioning_status = status
    jobs.submit(session, jobs.APPLY_LOAD_BALANCER, lb_id)
