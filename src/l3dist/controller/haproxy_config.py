"""HAProxy configuration of a load balancer, rendered by the controller and pushed to every
amphora of it (one text for all: the amphora names itself through ``${L3DIST_AMPHORA_ID}``).

Listeners bind the VIP itself; the amphora-haproxy namespace allows non-local binds (as Octavia's
amphorae do), so a configuration stays valid while the VIP is off the loopback. Disabled
listeners and pools, and objects being deleted, are left out: what is rendered is what must run.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from l3dist.common import constants as c
from l3dist.contracts.agent_api import AMPHORA_HEADER, MAX_CONNECTIONS

BALANCE = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
GONE = (c.PENDING_DELETE, c.DELETED)


def _live(obj: Any) -> bool:
    return bool(obj.enabled) and obj.provisioning_status not in GONE


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def _mode(protocol: str) -> str:
    return "http" if protocol == c.PROTOCOL_HTTP else "tcp"


def _connection_limit(limit: int | None) -> int:
    """Octavia's connection_limit (-1 or None: unlimited) within what the amphora allows."""
    if limit is None or limit < 0:
        return MAX_CONNECTIONS
    return min(limit, MAX_CONNECTIONS)


def _seconds(ms: int | None, default_ms: int) -> str:
    return f"{ms if ms is not None else default_ms}ms"


def render(lb: Any, addresses: list[str] | None = None) -> str:
    """The ``defaults``, ``frontend`` and ``backend`` sections for a load balancer; each
    listener binds every address (default: the VIP; the floating IPs bound to the load
    balancer's virtual-ip too, so a client of a floating IP is answered from it)."""
    binds = addresses or [lb.vip.ip_address]
    lines = [
        "defaults",
        "    timeout http-request 10s",
        "    timeout queue 1m",
        "",
    ]
    backends: dict[str, Any] = {}
    for listener in sorted(lb.listeners, key=lambda item: item.protocol_port):
        if not _live(listener):
            continue
        mode = _mode(listener.protocol)
        lines += [
            f"frontend {listener.id}",
            f"    mode {mode}",
            *(f"    bind {_address(ip, listener.protocol_port)}" for ip in binds),
            f"    maxconn {_connection_limit(listener.connection_limit)}",
            f"    timeout client {_seconds(listener.timeout_client_data, 50000)}",
        ]
        if mode == "http":
            lines.append(f'    http-response set-header {AMPHORA_HEADER} "${{L3DIST_AMPHORA_ID}}"')
        for cidr in listener.allowed_cidrs or []:
            lines.append(f"    tcp-request connection accept if {{ src {cidr} }}")
        if listener.allowed_cidrs:
            lines.append("    tcp-request connection reject")
        pool = listener.default_pool
        if pool is not None and _live(pool):
            lines.append(f"    default_backend {pool.id}:{listener.id}")
            backends[f"{pool.id}:{listener.id}"] = (pool, listener)
        else:
            lines.append("    http-request deny deny_status 503" if mode == "http" else "")
        lines.append("")
    for name, (pool, listener) in backends.items():
        lines += _backend(name, pool, listener)
    return "\n".join(line for line in lines if line is not None) + "\n"


def _backend(name: str, pool: Any, listener: Any) -> list[str]:
    mode = _mode(listener.protocol) if pool.protocol != c.PROTOCOL_TCP else "tcp"
    lines = [
        f"backend {name}",
        f"    mode {mode}",
        f"    balance {BALANCE.get(pool.lb_algorithm, 'roundrobin')}",
        f"    timeout connect {_seconds(listener.timeout_member_connect, 5000)}",
        f"    timeout server {_seconds(listener.timeout_member_data, 50000)}",
    ]
    persistence = pool.session_persistence or {}
    if persistence.get("type") == "SOURCE_IP":
        lines += ["    stick-table type ipv6 size 10k", "    stick on src"]
    elif persistence.get("type") == "HTTP_COOKIE" and mode == "http":
        lines.append("    cookie SRV insert indirect nocache")
    elif persistence.get("type") == "APP_COOKIE" and persistence.get("cookie_name"):
        lines.append(f"    cookie {persistence['cookie_name']} prefix")
    monitor = pool.health_monitor
    check = ""
    if monitor is not None and _live(monitor):
        check = (
            f" check inter {monitor.delay}s fall {monitor.fall_threshold}"
            f" rise {monitor.rise_threshold}"
        )
        lines.append(f"    timeout check {monitor.timeout}s")
        if monitor.type in ("HTTP", "HTTPS") and mode == "http":
            lines.append(
                f"    option httpchk {monitor.http_method or 'GET'} {monitor.url_path or '/'}"
            )
            lines.append(f"    http-check expect rstatus {_codes(monitor.expected_codes)}")
    for member in pool.members:
        if member.provisioning_status in GONE:
            continue
        server = (
            f"    server {member.id} {_address(member.ip_address, member.protocol_port)}"
            f" weight {member.weight if member.weight is not None else 1}"
        )
        if not member.enabled:
            server += " disabled"
        if member.backup:
            server += " backup"
        if persistence.get("type") == "HTTP_COOKIE" and mode == "http":
            server += f" cookie {member.id}"
        if check:
            server += check
            if member.monitor_address:
                server += f" addr {member.monitor_address}"
            if member.monitor_port:
                server += f" port {member.monitor_port}"
        lines.append(server)
    lines.append("")
    return lines


def _codes(expected: str | None) -> str:
    """Octavia's expected_codes ("200", "200,202", "200-204") as a regular expression."""
    parts = []
    for part in (expected or "200").split(","):
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            parts += [str(code) for code in range(low, high + 1)]
        else:
            parts.append(part.strip())
    return "^(" + "|".join(parts) + ")$"
