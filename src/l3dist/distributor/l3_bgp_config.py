"""The L3_BGP distributor's config_data: which BGP speakers (with their peers) its amphorae run,
and the fabric's router MACs for flow rescue.

``{"bgp_speaker_ids": [<id>, ...], "router_macs": ["02:00:5e:00:01:01", ...]}``: at most one
speaker per IP version; router_macs (optional) are the link-layer addresses the routers send
from on the front end (both ToRs, VRRP or anycast gateway MACs), used besides the ones the
amphorae learn from their front-end gateways.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from l3dist.db.models import BgpSpeaker

KNOWN_KEYS = {"bgp_speaker_ids", "router_macs"}
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
    return result


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
