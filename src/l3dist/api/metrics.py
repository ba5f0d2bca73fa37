"""The API's metrics: every request's duration by method, route (the path template, so the
label takes only the API's own routes) and status; served on ``GET /metrics``."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Histogram
from starlette.requests import Request
from starlette.responses import Response

from l3dist.common.metrics import DURATION_BUCKETS, exposition

REQUESTS = Histogram(
    "l3dist_api_request_duration_seconds",
    "API requests by method, route template and status, from the first byte to the response",
    ["method", "route", "status"],
    buckets=DURATION_BUCKETS,
)


class RequestMetrics:
    """ASGI middleware: times each HTTP request; the route is the matched path template
    (``/v2/lbaas/loadbalancers/{lb_id}``), ``unmatched`` for anything else."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], template, str(status["code"])).observe(
                time.perf_counter() - started
            )


def metrics(_: Request) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
