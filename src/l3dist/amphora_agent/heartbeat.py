"""The agent's heartbeat sender: a signed UDP datagram to every health manager each interval,
from the management namespace (the agent's own)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from l3dist.contracts.agent_config import HeartbeatConfig
from l3dist.contracts.heartbeat import MAX_DATAGRAM, Heartbeat, SequenceCounter, encode

log = logging.getLogger(__name__)


class HeartbeatSender:
    def __init__(
        self,
        amphora_id: str,
        config: HeartbeatConfig,
        statuses: Callable[[], tuple[dict[str, str], dict[str, str]]],
        rescue_packets: Callable[[], dict[str, int]] = dict,
        fenced: Callable[[], bool] = lambda: False,
        host_id: str | None = None,
        counters: Callable[[], tuple[dict[str, dict[str, int]], int | None]] = lambda: ({}, None),
    ) -> None:
        self.amphora_id = amphora_id
        self.config = config
        self.key = config.key.get_secret_value().encode()
        self.statuses = statuses
        self.rescue_packets = rescue_packets
        self.fenced = fenced
        self.host_id = host_id
        self.counters = counters
        self.sequence = SequenceCounter()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.targets = [_address(t) for t in config.controllers]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def send_once(self) -> None:
        listeners, pools = self.statuses()
        listener_stats, worker = self.counters()
        heartbeat = Heartbeat.model_validate(
            {
                "amphora_id": self.amphora_id,
                "seq": self.sequence.next(),
                "sent_at": time.time(),
                "listeners": listeners,
                "pools": pools,
                "listener_stats": listener_stats,
                "haproxy_worker": worker,
                "flow_rescue": self.rescue_packets(),
                "fenced": self.fenced(),
                "host_id": self.host_id,
            }
        )
        datagram = encode(heartbeat, self.key)
        if len(datagram) > MAX_DATAGRAM:
            log.error("heartbeat of %d bytes is over %d: not sent", len(datagram), MAX_DATAGRAM)
            return
        for host, port in self.targets:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.sendto(datagram, (host, port))
                except OSError as exc:  # unreachable now; the next beat tries again
                    log.debug("heartbeat to %s:%s: %s", host, port, exc)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.send_once()
            except Exception:
                log.exception("heartbeat not sent")
            self.stopping.wait(self.config.interval)


def _address(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)
