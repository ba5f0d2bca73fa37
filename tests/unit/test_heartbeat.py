"""Heartbeat messages: signed, bounded, fresh; everything else refused with a reason."""

from __future__ import annotations

import json
import time
import uuid
import zlib

import pytest

from l3dist.contracts.heartbeat import (
    MAX_DATAGRAM,
    Heartbeat,
    HeartbeatRefused,
    ReplayGuard,
    SequenceCounter,
    decode,
    encode,
    sign,
)

KEY = b"k" * 32


def beat(seq: int = 1, **fields: object) -> Heartbeat:
    return Heartbeat.model_validate(
        {"amphora_id": "amp-1", "seq": seq, "sent_at": time.time(), **fields}
    )


def test_round_trip() -> None:
    sent = beat(listeners={"l1": "UP"})
    assert decode(encode(sent, KEY), KEY) == sent


def signed(payload: bytes) -> bytes:
    return payload + sign(payload, KEY)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "unsigned"),
        (b"x" * 10, "unsigned"),
        (b"x" * (MAX_DATAGRAM + 1), "oversized"),
        (encode(beat(), b"other-key"), "bad_signature"),
        (encode(beat(), KEY)[:-1] + b"\0", "bad_signature"),
        (signed(b"not zlib at all"), "malformed"),
        (signed(zlib.compress(b"{not json")), "malformed"),
        (signed(zlib.compress(json.dumps({"amphora_id": "a"}).encode())), "malformed"),
        (signed(zlib.compress(b"{" + b" " * 200000 + b"}")), "malformed"),  # inflates too far
        (signed(zlib.compress(json.dumps({**beat().model_dump(), "x": 1}).encode())), "malformed"),
        (signed(zlib.compress(json.dumps({**beat().model_dump(), "seq": "1"}).encode())),
         "malformed"),
    ],
)  # fmt: skip
def test_bad_datagrams_are_refused_with_a_reason(datagram: bytes, reason: str) -> None:
    with pytest.raises(HeartbeatRefused) as refused:
        decode(datagram, KEY)
    assert refused.value.reason == reason


def test_replayed_and_stale_heartbeats_are_refused() -> None:
    guard = ReplayGuard(window=30)
    guard.check(beat(5))
    for seq in (5, 4):
        with pytest.raises(HeartbeatRefused, match="replayed"):
            guard.check(beat(seq))
    guard.check(beat(6))
    old = Heartbeat.model_validate({"amphora_id": "amp-1", "seq": 7, "sent_at": time.time() - 60})
    with pytest.raises(HeartbeatRefused, match="stale"):
        guard.check(old)
    guard.check(beat(1, amphora_id="amp-2"))  # sequences are per amphora


def test_the_sequence_grows_across_restarts_even_after_a_burst() -> None:
    """A burst runs the counter ahead of the clock by at most one microsecond per beat, so
    a sender restarted 10 ms later (a real restart takes longer) starts above its last
    sequence: the manager never takes its fresh heartbeats for replays."""
    first = SequenceCounter()
    values = [first.next() for _ in range(5000)]
    assert values == sorted(set(values))
    time.sleep(0.01)
    assert SequenceCounter().next() > values[-1]


def test_a_heartbeat_of_256_listeners_and_pools_with_counters_fits_one_datagram() -> None:
    ids = [str(uuid.uuid4()) for _ in range(256)]
    counters = {"active_connections": 4000, "total_connections": 10**12, "bytes_in": 10**15,
                "bytes_out": 10**15, "request_errors": 10**9}  # fmt: skip
    big = beat(listeners=dict.fromkeys(ids, "UP"), pools=dict.fromkeys(ids, "DOWN"),
               listener_stats=dict.fromkeys(ids, counters), haproxy_worker=123456)  # fmt: skip
    datagram = encode(big, KEY)
    assert len(datagram) <= MAX_DATAGRAM
    assert decode(datagram, KEY) == big
