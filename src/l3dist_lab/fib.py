"""Follow the ToR's kernel FIB through netlink route events, with the time each change arrived.

Used to measure how long an announcement takes to reach the forwarding table, and to wait for a
route to reach an expected state without polling. Zebra replaces a route (new nexthop group id)
on every ECMP change, so route events see every change.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute

from l3dist_lab.config import TOR_NS

RTPROT_BGP = 186
RTM_NEWROUTE, RTM_DELROUTE = 24, 25


@dataclass(frozen=True)
class FibChange:
    at: float  # time.perf_counter() when the event was read
    prefix: str
    nexthops: frozenset[str]


def _prefix(msg: Any) -> str:
    dst = msg.get("RTA_DST") or ("0.0.0.0" if msg["family"] == socket.AF_INET else "::")
    return str(ipaddress.ip_network(f"{dst}/{msg['dst_len']}"))


def _nexthops(msg: Any) -> frozenset[str]:
    hops = [h.get("RTA_GATEWAY") for h in msg.get("RTA_MULTIPATH") or []]
    if msg.get("RTA_GATEWAY"):
        hops.append(msg.get("RTA_GATEWAY"))
    return frozenset(str(h) for h in hops if h)


class FibWatcher:
    """A background reader of route events in the ToR namespace."""

    def __init__(self, namespace: str = TOR_NS) -> None:
        self.namespace = namespace
        self.state: dict[str, frozenset[str]] = {}
        self.history: list[FibChange] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._events: IPRoute | None = None
        self._error: BaseException | None = None
        self._stop = False
        # pyroute2's synchronous socket belongs to the thread that made it: make it there.
        self._thread = threading.Thread(target=self._run, name="fib-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"cannot watch the FIB of {namespace}: {self._error}")
        with IPRoute(netns=namespace) as ipr:
            for family in (socket.AF_INET, socket.AF_INET6):
                for msg in ipr.route("dump", family=family):
                    if msg.get("proto") == RTPROT_BGP:
                        self.state.setdefault(_prefix(msg), _nexthops(msg))

    def _run(self) -> None:
        try:
            self._events = IPRoute(netns=self.namespace)
            self._events.bind()
        except BaseException as exc:
            self._error = exc
            return
        finally:
            self._ready.set()
        while not self._stop:
            try:
                messages = self._events.get()
            except Exception:
                if self._stop:
                    return
                raise
            now = time.perf_counter()
            for msg in messages:
                event = msg.get("header", {}).get("type")
                if event not in (RTM_NEWROUTE, RTM_DELROUTE) or msg.get("proto") != RTPROT_BGP:
                    continue
                prefix = _prefix(msg)
                hops = _nexthops(msg) if event == RTM_NEWROUTE else frozenset()
                with self._cond:
                    self.state[prefix] = hops
                    self.history.append(FibChange(now, prefix, hops))
                    self._cond.notify_all()

    def nexthops(self, prefix: str) -> frozenset[str]:
        with self._cond:
            return self.state.get(str(ipaddress.ip_network(prefix)), frozenset())

    def wait_for(
        self,
        prefix: str,
        condition: Callable[[frozenset[str]], bool],
        since: float,
        timeout: float = 10.0,
    ) -> float:
        """Time of the first change to prefix at or after since that meets condition.

        Raises TimeoutError when none arrives within timeout.
        """
        prefix = str(ipaddress.ip_network(prefix))
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for change in self.history:
                    if (
                        change.at >= since
                        and change.prefix == prefix
                        and condition(change.nexthops)
                    ):
                        return change.at
                self._wait(prefix, deadline, timeout)

    def wait_until(
        self, prefix: str, condition: Callable[[frozenset[str]], bool], timeout: float = 10.0
    ) -> frozenset[str]:
        """Wait until the current next hops of prefix meet condition; return them."""
        prefix = str(ipaddress.ip_network(prefix))
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition(self.state.get(prefix, frozenset())):
                self._wait(prefix, deadline, timeout)
            return self.state.get(prefix, frozenset())

    def _wait(self, prefix: str, deadline: float, timeout: float) -> None:
        """Wait for the next change (the condition lock is held), or raise at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"{prefix} did not reach the expected next hops in {timeout:.0f} s "
                f"(now {sorted(self.state.get(prefix, frozenset()))})"
            )
        self._cond.wait(remaining)

    def close(self) -> None:
        self._stop = True
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> FibWatcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def has(nexthop: str) -> Callable[[frozenset[str]], bool]:
    """Condition: the route has this next hop."""
    return lambda hops: nexthop in hops


def lacks(nexthop: str) -> Callable[[frozenset[str]], bool]:
    """Condition: the route does not have this next hop."""
    return lambda hops: nexthop not in hops
