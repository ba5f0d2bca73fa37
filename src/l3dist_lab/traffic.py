"""Client traffic through the VIP, from the lab's client namespace (it reaches the VIP only via the
ToR, so every connection follows the ToR's ECMP route).

``run_clients`` runs on the host and starts ``python -m l3dist_lab.traffic`` inside the client
namespace; each connection is a fresh TCP connection (new source port, so a new ECMP hash) that
sends one HTTP request and records which amphora answered.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from l3dist.contracts.agent_api import AMPHORA_HEADER
from l3dist_lab.config import CLIENT_NS


def one_request(
    vip: str, port: int, timeout: float, source_port: int = 0, path: str = "/"
) -> tuple[str, str]:
    """(amphora, member) of one request: a proxied answer names its amphora in a header and
    its member in the body (first line); the amphora's own default answer names the amphora in
    the body. A body shorter than its Content-Length (connection cut) is a failure."""
    family = socket.AF_INET6 if ipaddress.ip_address(vip).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", source_port))
        sock.connect((vip, port))
        host = f"[{vip}]" if family == socket.AF_INET6 else vip
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    response = b"".join(chunks).decode(errors="replace")
    head, _, body = response.partition("\r\n\r\n")
    if not head.startswith("HTTP/1.") or " 200 " not in head.split("\r\n")[0]:
        raise ValueError(f"unexpected response: {head.splitlines()[:1]}")
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "")
    if length.isdigit() and len(body.encode()) < int(length):
        raise ValueError(f"truncated: {len(body.encode())} of {length} bytes")
    first = body.strip().split("\n", 1)[0] if body.strip() else ""
    if AMPHORA_HEADER.lower() in headers:
        return headers[AMPHORA_HEADER.lower()], first
    return first, ""


def probe(
    vip: str,
    count: int,
    port: int = 80,
    timeout: float = 2.0,
    workers: int = 8,
    source_port_base: int = 0,
    path: str = "/",
) -> dict[str, Any]:
    """Open count connections to vip:port; count answers per amphora and failures.

    With source_port_base, connection i uses source port base+i, so two runs send the same
    5-tuples and their mapping to amphorae can be compared (``by_source_port``).
    """
    answers: Counter[str] = Counter()
    members: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    by_port: dict[int, str] = {}

    def attempt(i: int) -> None:
        source_port = source_port_base + i if source_port_base else 0
        try:
            answer, member = one_request(vip, port, timeout, source_port, path)
        except (OSError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            return
        answers[answer] += 1
        if member:
            members[member] += 1
        if source_port:
            by_port[source_port] = answer

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(attempt, range(count)))
    return {
        "vip": vip,
        "connections": count,
        "per_amphora": dict(sorted(answers.items())),
        "per_member": dict(sorted(members.items())),
        "failures": sum(errors.values()),
        "errors": dict(errors),
        "by_source_port": {str(p): a for p, a in sorted(by_port.items())},
    }


def run_clients(
    vip: str,
    count: int,
    port: int = 80,
    timeout: float = 2.0,
    source_port_base: int = 0,
    path: str = "/",
) -> dict[str, Any]:
    """Run probe() inside the client namespace and return its result."""
    return finish_clients(_clients(vip, count, port, timeout, source_port_base, path))


def start_clients(vip: str, count: int, path: str, timeout: float = 30.0) -> subprocess.Popen[str]:
    """probe() started in the client namespace, in the background (finish_clients() gives its
    result): long-lived requests that must survive a change made meanwhile."""
    return _clients(vip, count, 80, timeout, 0, path, workers=count)


def finish_clients(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=600)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return dict(json.loads(out))


def _clients(
    vip: str,
    count: int,
    port: int,
    timeout: float,
    source_port_base: int,
    path: str,
    workers: int = 8,
) -> subprocess.Popen[str]:
    argv = [
        "ip",
        "netns",
        "exec",
        CLIENT_NS,
        sys.executable,
        "-m",
        "l3dist_lab.traffic",
        "--vip",
        vip,
        "--count",
        str(count),
        "--port",
        str(port),
        "--timeout",
        str(timeout),
        "--source-port-base",
        str(source_port_base),
        "--path",
        path,
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


@dataclass(frozen=True)
class Attempt:
    """One request of a client loop: when it started (wall clock), and who answered or why not."""

    started: float
    ok: bool
    detail: str


def loop(vip: str, port: int, timeout: float, workers: int, stop: threading.Event) -> list[Attempt]:
    """New connections to vip:port from `workers` threads, back to back, until stop is set."""
    attempts: list[Attempt] = []

    def run() -> None:
        while not stop.is_set():
            started = time.time()
            try:
                amphora, _ = one_request(vip, port, timeout)
                attempts.append(Attempt(started, True, amphora))
            except (OSError, ValueError) as exc:
                attempts.append(Attempt(started, False, type(exc).__name__))
                stop.wait(0.05)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # short joins: the SIGTERM handler runs in this thread
            thread.join(0.2)
    return sorted(attempts, key=lambda a: a.started)


class ClientLoop:
    """A steady loop of new client connections through the VIP, in the client namespace, running
    while the caller changes the load balancer; stop() returns every attempt."""

    def __init__(self, vip: str, port: int = 80, timeout: float = 1.0, workers: int = 4) -> None:
        argv = [
            "ip", "netns", "exec", CLIENT_NS, sys.executable, "-m", "l3dist_lab.traffic",
            "--vip", vip, "--port", str(port), "--timeout", str(timeout),
            "--loop-workers", str(workers),
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[Attempt]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return [Attempt(*row) for row in json.loads(out)]

    def __enter__(self) -> ClientLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def failures(attempts: list[Attempt], start: float, end: float = float("inf")) -> int:
    """Failed attempts that started in [start, end)."""
    return sum(1 for a in attempts if not a.ok and start <= a.started < end)


READY = "ready"


class Ready:
    """Prints READY on stderr once every connection has had its first answer (or failed), so
    the caller makes its change only when all of them are established: on a loaded machine
    the handshakes take longer than any fixed delay."""

    def __init__(self, count: int) -> None:
        self.left = count

    def one(self) -> None:
        self.left -= 1
        if self.left == 0:
            print(READY, file=sys.stderr, flush=True)


async def _long_lived(
    vip: str,
    port: int,
    index: int,
    seconds: float,
    interval: float,
    timeout: float,
    rtts: list[tuple[float, float]] | None = None,
    ready: Ready | None = None,
) -> tuple[str, str, float]:
    """One keep-alive connection asking every interval for seconds: (first answerer, error,
    when the error happened (wall clock), 0 without one). Each request's round trip goes to
    rtts as (when it was sent, milliseconds), when given."""
    host = f"[{vip}]" if ":" in vip else vip
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    await asyncio.sleep(index * 0.003)  # spread the handshakes
    first = ""
    counted = False

    def answered() -> None:
        nonlocal counted
        if ready is not None and not counted:
            counted = True
            ready.one()

    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, port), timeout)
    except (OSError, TimeoutError) as exc:
        answered()
        return "", f"connect: {type(exc).__name__}", time.time()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sent, sent_at = time.perf_counter(), time.time()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status:  # served, not just connected
                raise ValueError(status.decode(errors="replace"))
            length = 0
            for line in head.decode(errors="replace").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await asyncio.wait_for(reader.readexactly(length), timeout)
            first = first or body.decode(errors="replace").strip()
            answered()
            if rtts is not None:
                rtts.append((round(sent_at, 4), round((time.perf_counter() - sent) * 1000, 3)))
            await asyncio.sleep(interval)
        return first, "", 0.0
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        return first, type(exc).__name__, time.time()
    finally:
        answered()
        writer.close()


def long_lived(
    vip: str,
    count: int,
    seconds: float,
    port: int = 80,
    interval: float = 0.15,
    with_rtts: bool = False,
) -> dict[str, Any]:
    """count connections held open for seconds, each with a request every interval (data both
    ways); a connection that breaks (reset, timeout, closed) counts, whoever served it. Broken
    ones are also given by their amphora (broken_per_amphora) with when they broke; with_rtts,
    every request's (sent at, round trip in ms) too."""
    rtts: list[tuple[float, float]] | None = [] if with_rtts else None
    ready = Ready(count)

    async def run_all() -> list[tuple[str, str, float]]:
        return await asyncio.gather(
            *(_long_lived(vip, port, i, seconds, interval, 2.0, rtts, ready) for i in range(count))
        )

    results = asyncio.run(run_all())
    errors = Counter(error for _, error, _ in results if error)
    return {
        "vip": vip,
        "connections": count,
        "broken": sum(errors.values()),
        "errors": dict(errors),
        "per_amphora": dict(Counter(first for first, _, _ in results if first)),
        "broken_per_amphora": dict(Counter(first for first, error, _ in results if error)),
        "broken_at": sorted(at for _, error, at in results if error),
        **({"rtts": sorted(rtts)} if rtts is not None else {}),
    }


