"""The amphora agent core: VIPs on loopback, registrations, and the speaker announcing them.

All changes are serialized by one lock, validated before anything changes, persisted atomically,
then pushed to the speaker; if the speaker refuses, the previous state is restored. The persisted
state lets a restarted agent announce again what it announced before, with no new API call.

Route safety (issue 14): a registration whose VIP is not inside the config drive's anycast
prefixes, or is never a host route (unspecified, loopback, multicast, link-local), is refused
with 403 before anything else is looked at; nothing outside them is ever held, persisted or
handed to the speaker, whoever the caller is.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

from l3dist import __version__
from l3dist.amphora_agent import flow_rescue
from l3dist.amphora_agent.bfd_responder import BfdResponder
from l3dist.amphora_agent.fencing import FenceWatch
from l3dist.amphora_agent.haproxy import ConfigRejected, HaproxyService
from l3dist.amphora_agent.heartbeat import HeartbeatSender
from l3dist.amphora_agent.listener_check import ListenerChecker
from l3dist.amphora_agent.metrics import SPEAKER_CHANGES
from l3dist.bgp import policy
from l3dist.bgp.base import Route, SpeakerDriver, host_prefix, make_driver
from l3dist.common import netlink
from l3dist.common.files import write_atomic
from l3dist.common.process import Supervisor
from l3dist.contracts.agent_api import MAX_CONNECTIONS, BfdPeers
from l3dist.contracts.agent_config import AgentConfig, BgpConfig, InterfaceConfig

log = logging.getLogger(__name__)
# Why a registration in force is not announced (List Amphora / List VIP ``withdrawn``).
FENCED, DRAINING, LISTENERS_DOWN, NO_PEER = "fenced", "draining", "listeners_down", "no_peer"


class AgentError(Exception):
    """A refused request: HTTP status, the field at fault, and a message naming the problem."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _entry_error(exc: AgentError, key: str, index: int) -> AgentError:
    """A batch entry's refusal: the same status, its field named with the list and index."""
    field = f"{key}[{index}].{exc.field}" if exc.field else f"{key}[{index}]"
    return AgentError(exc.status, f"{key}[{index}]: {exc.message}", field)


@dataclass(frozen=True, order=True)
class Registration:
    """A Register Amphora request that is in force."""

    amphora_id: str
    vip_ip: str
    nexthop_ip: str
    peer_id: str | None = None


@dataclass(frozen=True, order=True)
class VipRoute:
    """A Register VIP request in force (spec P2): an anycast route to an endpoint that is not an
    amphora (a UDP server on the front-end segment, say); the speaker announces it for that
    next hop, whatever this amphora's own listeners do."""

    vip_ip: str
    nexthop_ip: str
    peer_id: str | None = None


Entry = TypeVar("Entry", Registration, VipRoute)


