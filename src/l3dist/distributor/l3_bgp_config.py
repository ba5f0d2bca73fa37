"""The L3_BGP distributor's config_data: which BGP speakers (with their peers) its amphorae run.

``{"bgp_speaker_ids": [<id>, ...]}`` with at most one speaker per IP version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from l3dist.db.models import BgpSpeaker

KNOWN_KEYS = {"bgp_speaker_ids"}


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
    return {"bgp_speaker_ids": list(ids)}


def speakers_in_use(config: dict[str, Any] | None) -> list[str]:
    return list((config or {}).get("bgp_speaker_ids", []))
