"""A lab member's HTTP server (dual stack): answers every GET with the member's name;
``/stream?seconds=N`` sends the name once every 100 ms for N seconds (a long-lived response, to
show that established connections survive changes)."""

from __future__ import annotations

import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STREAM_INTERVAL = 0.1


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main() -> None:
    name, port = sys.argv[1], int(sys.argv[2])
    body = f"{name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlparse(self.path)
            chunks = 1
            if url.path == "/stream":
                seconds = float(parse_qs(url.query).get("seconds", ["1"])[0])
                chunks = max(1, min(600, round(seconds / STREAM_INTERVAL)))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body) * chunks))
            self.end_headers()
            for i in range(chunks):
                if i:
                    time.sleep(STREAM_INTERVAL)
                self.wfile.write(body)
                self.wfile.flush()

        def log_message(self, *_: object) -> None:
            return None

    DualStackServer(("::", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
