"""The L3_BGP distributor's config_data: which BGP speakers (with their peers) its amphorae run,
and the fabric's router MACs for flow rescue.

``{"bgp_speaker_ids": [<id>, ...], "router_macs": ["02:00:5e:00:01:01", ...], "mode":
"combined", "distributor_amphorae": 2, "nexthop_bfd": {...}}``: at most one speaker per IP
version; router_macs (optional) are the link-layer addresses the routers send from on the
front end (both ToRs, VRRP or anycast gateway MACs), used besides the ones the amphorae learn
from their front-end gateways.

``mode``: ``combined`` (the default: every load-balancing amphora runs the speakers and
announces itself) or ``dedicated`` (spec P2: ``distributor_amphorae`` distributor amphorae,
2 to 8, default 2, hold the only BGP sessions and announce every load-balancing amphora with
ADD-PATH, watching each by BFD with the ``nexthop_bfd`` timers; the load-balancing amphorae run
no BGP). The mode of a distributor is fixed once it exists.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from l3dist.contracts.agent_config import NexthopBfd
from l3dist.db.models import BgpSpeaker

KNOWN_KEYS = {"bgp_speaker_ids", "router_macs", "mode", "distributor_amphorae", "nexthop_bfd"}
COMBINED, DEDICATED = "combined", "dedicated"
MIN_DISTRIBUTOR_AMPHORAE, MAX_DISTRIBUTOR_AMPHORAE = 2, 8
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class ConfigError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def validate(session: Session, config: dict[str, Any] | None) -> dict[str, Any]:
    """The normalized config, or ConfigError naming the offending key."""
    config = dict(config or {})
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"config_data: unknown key {key} for L3_BGP", f"config_data.{key}")
    ids = config.get("bgp_speaker_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ConfigError(
            "config_data.bgp_speaker_ids must be a list of ids", "config_data.bgp_speaker_ids"
        )
    versions: dict[int, str] = {}
    for speaker_id in ids:
        speaker = session.get(BgpSpeaker, speaker_id)
        if speaker is None:
            raise ConfigError(
                f"config_data.bgp_speaker_ids: BGP speaker {speaker_id} not found",
                "config_data.bgp_speaker_ids",
            )
        if speaker.ip_version in versions:
            raise ConfigError(
                f"config_data.bgp_speaker_ids: speakers {versions[speaker.ip_version]} and "
                f"{speaker_id} are both IPv{speaker.ip_version}; give one per IP version",
                "config_data.bgp_speaker_ids",
            )
        versions[speaker.ip_version] = speaker_id
    result: dict[str, Any] = {"bgp_speaker_ids": list(ids)}
    if "router_macs" in config:
        result["router_macs"] = _router_macs(config["router_macs"])
    result.update(_mode(config))
    return result


def _mode(config: dict[str, Any]) -> dict[str, Any]:
    """The mode keys, normalized: nothing for combined, the count and timers for dedicated."""
    chosen = config.get("mode", COMBINED)
    if chosen not in (COMBINED, DEDICATED):
        raise ConfigError(
            f"config_data.mode must be {COMBINED} or {DEDICATED}, not {chosen!r}",
            "config_data.mode",
        )
    if chosen == COMBINED:
        for key in ("distributor_amphorae", "nexthop_bfd"):
            if key in config:
                raise ConfigError(
                    f"config_data.{key} is only for mode {DEDICATED}", f"config_data.{key}"
                )
        return {}
    count = config.get("distributor_amphorae", MIN_DISTRIBUTOR_AMPHORAE)
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not MIN_DISTRIBUTOR_AMPHORAE <= count <= MAX_DISTRIBUTOR_AMPHORAE
    ):
        raise ConfigError(
            f"config_data.distributor_amphorae must be an integer from "
            f"{MIN_DISTRIBUTOR_AMPHORAE} (redundancy) to {MAX_DISTRIBUTOR_AMPHORAE}",
            "config_data.distributor_amphorae",
        )
    try:
        timers = NexthopBfd.model_validate(config.get("nexthop_bfd", {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        field = "config_data.nexthop_bfd" + (f".{where}" if where else "")
        raise ConfigError(f"{field}: {first.get('msg')}", field) from None
    return {"mode": DEDICATED, "distributor_amphorae": count, "nexthop_bfd": timers.model_dump()}


def mode(config: dict[str, Any] | None) -> str:
    return str((config or {}).get("mode", COMBINED))


def distributor_amphorae(config: dict[str, Any] | None) -> int:
    """How many distributor amphorae a dedicated distributor runs (0 for combined)."""
    if mode(config) != DEDICATED:
        return 0
    return int((config or {}).get("distributor_amphorae", MIN_DISTRIBUTOR_AMPHORAE))


def nexthop_bfd(config: dict[str, Any] | None) -> NexthopBfd:
    return NexthopBfd.model_validate((config or {}).get("nexthop_bfd", {}))


def _router_macs(macs: Any) -> list[str]:
    field = "config_data.router_macs"
    if not isinstance(macs, list) or not all(isinstance(m, str) for m in macs):
        raise ConfigError(f"{field} must be a list of MAC addresses", field)
    normalized = [m.lower() for m in macs]
    for mac in normalized:
        if not MAC.match(mac) or int(mac[:2], 16) & 1:
            raise ConfigError(f"{field}: {mac} is not a unicast MAC address", field)
    return sorted(set(normalized))


def router_macs(config: dict[str, Any] | None) -> list[str]:
    return list((config or {}).get("router_macs", []))


def speakers_in_use(config: dict[str, Any] | None) -> list[str]:
    return list((config or {}).get("bgp_speaker_ids", []))