class AgentService:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.state_path = config.state_dir / "state.json"
        self.lock = threading.RLock()
        self.vips: set[str] = set()
        self.registrations: set[Registration] = set()
        self.vip_routes: set[VipRoute] = set()
        # Drained registrations: their routes are withdrawn, the VIP stays (spec: Drain Amphora).
        self.draining: set[Registration] = set()
        # Flow rescue (spec P2): the cluster's peers, set by the controller; None: off.
        self.rescue: flow_rescue.RescueConfig | None = None
        # Rescue counters live in the rules, which every membership change replaces: what the
        # replaced rules counted is carried here, so the reported totals only grow.
        self.rescue_carried = dict.fromkeys(flow_rescue.PACKET_KINDS, 0)
        self.rescue_rules_peers: list[str] = []
        # Rescue turned on with connections open: the pickup phase runs until then.
        self.rescue_pickup_until: float | None = None
        # The peers whose MAC is known: owner learning works with them (one copy per packet).
        self.rescue_peer_macs: dict[str, str] = {}
        # A dedicated distributor (service_type distributor) runs only its speakers: no
        # HAProxy, no VIP, no listener check; its front end is in its own namespace.
        self.distributor = config.service_type == "distributor"
        self.speaker: SpeakerDriver = self._make_speaker(config.bgp)
        self.haproxy = HaproxyService(
            config.haproxy_namespace, config.amphora_id, config.state_dir / "haproxy"
        )
        self.supervisor = Supervisor()
        self.haproxy_ns = netlink.NamespaceNetlink(config.haproxy_namespace)
        # Dedicated mode, on a load-balancing amphora: answer the distributors' BFD.
        self.bfd = BfdResponder(config.haproxy_namespace, config.frontend.name,
                                config.state_dir / "bfd", str(config.bgp.router_id))  # fmt: skip
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-writer")
        self.listener_check = ListenerChecker(
            config.listener_check, self.haproxy.serving, self._listeners_changed
        )
        self.heartbeats = (
            HeartbeatSender(
                config.amphora_id,
                config.heartbeat,
                self.listener_status,
                self.rescue_packets,
                lambda: self.fenced is not None,
                config.host_id,
                self.listener_counters,
            )
            if config.heartbeat
            else None
        )
        # Why this amphora fenced itself (fencing.py); None: not fenced. on_fence is told of
        # every change (the host agent keeps it across restarts).
        self.fenced: str | None = None
        self.on_fence: Callable[[str | None], None] | None = None
        self.fenced_gateways: list[str] = []
        self.fence_watch = self._new_fence_watch()

    # -- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return
        self.vips = set(data.get("vips", []))
        self.registrations = self._allowed(
            {Registration(**r) for r in data.get("registrations", [])}
        )
        self.draining = {Registration(**r) for r in data.get("draining", [])} & self.registrations
        self.vip_routes = self._allowed({VipRoute(**r) for r in data.get("vip_routes", [])})
        rescue = data.get("rescue")
        self.rescue = flow_rescue.RescueConfig(**rescue) if rescue else None
        bfd = data.get("bfd")
        if bfd:
            peers = BfdPeers.model_validate(bfd)
            self.bfd.peers, self.bfd.timers = list(peers.peers), peers.timers

    def _allowed(self, entries: set[Any]) -> set[Any]:
        """Persisted registrations the config drive's anycast prefixes allow; any other (state
        from before the limit) is dropped with a warning, never announced."""
        kept = set()
        for entry in entries:
            reason = policy.refusal(entry.vip_ip, self.config.anycast_prefixes)
            if reason is None:
                kept.add(entry)
            else:
                log.warning("dropping persisted %s: %s", entry, reason)
        return kept

    def _save(self) -> None:
        data = {
            "vips": sorted(self.vips),
            # vars(): these are flat dataclasses (asdict's deep copy is most of the write's cost)
            "registrations": [vars(r) for r in sorted(self.registrations)],
            "draining": [vars(r) for r in sorted(self.draining)],
            "vip_routes": [vars(r) for r in sorted(self.vip_routes)],
            "rescue": asdict(self.rescue) if self.rescue else None,
            "bfd": BfdPeers(peers=self.bfd.peers, timers=self.bfd.timers).model_dump(mode="json")
            if self.bfd.peers
            else None,
        }
        write_atomic(self.state_path, json.dumps(data, indent=1), durable=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._load()
        if not self.distributor:
            self._start_load_balancing()
        self.speaker.start(self.routes())
        self._supervise_speaker()
        self.supervisor.start()
        if not self.distributor:
            self.listener_check.start()
        if self.heartbeats:
            self.heartbeats.start()
        if self.fence_watch:
            self.fence_watch.start()
        log.info("agent for amphora %s started (%s)", self.config.amphora_id, self.speaker.name)

    def _start_load_balancing(self) -> None:
        """A load-balancing amphora's own parts: VIPs on loopback, flow rescue, HAProxy, and
        the distributors' BFD (dedicated mode), before any announcement."""
        ns = self.config.haproxy_namespace
        netlink.set_sysctls(ns, netlink.VIP_ON_LOOPBACK_SYSCTLS)
        for vip in self.vips:
            self.haproxy_ns.add_address("lo", host_prefix(vip))
        self.announce_frontend()
        self._apply_rescue()  # before HAProxy accepts connections and before any announcement
        self.haproxy.start()
        self.supervisor.add(self.haproxy.process, on_death=self.listener_check.mark_down)
        self.bfd.answering = False  # until the listener check says the listeners serve
        if self.bfd.peers:
            self.bfd.set_peers(self.bfd.peers, self.bfd.timers, self.frontend_addresses())
            self.supervisor.add(self.bfd.process)

    def replace_speakers(self, bgp: BgpConfig) -> bool:
        """Run the speaker with new speakers and peer profiles (a distributor's change): the old
        daemon stops (its sessions close: the fabric withdraws this amphora's routes, the
        others carry the traffic), a new one starts with the same routes; the sessions come
        back with the new settings. False when nothing changed.

        Refused with 409, changing nothing, while a registration names a peer the new set
        lacks (``peer_id``) or a route in force would have no peer of its family left
        (``vip_ip``). Fencing is not armed while the speaker restarts (its sessions are down
        on purpose). If the new speaker does not start, the old one is started again and the
        error raised."""
        with self.lock:
            if bgp == self.config.bgp:
                return False
            self._check_peers_kept(bgp)
            old_bgp, old_speaker = self.config.bgp, self.speaker
            new = self._make_speaker(bgp)
            if self.fence_watch:
                self.fence_watch.stop()
            self._unsupervise_speaker()
            old_speaker.stop()
            try:
                self._run_speaker(bgp, new)
            except Exception:
                with contextlib.suppress(Exception):
                    new.stop()
                self._run_speaker(old_bgp, old_speaker)
                raise
            finally:
                if self.fence_watch:
                    self.fence_watch = self._new_fence_watch()
                    if self.fence_watch:
                        self.fence_watch.start()
            log.info("amphora %s: BGP speakers replaced (%d peers)", self.config.amphora_id,
                     len(bgp.peers()))  # fmt: skip
            return True

    def _check_peers_kept(self, bgp: BgpConfig) -> None:
        kept = {p.id for _, p in bgp.peers()}
        families = {s.ip_version for s in bgp.speakers if s.peers}
        entries: list[Registration | VipRoute] = [*self.registrations, *self.vip_routes]
        for entry in entries:  # a peer named first, then the families
            if entry.peer_id is not None and entry.peer_id not in kept:
                raise AgentError(409, f"peer_id {entry.peer_id} has a registration for vip_ip "
                                 f"{entry.vip_ip}; unregister it before removing the peer",
                                 "peer_id")  # fmt: skip
        for entry in entries:
            version = ipaddress.ip_address(entry.vip_ip).version
            if version not in families:
                raise AgentError(409, f"vip_ip {entry.vip_ip} is registered and the new "
                                 f"speakers have no IPv{version} peer to announce it to",
                                 "vip_ip")  # fmt: skip

    def _make_speaker(self, bgp: BgpConfig) -> SpeakerDriver:
        local: dict[int, str] = {a.version: str(a.ip) for a in self.config.management.addresses}
        return make_driver(bgp, local, self.state_dir / "bgp", self.config.anycast_prefixes)

    def _supervise_speaker(self) -> None:
        for proc in self.speaker.processes():
            self.supervisor.add(proc, on_restart=self.speaker.restarted)

    def _unsupervise_speaker(self) -> None:
        for proc in self.speaker.processes():
            self.supervisor.remove(proc.name)

    def _run_speaker(self, bgp: BgpConfig, speaker: SpeakerDriver) -> None:
        self.config = self.config.model_copy(update={"bgp": bgp})
        self.speaker = speaker
        speaker.start(self.routes())
        self._supervise_speaker()

    def stop(self) -> None:
        """Stop the daemons; the speaker's sessions close, so the fabric withdraws our routes."""
        if self.fence_watch:
            self.fence_watch.stop()
        if self.heartbeats:
            self.heartbeats.stop()
        if not self.distributor:  # a distributor never started it
            self.listener_check.stop()
        self.supervisor.stop()
        self.speaker.stop()
        self.bfd.stop()
        self.haproxy.stop()
        self.haproxy_ns.close()

    def listener_status(self) -> tuple[dict[str, str], dict[str, str]]:
        """What the heartbeats report: each listener and pool UP or DOWN, as HAProxy said at the
        last check (all down while the check says HAProxy is not serving)."""
        stats = self.haproxy.last_stats
        if stats is None:
            return {}, {}
        if not self.listener_check.healthy:
            return dict.fromkeys(stats.listeners, "DOWN"), dict.fromkeys(stats.pools, "DOWN")
        return dict(stats.listeners), dict(stats.pools)

    def listener_counters(self) -> tuple[dict[str, dict[str, int]], int | None]:
        """HAProxy's counters per listener at the last check, and the worker that counted
        them."""
        stats = self.haproxy.last_stats
        if stats is None:
            return {}, None
        return dict(stats.counters), stats.worker

    def _listeners_changed(self, healthy: bool) -> None:
        """Withdraw every VIP route while the listeners are down; announce them when back
        (and stop answering the distributors' BFD meanwhile: they withdraw us too)."""
        with self.lock:
            self.speaker.apply(self.routes())
            try:
                self.bfd.set_answering(healthy, self.frontend_addresses())
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log.error("BFD responder: %s", exc)

    # -- routes ----------------------------------------------------------------------------

    def _peers_for(self, reg: Registration | VipRoute) -> list[str]:
        version = ipaddress.ip_address(reg.vip_ip).version
        if reg.peer_id is not None:
            return [reg.peer_id]
        return [p.id for s, p in self.config.bgp.peers() if s.ip_version == version]

    def routes_for(self, registrations: Iterable[Registration | VipRoute]) -> frozenset[Route]:
        return frozenset(
            Route(host_prefix(reg.vip_ip), reg.nexthop_ip, peer_id, isinstance(reg, Registration))
            for reg in registrations
            for peer_id in self._peers_for(reg)
        )

    def _new_fence_watch(self) -> FenceWatch | None:
        if not self.config.fence_after:
            return None
        return FenceWatch(self.config.fence_after, self._sessions_up, self.fence)

    def _frontend_link(self, state: str) -> None:
        ns, ifname = self.config.haproxy_namespace, self.config.frontend.name
        where = [] if self.distributor else ["-n", ns]
        result = subprocess.run(["ip", *where, "link", "set", ifname, state],
                                capture_output=True, text=True, timeout=10)  # fmt: skip
        if result.returncode != 0:
            log.warning("front end %s %s: %s", ifname, state, result.stderr.strip())

    def _sessions_up(self) -> bool:
        return any(peer.established for peer in self.speaker.peer_status())

    def fence(self, reason: str) -> None:
        """Withdraw every route until the controller clears the fence (this amphora may have
        been failed over)."""
        with self.lock:
            if self.fenced is not None:
                return
            self.fenced = reason
            log.warning("amphora %s fenced: %s; every route withdrawn", self.config.amphora_id,
                        reason)  # fmt: skip
            if self.on_fence:
                self.on_fence(reason)
            self.speaker.apply(self.routes())
            # Its front end too: a replacement may hold the same address (and so the same MAC)
            # now; a fenced amphora must not answer for it on the segment. (Its default routes
            # go with the link: kept to be put back if the fence is cleared.)
            self.fenced_gateways = [str(gw) for gw in self.frontend_gateways()]
            self._frontend_link("down")

    def clear_fence(self) -> dict[str, Any]:
        """The controller says this amphora is still a member: announce again, watch again."""
        with self.lock:
            was = self.fenced
            if was is not None:
                self.fenced = None
                if self.on_fence:
                    self.on_fence(None)
                self._frontend_link("up")
                ns, ifname = self.config.haproxy_namespace, self.config.frontend.name
                for gateway in self.fenced_gateways:
                    family = f"-{ipaddress.ip_address(gateway).version}"
                    route = ["route", "replace", "default", "via", gateway, "dev", ifname]
                    subprocess.run(
                        ["ip", "-n", ns, family, *route], capture_output=True, timeout=10
                    )
                self.announce_frontend()
                self.speaker.apply(self.routes())
                if self.fence_watch:
                    self.fence_watch = self._new_fence_watch()
                    if self.fence_watch:
                        self.fence_watch.start()
                log.info("amphora %s: fence cleared by the controller", self.config.amphora_id)
            return {"fenced": None, "was": was}

    def routes(self) -> frozenset[Route]:
        """What the speaker announces: registrations, except drained ones, and none while the
        listeners are down (an amphora that cannot serve must not attract flows); the routes
        of Register VIP always (their endpoints are not this amphora). Nothing at all once
        fenced."""
        if self.fenced is not None:
            return frozenset()
        if not self.distributor and not self.listener_check.healthy:
            return self.routes_for(self.vip_routes)
        return self._desired_routes()

    def _desired_routes(self) -> frozenset[Route]:
        return self.routes_for((self.registrations - self.draining) | self.vip_routes)

    @staticmethod
    def _same_route(entries: set[Entry], request: Entry) -> set[Entry]:
        """The entries for request's route (its amphora, VIP and next hop), for any peer.
        (Compared field by field: a dataclasses.replace per entry made a batch of 1,000 VIP
        routes spend 1.8 s here.)"""
        kind, vip, nexthop = type(request), request.vip_ip, request.nexthop_ip
        amphora = getattr(request, "amphora_id", None)
        return {
            e
            for e in entries
            if e.vip_ip == vip
            and e.nexthop_ip == nexthop
            and type(e) is kind
            and getattr(e, "amphora_id", None) == amphora
        }

    def _take_out(
        self, entries: set[Entry], request: Entry, what: str, field: str
    ) -> tuple[set[Entry], set[Registration]]:
        """entries without what request withdraws, and the draining set to go with them.

        Without a peer_id, the route goes from every peer. With one, from that peer only: an
        entry for every peer becomes one for each of the others (so a later withdrawal from
        another peer, or from all, works the same way); draining stays draining.
        Invariant kept: one route has either one entry for every peer or entries for single
        peers, never both. 404 naming field (or peer_id) when the route is not announced there.
        """
        same = self._same_route(entries, request)
        if not same:
            raise AgentError(404, what, field)
        if request.peer_id is None:
            hit, added = same, set()
        else:
            hit = {e for e in same if request.peer_id in self._peers_for(e)}
            if not hit:
                raise AgentError(404, f"{what} for peer_id {request.peer_id}", "peer_id")
            added = {
                replace(e, peer_id=peer)
                for e in hit
                if e.peer_id is None
                for peer in self._peers_for(e)
                if peer != request.peer_id
            }
        draining = self.draining - hit
        if hit & self.draining:
            draining |= added  # type: ignore[arg-type]
        return (entries - hit) | added, draining

    def _nexthops_by_peer(
        self, ignore: Iterable[Registration | VipRoute] = ()
    ) -> dict[tuple[str, str], str]:
        """The next hop each (prefix, peer) is announced with, but for the ignored entries."""
        current = (self.registrations - self.draining) | self.vip_routes
        return {(r.prefix, r.peer_id): r.nexthop
                for r in self.routes_for(current - set(ignore))}  # fmt: skip

    def _one_nexthop_per_peer(
        self,
        new: Registration | VipRoute,
        ignore: Iterable[Registration | VipRoute] = (),
        desired: dict[tuple[str, str], str] | None = None,
    ) -> None:
        """Without ADD-PATH a speaker announces one next hop per VIP and peer: a second is
        refused (409). With it (``bgp.add_path``, a distributor's) every next hop is a path.
        desired: the next hops in force, when the caller keeps them (a batch)."""
        if self.config.bgp.add_path:
            return
        if desired is None:
            desired = self._nexthops_by_peer(ignore)
        for route in self.routes_for({new}):
            other = desired.get((route.prefix, route.peer_id))
            if other is not None:
                raise AgentError(
                    409,
                    f"vip_ip {new.vip_ip} is already announced to peer {route.peer_id} with "
                    f"next hop {other}; a speaker announces one next hop per VIP and peer",
                    "vip_ip",
                )

    def _commit(
        self,
        vips: set[str],
        registrations: set[Registration],
        draining: set[Registration] | None = None,
        vip_routes: set[VipRoute] | None = None,
    ) -> None:
        """Persist and announce; on any failure restore the previous state.

        The fsync'd write and the speaker change run side by side (both must succeed before the
        caller hears back). A crash between them leaves no unpersisted route: a restarted agent
        rebuilds its speaker from the persisted state.
        """
        old_vips, old_regs, old_draining = set(self.vips), set(self.registrations), self.draining
        old_vip_routes = self.vip_routes
        self.vips, self.registrations = vips, registrations
        self.draining = (self.draining if draining is None else draining) & registrations
        self.vip_routes = self.vip_routes if vip_routes is None else vip_routes
        saving = self._io.submit(self._save)
        try:
            self.speaker.apply(self.routes())
            saving.result()
        except Exception as exc:
            with contextlib.suppress(Exception):
                saving.result()
            self.vips, self.registrations, self.draining = old_vips, old_regs, old_draining
            self.vip_routes = old_vip_routes
            self._save()
            with contextlib.suppress(Exception):
                self.speaker.apply(self.routes())
            raise AgentError(503, f"the change could not be applied: {exc}") from exc

    # -- VIPs ------------------------------------------------------------------------------

    def vip_configured(self, vip: str) -> bool:
        wanted = ipaddress.ip_address(vip)
        return any(ipaddress.ip_interface(a).ip == wanted for a in self.haproxy_ns.addresses("lo"))

    def use_frontend(self, port: InterfaceConfig) -> None:
        """The front end as it was plugged (an amphora host's): its addresses and gateways come
        from here from now on, not from a kernel dump at every registration (~3 ms)."""
        with self.lock:
            self.config = self.config.model_copy(update={"frontend": port})

    def frontend_addresses(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """The front-end port's addresses: from the configuration (the config drive's, or on a
        host the port as plugged), else as the kernel has them."""
        if self.config.frontend.addresses:
            return list(self.config.frontend.addresses)
        return [
            ipaddress.ip_interface(a)
            for a in self.haproxy_ns.addresses(self.config.frontend.name)
            if not ipaddress.ip_interface(a).is_link_local
        ]

    def frontend_gateways(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """The front-end gateways: from the configuration (as for the addresses), else the
        namespace's default routes."""
        if self.config.frontend.gateways:
            return list(self.config.frontend.gateways)
        return netlink.default_gateways(self.config.haproxy_namespace)

    def announce_frontend(self) -> None:
        """Make the front-end gateways learn our MAC before any route points at us.

        A router may skip an ECMP next hop whose neighbour it has not resolved (Linux nexthop
        groups do); it would then start using us mid-flow, the moment it resolves us, and move
        established flows. One echo to each gateway makes it learn us now.
        """
        if not self.haproxy_ns.has_link(self.config.frontend.name):
            return  # not plugged yet: plug_vip announces once the port is there
        if not self._ping([str(gw) for gw in self.frontend_gateways()]):
            log.warning("front-end gateway did not answer; its neighbour entry may be stale")

    def _ping(self, addresses: list[str]) -> bool:
        """One echo to each address from the front end, in parallel; did all answer?"""
        ns, ifname = self.config.haproxy_namespace, self.config.frontend.name
        commands = [
            ["ip", "netns", "exec", ns, "ping", f"-{ipaddress.ip_address(a).version}", "-c1",
             "-W1", "-I", ifname, a]
            for a in addresses
        ]  # fmt: skip
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for cmd in commands
        ]
        return all(proc.wait(timeout=5) == 0 for proc in procs)

    # -- flow rescue -----------------------------------------------------------------------

    def set_rescue(self, config: flow_rescue.RescueConfig) -> dict[str, Any]:
        """Rescue on (or new peers). Turned on while connections are open (an upgrade), it
        starts with the pickup phase: conntrack first learns the flows it never saw begin."""
        with self.lock:
            previous, previous_pickup = self.rescue, self.rescue_pickup_until
            self.rescue = config
            pickup = previous is None and any(self.connections(v) for v in self.vips)
            if pickup:
                self.rescue_pickup_until = time.monotonic() + flow_rescue.PICKUP_SECONDS
            try:
                self._apply_rescue()
            except subprocess.CalledProcessError as exc:
                self.rescue, self.rescue_pickup_until = previous, previous_pickup
                raise AgentError(400, f"rules refused: {exc.stderr.strip()}", "peers") from exc
            if pickup:
                timer = threading.Timer(flow_rescue.PICKUP_SECONDS, self._end_pickup)
                timer.daemon = True
                timer.start()
            self._save()
            return self.rescue_status()

    def _end_pickup(self) -> None:
        with self.lock:
            if self.rescue_pickup_until is None:
                return  # rescue was turned off meanwhile
            self.rescue_pickup_until = None
            try:
                self._apply_rescue()
            except subprocess.CalledProcessError:
                log.exception("flow rescue rules not installed after the pickup phase")

    def clear_rescue(self) -> None:
        with self.lock:
            self.rescue = None
            self.rescue_pickup_until = None
            flow_rescue.remove(self.config.haproxy_namespace)
            self._save()

    def rescue_status(self) -> dict[str, Any]:
        if self.rescue is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "phase": "pickup" if self.rescue_pickup_until is not None else "rescuing",
            **asdict(self.rescue),
            "router_macs_in_use": self._router_macs(),
            "owner_learning_with": sorted(self.rescue_peer_macs),
            "conntrack": flow_rescue.conntrack(self.config.haproxy_namespace, MAX_CONNECTIONS),
            "packets": self.rescue_packets(),
        }

    def rescue_packets(self) -> dict[str, int]:
        """Flow-rescue packet totals since the agent started (empty while rescue is off)."""
        if self.rescue is None:
            return {}
        current = flow_rescue.counters(self.config.haproxy_namespace, self.rescue_rules_peers)
        return {k: self.rescue_carried[k] + current[k] for k in flow_rescue.PACKET_KINDS}

    def _router_macs(self) -> list[str]:
        """The configured router MACs and the front-end gateways' (learned)."""
        assert self.rescue is not None
        learned = flow_rescue.gateway_macs(
            self.config.haproxy_namespace,
            self.config.frontend.name,
            [str(g) for g in self.frontend_gateways()],
        )
        return sorted(set(self.rescue.router_macs) | set(learned))

    def _peer_macs(self) -> dict[str, str]:
        """The peers' front-end MACs (owner learning needs them), asked for when not known;
        a peer that does not answer gets copies of every rescued flow, as before learning."""
        assert self.rescue is not None
        ns, ifname = self.config.haproxy_namespace, self.config.frontend.name
        if not self.haproxy_ns.has_link(ifname):
            return {}
        known = flow_rescue.neighbours(ns, ifname)
        missing = [p for p in self.rescue.peers if p not in known]
        if missing:
            self._ping(missing)
            known = flow_rescue.neighbours(ns, ifname)
        return {p: known[p] for p in self.rescue.peers if p in known}

    def _apply_rescue(self) -> None:
        """(Re)install the rescue rules for the current VIPs and peers, atomically."""
        if self.rescue is None:
            return
        pickup = self.rescue_pickup_until is not None
        peer_macs = self.rescue_peer_macs = self._peer_macs()
        script = flow_rescue.ruleset(
            sorted(self.vips),
            self.rescue.peers,
            self._router_macs(),
            self.config.frontend.name,
            pickup=pickup,
            peer_macs=peer_macs,
        )
        ns = self.config.haproxy_namespace
        counted = flow_rescue.counters(ns, self.rescue_rules_peers)
        flow_rescue.install(ns, script, pickup=pickup)
        flow_rescue.conntrack(ns, MAX_CONNECTIONS, resize=True)
        for kind in flow_rescue.PACKET_KINDS:
            self.rescue_carried[kind] += counted[kind]
        self.rescue_rules_peers = list(self.rescue.peers)

    def plug_vip(self, vip: str) -> bool:
        """Put the VIP on loopback in the amphora-haproxy namespace; False if already there."""
        self._not_on_a_distributor("plug a VIP")
        self.announce_frontend()
        with self.lock:
            was_there = vip in self.vips and self.vip_configured(vip)
            if vip not in self.vips:
                self.vips.add(vip)
                self._apply_rescue()  # the VIP's rules before the VIP answers
                self._save()
            self.haproxy_ns.add_address("lo", host_prefix(vip))
            return not was_there

    def unplug_vip(self, vip: str) -> None:
        with self.lock:
            if vip not in self.vips and not self.vip_configured(vip):
                raise AgentError(404, f"vip {vip} is not plugged on this amphora", "vip")
            if any(
                r.vip_ip == vip and r.amphora_id == self.config.amphora_id
                for r in self.registrations
            ):
                raise AgentError(
                    409, f"vip {vip} is still registered; unregister the amphora first", "vip"
                )
            self._remove_vip(vip)

    def _remove_vip(self, vip: str) -> None:
        self.haproxy_ns.delete_address("lo", host_prefix(vip))
        self.vips.discard(vip)
        self._apply_rescue()
        self._save()

    # -- extended amphora API -----------------------------------------------------------------

    def _validate(self, reg: Registration | VipRoute) -> None:
        """What Register Amphora and Register VIP both need: a VIP this amphora may announce
        at all (route safety: 403, checked first), families that match, a next hop on the
        front-end subnet (the router reaches it there), a known peer of that family."""
        if self.fenced is not None:
            raise AgentError(409, f"amphora {self.config.amphora_id} is fenced: {self.fenced}")
        refused = policy.refusal(reg.vip_ip, self.config.anycast_prefixes)
        if refused is not None:
            raise AgentError(403, refused, "vip_ip")
        vip = ipaddress.ip_address(reg.vip_ip)
        nexthop = ipaddress.ip_address(reg.nexthop_ip)
        if nexthop.version != vip.version:
            raise AgentError(
                400,
                f"nexthop_ip {nexthop} is IPv{nexthop.version} but vip_ip {vip} is "
                f"IPv{vip.version}",
                "nexthop_ip",
            )
        subnets = [a.network for a in self.frontend_addresses() if a.version == vip.version]
        if not any(nexthop in net for net in subnets):
            raise AgentError(
                400,
                f"nexthop_ip {nexthop} is not on the front-end subnet "
                f"({', '.join(map(str, subnets)) or f'no IPv{vip.version} front-end subnet'})",
                "nexthop_ip",
            )
        if reg.peer_id is not None:
            peer = self.config.bgp.peer(reg.peer_id)
            if peer is None:
                raise AgentError(404, f"peer_id {reg.peer_id} is not a known BGP peer", "peer_id")
            if peer.ip_version != vip.version:
                raise AgentError(
                    400,
                    f"peer_id {reg.peer_id} is an IPv{peer.ip_version} peer but vip_ip {vip} is "
                    f"IPv{vip.version}",
                    "peer_id",
                )
        elif not self._peers_for(reg):
            raise AgentError(
                409, f"no IPv{vip.version} BGP peer is configured on this amphora", "vip_ip"
            )

    def _not_on_a_distributor(self, what: str) -> None:
        if self.distributor:
            raise AgentError(409, f"amphora {self.config.amphora_id} is a dedicated distributor: "
                             f"it does not {what}")  # fmt: skip

    def set_bfd_peers(self, peers: BfdPeers) -> dict[str, Any]:
        """Answer these distributors' BFD on the front end (dedicated mode); kept for a
        restart. Answering starts once the listeners serve."""
        self._not_on_a_distributor("answer distributors' BFD")
        with self.lock:
            self.bfd.answering = self.listener_check.healthy
            if not peers.peers:  # never restarted by the supervisor once stopped on purpose
                self.supervisor.remove(self.bfd.process.name)
            try:
                self.bfd.set_peers(list(peers.peers), peers.timers, self.frontend_addresses())
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                raise AgentError(503, f"the BFD responder could not be configured: {exc}") from exc
            if peers.peers:
                self.supervisor.add(self.bfd.process)
            self._save()
            return self.bfd.status()

    @SPEAKER_CHANGES.labels("register").time()
    def register(self, reg: Registration) -> Registration:
        with self.lock:
            self._validate(reg)
            if self.distributor and reg.amphora_id == self.config.amphora_id:
                raise AgentError(
                    400,
                    f"amphora_id {reg.amphora_id} is this distributor: it announces "
                    "load-balancing amphorae, not itself",
                    "amphora_id",
                )
            if reg.amphora_id == self.config.amphora_id and not self.vip_configured(reg.vip_ip):
                raise AgentError(
                    409,
                    f"vip_ip {reg.vip_ip} is not configured on amphora {reg.amphora_id} (plug the "
                    "VIP first)",
                    "vip_ip",
                )
            if reg in self.draining:
                # Register again during a drain: the drain is called off, the route returns.
                self._commit(set(self.vips), set(self.registrations), self.draining - {reg})
                return reg
            covered = self._same_route(self.registrations, reg)
            if reg in self.registrations or any(r.peer_id is None for r in covered):
                raise AgentError(
                    409,
                    "this amphora, vip_ip, nexthop_ip and peer are already registered",
                    "amphora_id",
                )
            # For every peer: it takes the place of the ones for single peers of this route.
            replaced = covered if reg.peer_id is None else set()
            self._one_nexthop_per_peer(reg, ignore=replaced)
            self._commit(
                set(self.vips), (self.registrations - replaced) | {reg}, self.draining - replaced
            )
            return reg

    @SPEAKER_CHANGES.labels("unregister").time()
    def unregister(self, reg: Registration) -> None:
        """Unregister Amphora: withdraw the route from reg.peer_id only, or from every peer."""
        with self.lock:
            what = self._not_registered(reg)
            remaining, draining = self._take_out(self.registrations, reg, what, "amphora_id")
            self._commit(set(self.vips), remaining, draining)
            # The spec: after the withdraw, the VIP leaves the load balancing amphora's loopback.
            own = reg.amphora_id == self.config.amphora_id
            if own and not any(
                r.vip_ip == reg.vip_ip and r.amphora_id == reg.amphora_id for r in remaining
            ):
                self._remove_vip(reg.vip_ip)

    @SPEAKER_CHANGES.labels("drain").time()
    def drain(self, reg: Registration) -> None:
        """Drain Amphora: withdraw the registration's routes (the fabric sends no new flows
        here) and keep the VIP on loopback, so established connections finish; Unregister
        removes it afterwards. Without a peer_id, from every peer; with one, from that peer
        only (a registration for every peer becomes one for each, as Unregister does)."""
        with self.lock:
            what = self._not_registered(reg)
            if reg.peer_id is None:
                same = self._same_route(self.registrations, reg)
                if not same:
                    raise AgentError(404, what, "amphora_id")
                self._commit(set(self.vips), set(self.registrations), self.draining | same)
                return
            # Split out this peer's entry: what is left is the route for the other peers.
            others, draining = self._take_out(self.registrations, reg, what, "amphora_id")
            self._commit(set(self.vips), others | {reg}, draining | {reg})

    @staticmethod
    def _not_registered(reg: Registration) -> str:
        return (f"amphora {reg.amphora_id} is not registered for vip_ip {reg.vip_ip} with "
                f"nexthop_ip {reg.nexthop_ip}")  # fmt: skip

    def list_registrations(
        self,
        amphora_id: str | None = None,
        vip_ip: str | None = None,
        nexthop_ip: str | None = None,
        peer_id: str | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            result = []
            for reg in sorted(self.registrations):
                if (
                    (amphora_id and reg.amphora_id != amphora_id)
                    or (vip_ip and reg.vip_ip != vip_ip)
                    or (nexthop_ip and reg.nexthop_ip != nexthop_ip)
                    or (peer_id and reg.peer_id != peer_id)
                ):
                    continue
                entry = asdict(reg)
                entry["announced_to"] = self._announced_to(reg)
                entry["withdrawn"] = self._withdrawn_because(reg)
                entry["draining"] = reg in self.draining
                if reg.amphora_id == self.config.amphora_id:
                    entry["connections"] = self.connections(reg.vip_ip)
                result.append(entry)
            return result

    # -- Register / Unregister / List VIP (spec P2: non-amphora endpoints) -----------------

    def register_vip(self, route: VipRoute) -> VipRoute:
        with self.lock:
            replaced = self._check_vip_route(route)
            if replaced is None:
                raise AgentError(409, "this vip_ip, nexthop_ip and peer are already registered",
                                 "vip_ip")  # fmt: skip
            self._one_nexthop_per_peer(route, ignore=replaced)
            self._commit(set(self.vips), set(self.registrations),
                         vip_routes=(self.vip_routes - replaced) | {route})  # fmt: skip
            return route

    def _check_vip_route(self, route: VipRoute) -> set[VipRoute] | None:
        """Register VIP's checks; the entries the route replaces (one for every peer replaces
        those for single peers), or None when it is registered already."""
        self._validate(route)
        if route.nexthop_ip in {str(a.ip) for a in self.frontend_addresses()}:
            raise AgentError(
                400,
                f"nexthop_ip {route.nexthop_ip} is this amphora's own front end: use Register "
                "Amphora (its VIP on loopback, its listeners checked)",
                "nexthop_ip",
            )
        covered = self._same_route(self.vip_routes, route)
        if route in self.vip_routes or any(r.peer_id is None for r in covered):
            return None
        return covered if route.peer_id is None else set()

    def update_vip_routes(self, add: list[VipRoute], remove: list[VipRoute]) -> dict[str, int]:
        """Unregister VIP, then Register VIP, for many routes: each entry checked as the single
        call checks it, then one state write and one speaker change. All or nothing (the
        first refusal names its entry, ``add[3].nexthop_ip``); what is registered already,
        or not registered, is skipped. The working set is ``self.vip_routes`` while the lock
        is held, restored before the one commit (which restores it again on failure)."""
        with self.lock:
            before = self.vip_routes
            added = removed = 0
            try:
                for index, route in enumerate(remove):
                    what = f"vip_ip {route.vip_ip} is not registered with {route.nexthop_ip}"
                    try:
                        self.vip_routes, _ = self._take_out(self.vip_routes, route, what, "vip_ip")
                        removed += 1
                    except AgentError as exc:
                        if exc.status != 404:
                            raise _entry_error(exc, "remove", index) from exc
                desired = None if self.config.bgp.add_path else self._nexthops_by_peer()
                for index, route in enumerate(add):
                    try:
                        replaced = self._check_vip_route(route)
                        if replaced is None:
                            continue
                        if desired is not None:
                            if replaced:
                                desired = self._nexthops_by_peer(replaced)
                            self._one_nexthop_per_peer(route, desired=desired)
                            desired.update({(r.prefix, r.peer_id): r.nexthop
                                            for r in self.routes_for({route})})  # fmt: skip
                    except AgentError as exc:
                        raise _entry_error(exc, "add", index) from exc
                    self.vip_routes = (self.vip_routes - replaced) | {route}
                    added += 1
                final = self.vip_routes
            finally:
                self.vip_routes = before
            if final != before:
                self._commit(set(self.vips), set(self.registrations), vip_routes=final)
            return {"added": added, "removed": removed}

    def unregister_vip(self, route: VipRoute) -> None:
        """Unregister VIP: withdraw the route from route.peer_id only, or from every peer."""
        with self.lock:
            what = f"vip_ip {route.vip_ip} is not registered with nexthop_ip {route.nexthop_ip}"
            remaining, _ = self._take_out(self.vip_routes, route, what, "vip_ip")
            self._commit(set(self.vips), set(self.registrations), vip_routes=remaining)

    def list_vip_routes(
        self, vip_ip: str | None = None, nexthop_ip: str | None = None, peer_id: str | None = None
    ) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    **asdict(route),
                    "announced_to": self._announced_to(route),
                    "withdrawn": self._withdrawn_because(route),
                }
                for route in sorted(self.vip_routes)
                if not (
                    (vip_ip and route.vip_ip != vip_ip)
                    or (nexthop_ip and route.nexthop_ip != nexthop_ip)
                    or (peer_id and route.peer_id != peer_id)
                )
            ]

    def _announced_to(self, entry: Registration | VipRoute) -> list[str]:
        """The peers the speaker was last made to announce entry's route to (what it sends,
        not what was asked: a drained, fenced or listener-withdrawn route is to none)."""
        prefix = host_prefix(entry.vip_ip)
        sent = self.speaker.routes
        watched = isinstance(entry, Registration)
        return [p for p in self._peers_for(entry)
                if Route(prefix, entry.nexthop_ip, p, watched) in sent]  # fmt: skip

    def _withdrawn_because(self, entry: Registration | VipRoute) -> str | None:
        """Why a route in force is not announced (None: it is, to ``announced_to``)."""
        if self.fenced is not None:
            return FENCED
        if not self._peers_for(entry):
            return NO_PEER  # no peer of its family is configured
        if isinstance(entry, Registration):
            if entry in self.draining:
                return DRAINING
            if not self.distributor and not self.listener_check.healthy:
                return LISTENERS_DOWN
        return None

    def connections(self, vip: str) -> int:
        """Client connections to the VIP that still carry traffic (TIME-WAIT ones do not):
        what a drain waits for."""
        address = f"[{vip}]" if ":" in vip else vip
        out = subprocess.run(
            ["ss", "-N", self.config.haproxy_namespace, "-Htn", "state", "connected", "exclude",
             "time-wait", "src", address],
            capture_output=True,
            text=True,
            check=False,
        ).stdout  # fmt: skip
        return sum(1 for line in out.splitlines() if line.strip())

    # -- load balancer configuration (HAProxy) ------------------------------------------------

    def put_haproxy(self, load_balancer_id: str, body: str) -> bool:
        try:
            return self.haproxy.apply(load_balancer_id, body)
        except ConfigRejected as exc:
            raise AgentError(400, f"haproxy configuration rejected: {exc}", "body") from None

    def get_haproxy(self, load_balancer_id: str) -> str:
        body = self.haproxy.pushed_for(load_balancer_id)
        if body is None:
            raise AgentError(
                404, f"no configuration for load balancer {load_balancer_id}", "load_balancer_id"
            )
        return body

    def delete_haproxy(self, load_balancer_id: str) -> None:
        self.get_haproxy(load_balancer_id)
        self.haproxy.apply(load_balancer_id, None)

    # -- status ----------------------------------------------------------------------------

    def bgp_status(self) -> dict[str, Any]:
        with self.lock:
            routes = sorted(self.routes())
        return {
            "driver": self.speaker.name,
            "router_id": str(self.config.bgp.router_id),
            "speaker_running": all(p.alive() for p in self.speaker.processes()),
            "restarts": dict(self.supervisor.restarts),
            "peers": [p.as_dict() for p in self.speaker.peer_status()],
            "routes": [
                {"prefix": r.prefix, "nexthop_ip": r.nexthop, "peer_id": r.peer_id} for r in routes
            ],
        }

    def info(self) -> dict[str, Any]:
        return {
            "hostname": socket.gethostname(),
            "amphora_id": self.config.amphora_id,
            "api_version": "1.0",
            "l3dist_version": __version__,
            "speaker_driver": self.speaker.name,
            "service_type": self.config.service_type,
            "haproxy_running": self.haproxy.process.alive(),
            "listener_check": self.listener_check.status(),
            "vips": sorted(self.vips),
            # What a drain waits for when the distributor is dedicated (this amphora has no
            # registration of its own to list them with).
            "connections": {vip: self.connections(vip) for vip in sorted(self.vips)},
            "frontend_addresses": [str(a.ip) for a in self.frontend_addresses()],
            "fenced": self.fenced,
        }
