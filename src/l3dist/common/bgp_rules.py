"""The rules a BGP peer profile must follow, shared by the API and the agent's config drive."""

from __future__ import annotations


def peer_profile_errors(
    auth_type: str | None,
    password: str | None,
    hold_time: int | None,
    keepalive_interval: int | None,
) -> list[tuple[str, str]]:
    """(field, message) for each broken rule; empty when the profile is consistent."""
    errors: list[tuple[str, str]] = []
    if hold_time is not None and 0 < hold_time < 3:
        errors.append(("hold_time", "hold_time must be 0 or between 3 and 65535 (RFC 4271)"))
    if auth_type == "md5" and not password:
        errors.append(("password", "auth_type md5 needs a password"))
    if password and auth_type != "md5":
        errors.append(("password", "password is only valid with auth_type md5"))
    if keepalive_interval is not None and hold_time and keepalive_interval >= hold_time:
        errors.append(("keepalive_interval", "keepalive_interval must be below hold_time"))
    return errors
