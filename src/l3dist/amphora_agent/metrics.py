"""The agent's metrics, served on its API (``GET /metrics``, mutual TLS like every call):
its BGP sessions, the routes it announces, HAProxy's listeners as the last check saw them,
flow rescue's packet totals, and how long Register / Unregister / Drain Amphora took from the
call to the speaker's acknowledgement (its new configuration applied)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from l3dist.common.metrics import DURATION_BUCKETS

if TYPE_CHECKING:
    from l3dist.amphora_agent.service import AgentService

SPEAKER_CHANGES = Histogram(
    "l3dist_agent_speaker_change_seconds",
    "Register, Unregister and Drain Amphora: from the call to the speaker's acknowledgement",
    ["operation"],
    buckets=DURATION_BUCKETS,
)


def exposition(current: Callable[[], AgentService]) -> bytes:
    """The agent's own families (read from its service now; none while a host has no amphora)
    and the process's (the histogram above, the client library's process metrics)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(current))
    return generate_latest(registry) + generate_latest(REGISTRY)


class AgentCollector(Collector):
    def __init__(self, current: Callable[[], AgentService]) -> None:
        self.current = current

    def collect(self) -> Iterator[Any]:
        from l3dist.amphora_agent.service import AgentError

        try:
            service = self.current()
        except AgentError:
            return  # a host with no amphora yet
        sessions = GaugeMetricFamily(
            "l3dist_agent_bgp_session_up",
            "1 while the speaker's BGP session with the peer is Established",
            labels=["peer"],
        )
        bfd = GaugeMetricFamily(
            "l3dist_agent_bfd_up", "1 while the peer's BFD session is Up", labels=["peer"]
        )
        for peer in service.speaker.peer_status():
            sessions.add_metric([peer.peer_ip], 1.0 if peer.established else 0.0)
            if peer.bfd_state is not None:
                bfd.add_metric([peer.peer_ip], 1.0 if peer.bfd_state.lower() == "up" else 0.0)
        yield sessions
        yield bfd
        with service.lock:
            routes = service.routes()
        announced = GaugeMetricFamily(
            "l3dist_agent_routes_announced", "Routes the speaker announces, by family",
            labels=["family"],
        )  # fmt: skip
        for family in ("ipv4", "ipv6"):
            count = sum(1 for r in routes if (":" in r.prefix) == (family == "ipv6"))
            announced.add_metric([family], count)
        yield announced
        listeners, _ = service.listener_status()
        up = GaugeMetricFamily(
            "l3dist_agent_listener_up",
            "1 while HAProxy serves the listener (the listener check's last answer)",
            labels=["listener_id"],
        )
        for listener_id, status in sorted(listeners.items()):
            up.add_metric([listener_id], 1.0 if status == "UP" else 0.0)
        yield up
        yield GaugeMetricFamily(
            "l3dist_agent_listener_check_healthy",
            "1 while the listener check finds HAProxy serving",
            value=1.0 if service.listener_check.healthy else 0.0,
        )
        rescue = CounterMetricFamily(
            "l3dist_agent_flow_rescue_packets",
            "Flow rescue packet totals since the agent started, by kind",
            labels=["kind"],
        )
        for kind, count in sorted(service.rescue_packets().items()):
            rescue.add_metric([kind], count)
        yield rescue
