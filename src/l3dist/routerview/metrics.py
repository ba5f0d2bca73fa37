"""The router view's metrics, read from the collector's view on each scrape (labels: routers,
peers and prefixes the routers hold now, so they come and go with them), and the time from an
amphora's registration to its path reaching each router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from l3dist.common.metrics import DURATION_BUCKETS
from l3dist.db.router_view import host_prefix
from l3dist.db.session import Database
from l3dist.routerview import store
from l3dist.routerview.view import RouterView

ANNOUNCE_LATENCY = Histogram(
    "l3dist_router_view_announce_latency_seconds",
    "From Register Amphora (the virtual-ip interface recorded) to the router reporting the "
    "path over BMP, by router",
    ["router"],
    buckets=DURATION_BUCKETS,
)


class ViewCollector(Collector):
    def __init__(
        self, view: RouterView, counters: dict[str, int], db: Database | None = None
    ) -> None:
        self.view = view
        self.counters = counters
        self.db = db

    def _intended(self) -> GaugeMetricFamily:
        """What the routers should hold: per address (a VIP, a floating IP on its virtual-ip),
        the amphorae registered behind it, from the database on each scrape."""
        intended = GaugeMetricFamily(
            "l3dist_router_view_intended_next_hops",
            "Next hops l3dist registered for each address (its amphorae's front-end IPs)",
            labels=["prefix"],
        )
        if self.db is not None:
            with self.db.session(writer=False) as session:
                for address, count in store.intended_next_hops(session):
                    intended.add_metric([host_prefix(address)], count)
        return intended

    def collect(self) -> Iterator[Any]:
        connected = GaugeMetricFamily(
            "l3dist_router_view_connected",
            "1 while the router's BMP session is up",
            labels=["router"],
        )
        peers = GaugeMetricFamily(
            "l3dist_router_view_peer_up",
            "BGP sessions of each router (1 up, 0 down), as its BMP feed reports them",
            labels=["router", "peer"],
        )
        for address, router in sorted(self.view.routers.items()):
            connected.add_metric([address], 1.0 if router.connected else 0.0)
            for peer, state in sorted(router.peers.items()):
                peers.add_metric([address, peer], 1.0 if state.up else 0.0)
        paths = GaugeMetricFamily(
            "l3dist_router_view_paths",
            "Paths each router holds per prefix: received (pre), accepted (post) and received "
            "with the router's decision not confirmed yet (pending)",
            labels=["router", "prefix", "policy"],
        )
        for (address, prefix, policy), count in sorted(self.view.paths_by_prefix().items()):
            paths.add_metric([address, prefix, policy], count)
        yield connected
        yield peers
        yield paths
        yield self._intended()
        for name, help_text in (
            ("messages", "BMP messages read from pmbmpd"),
            ("malformed", "Message log lines that could not be read"),
            ("resyncs", "Fresh dumps asked of routers (unconfirmed post-policy paths)"),
            ("pmbmpd_restarts", "Times pmbmpd stopped and was started again"),
        ):
            yield CounterMetricFamily(
                f"l3dist_router_view_{name}", help_text, value=self.counters.get(name, 0)
            )
