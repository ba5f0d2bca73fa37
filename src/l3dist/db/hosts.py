"""The amphora host pool's states and the claim that hands a host to one amphora.

A claim is one conditional UPDATE (``status = AVAILABLE AND amphora_id IS NULL``), so two
workers building at once never get the same host: the loser's UPDATE matches no row and it
tries the next candidate.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from l3dist.db.models import AmphoraHost

PENDING_ENROLLMENT = "PENDING_ENROLLMENT"
AVAILABLE = "AVAILABLE"
ALLOCATED = "ALLOCATED"
UNREACHABLE = "UNREACHABLE"


class NoFreeHost(RuntimeError):
    """No enabled, AVAILABLE host is left; the message counts the pool by state."""


def claim(session: Session, amphora_id: str, exclude: frozenset[str] = frozenset()) -> AmphoraHost:
    """An enabled AVAILABLE host, now ALLOCATED to amphora_id (hosts in exclude skipped)."""
    candidates = session.scalars(
        select(AmphoraHost.id)
        .where(
            AmphoraHost.status == AVAILABLE,
            AmphoraHost.enabled.is_(True),
            AmphoraHost.amphora_id.is_(None),
        )
        .order_by(AmphoraHost.name)
    ).all()
    for host_id in candidates:
        if host_id in exclude:
            continue
        result = session.execute(
            update(AmphoraHost)
            .where(
                AmphoraHost.id == host_id,
                AmphoraHost.status == AVAILABLE,
                AmphoraHost.amphora_id.is_(None),
            )
            .values(status=ALLOCATED, amphora_id=amphora_id)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            host = session.get(AmphoraHost, host_id, populate_existing=True)
            assert host is not None
            return host
    raise NoFreeHost(f"no free amphora host for amphora {amphora_id} ({pool_summary(session)})")


def pool_summary(session: Session) -> str:
    counts: Counter[str] = Counter()
    for status, enabled in session.execute(select(AmphoraHost.status, AmphoraHost.enabled)):
        counts[status if enabled else "disabled"] += 1
    if not counts:
        return "no host is enrolled"
    return ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items()))


def release(session: Session, host_id: str, status: str = AVAILABLE) -> None:
    """The host holds no amphora any more: back in the pool (or UNREACHABLE, not offered)."""
    session.execute(
        update(AmphoraHost)
        .where(AmphoraHost.id == host_id)
        .values(status=status, amphora_id=None)
        .execution_options(synchronize_session=False)
    )


def take_for_reset(session: Session, host_id: str) -> bool:
    """Out of the pool (UNREACHABLE) while it is reset, if it holds nothing: one conditional
    UPDATE, so a build cannot claim it meanwhile and a reset never takes a live amphora down.
    False: it holds an amphora (or is gone, or not enrolled)."""
    result = session.execute(
        update(AmphoraHost)
        .where(
            AmphoraHost.id == host_id,
            AmphoraHost.amphora_id.is_(None),
            AmphoraHost.status.in_((AVAILABLE, UNREACHABLE)),
        )
        .values(status=UNREACHABLE)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def unreachable(session: Session) -> list[str]:
    """The enrolled hosts out of the pool because they did not answer, holding nothing."""
    return list(
        session.scalars(
            select(AmphoraHost.id).where(
                AmphoraHost.status == UNREACHABLE, AmphoraHost.amphora_id.is_(None)
            )
        )
    )


def holding(session: Session, amphora_id: str) -> AmphoraHost | None:
    return session.scalar(select(AmphoraHost).where(AmphoraHost.amphora_id == amphora_id))
