"""Announcing a VIP from lab amphorae through their agents (what the distributor driver will do)."""

from __future__ import annotations

import ipaddress

from l3dist.amphora_client import AgentClientError
from l3dist_lab.amphora import LabAmphora


def announce(amp: LabAmphora, vip: str, peer_id: str | None = None) -> None:
    """Plug the VIP on the amphora's loopback, then Register Amphora with its front-end IP."""
    version = ipaddress.ip_address(vip).version
    client = amp.client()
    try:
        client.plug_vip(vip)
        client.register_amphora(amp.id, vip, amp.frontend_ip(version), peer_id)
    finally:
        client.close()


def withdraw(amp: LabAmphora, vip: str, peer_id: str | None = None) -> None:
    """Unregister Amphora: the route is withdrawn, then the VIP leaves the loopback."""
    version = ipaddress.ip_address(vip).version
    client = amp.client()
    try:
        client.unregister_amphora(amp.id, vip, amp.frontend_ip(version), peer_id)
    finally:
        client.close()


def withdraw_if_registered(amp: LabAmphora, vip: str) -> None:
    """withdraw(), for clean-up: an amphora that does not announce the VIP is fine."""
    try:
        withdraw(amp, vip)
    except AgentClientError as exc:
        if exc.status != 404:
            raise