def start_long_lived(
    vip: str, count: int, seconds: float, with_rtts: bool = False, ready_timeout: float = 30
) -> subprocess.Popen[str]:
    """long_lived() in the client namespace, in the background (finish_clients() gives it);
    returns once every connection has had its first answer (or ready_timeout passed)."""
    argv = ["ip", "netns", "exec", CLIENT_NS, sys.executable, "-m", "l3dist_lab.traffic",
            "--vip", vip, "--count", str(count), "--hold-seconds", str(seconds)]  # fmt: skip
    if with_rtts:
        argv.append("--rtts")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + ready_timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([proc.stderr], [], [], left)
        if not readable:
            break
        line = proc.stderr.readline()
        if not line or line.strip() == READY:  # ready, or the clients ended
            break
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description="open TCP connections to a VIP")
    parser.add_argument("--vip", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--source-port-base", type=int, default=0)
    parser.add_argument("--path", default="/")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--loop-workers", type=int, default=0, help="loop until SIGTERM with this many threads"
    )
    parser.add_argument(
        "--hold-seconds", type=float, default=0, help="count long-lived connections this long"
    )
    parser.add_argument("--rtts", action="store_true", help="long-lived: every round trip too")
    args = parser.parse_args()
    if args.hold_seconds:
        result = long_lived(args.vip, args.count, args.hold_seconds, args.port,
                            with_rtts=args.rtts)  # fmt: skip
        print(json.dumps(result))
        return
    if args.loop_workers:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        attempts = loop(args.vip, args.port, args.timeout, args.loop_workers, stop)
        print(json.dumps([[a.started, a.ok, a.detail] for a in attempts]))
        return
    result = probe(
        args.vip,
        args.count,
        args.port,
        args.timeout,
        workers=args.workers,
        source_port_base=args.source_port_base,
        path=args.path,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
