"""The heartbeat message, shared by the agent (sender) and the health manager (receiver).

On the wire (as Octavia's): ``zlib(JSON) || HMAC-SHA256(key, zlib(JSON))``. The receiver checks
size, signature, decompressed size (no zip bomb), schema, then freshness: the sequence number
must grow per amphora and the send time must be within a window of the receiver's clock, so a
captured message cannot be replayed. Every refusal has a reason, counted by the manager.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import zlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# bytes on the wire: one UDP datagram (IP fragments it on the management network, as Octavia's
# heartbeats); 256 listeners and pools with their counters take about 28 KB
MAX_DATAGRAM = 65000
MAX_JSON = 262144  # bytes after decompression
DIGEST_SIZE = hashlib.sha256().digest_size
FRESHNESS_WINDOW = 30.0  # seconds between sender and receiver clocks

Status = Literal["UP", "DOWN"]
RescuePacketKind = Literal[
    "flows", "rescued", "copies", "not_ours", "dead_owner", "owner_feedback", "owner_learned"
]


class HeartbeatRefused(ValueError):
    """A datagram that is not a valid, fresh heartbeat; reason is a short label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


Counter = Annotated[int, Field(ge=0)]


class ListenerCounters(BaseModel):
    """One listener's HAProxy counters on one amphora, as its worker process counted them since
    it started (Octavia's listener statistics: a gauge and four totals)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    active_connections: Counter = 0
    total_connections: Counter = 0
    bytes_in: Counter = 0
    bytes_out: Counter = 0
    request_errors: Counter = 0


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    ver: Literal[1] = 1
    amphora_id: Annotated[str, Field(min_length=1, max_length=36)]
    seq: Annotated[int, Field(ge=0)]
    sent_at: float
    # listener id / pool id -> status, from HAProxy's own view at the agent's last check
    listeners: dict[Annotated[str, Field(max_length=64)], Status] = Field(
        default_factory=dict, max_length=256
    )
    pools: dict[Annotated[str, Field(max_length=64)], Status] = Field(
        default_factory=dict, max_length=256
    )
    # listener id -> its counters, and the HAProxy worker (pid) that counted them: a new worker
    # (after each reload) starts from zero, which is how the receiver keeps totals across reloads
    listener_stats: dict[Annotated[str, Field(max_length=64)], ListenerCounters] = Field(
        default_factory=dict, max_length=256
    )
    haproxy_worker: Annotated[int, Field(ge=0)] | None = None
    # flow-rescue totals of the amphora (its agent's counters: flows, packets), when rescue is on
    flow_rescue: dict[RescuePacketKind, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    # the amphora fenced itself (it may have been failed over): the manager either clears the
    # fence (it is still a member) or resets its host (it was replaced)
    fenced: bool = False
    # the enrolled host it runs on (hosts compute driver), None for a booted amphora
    host_id: Annotated[str, Field(min_length=1, max_length=36)] | None = None


def sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def encode(heartbeat: Heartbeat, key: bytes) -> bytes:
    payload = zlib.compress(heartbeat.model_dump_json().encode())
    return payload + sign(payload, key)


def decode(datagram: bytes, key: bytes) -> Heartbeat:
    """The heartbeat in a datagram, or HeartbeatRefused (never any other exception)."""
    if len(datagram) > MAX_DATAGRAM:
        raise HeartbeatRefused("oversized", f"{len(datagram)} bytes")
    if len(datagram) <= DIGEST_SIZE:
        raise HeartbeatRefused("unsigned", f"{len(datagram)} bytes")
    payload, digest = datagram[:-DIGEST_SIZE], datagram[-DIGEST_SIZE:]
    if not hmac.compare_digest(digest, sign(payload, key)):
        raise HeartbeatRefused("bad_signature")
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(payload, MAX_JSON)
        if inflater.unconsumed_tail or not inflater.eof:
            raise HeartbeatRefused("malformed", "too large or truncated")
        return Heartbeat.model_validate(json.loads(text))
    except (zlib.error, ValueError, ValidationError) as exc:
        if isinstance(exc, HeartbeatRefused):
            raise
        raise HeartbeatRefused("malformed", type(exc).__name__) from None


class ReplayGuard:
    """Per amphora, only a higher sequence number than the last accepted, sent recently."""

    def __init__(self, window: float = FRESHNESS_WINDOW) -> None:
        self.window = window
        self.last: dict[str, int] = {}
        self.lock = threading.Lock()

    def check(self, heartbeat: Heartbeat, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if abs(now - heartbeat.sent_at) > self.window:
            raise HeartbeatRefused("stale", f"sent {now - heartbeat.sent_at:.1f} s ago")
        with self.lock:
            if heartbeat.seq <= self.last.get(heartbeat.amphora_id, -1):
                raise HeartbeatRefused("replayed", f"seq {heartbeat.seq}")
            self.last[heartbeat.amphora_id] = heartbeat.seq


class SequenceCounter:
    """The sender's sequence: microseconds of wall-clock time, strictly increasing, so it keeps
    growing across agent restarts without any stored state. Microseconds, not milliseconds: a
    burst of beats runs the counter ahead of the clock by one unit per beat, and a sender
    restarted within that lead would start below its last sequence (refused as replays)."""

    def __init__(self) -> None:
        self.last = 0
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.last = max(self.last + 1, time.time_ns() // 1_000)
            return self.last
