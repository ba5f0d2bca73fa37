"""The provider driver against the real l3dist app (tests/api's fixtures), in process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from l3dist_octavia.config import Settings
from l3dist_octavia.driver import L3distProviderDriver
from tests.api.conftest import Api, api  # noqa: F401  (the fixture, for these tests)


class AppTransport(httpx.BaseTransport):
    """The driver's httpx requests handed to the app through the API fixture's TestClient
    (httpx's ASGITransport is async-only; the driver is synchronous, as Octavia calls it)."""

    def __init__(self, server: Api) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.server.client.request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


@pytest.fixture
def settings() -> Settings:
    """The driver as Octavia's service user in l3dist's no-auth mode (an admin)."""
    return Settings(api_url="http://l3dist.test", project_id="service", roles=("admin",))


@pytest.fixture
def driver(api: Api, settings: Settings) -> Iterator[L3distProviderDriver]:  # noqa: F811
    made = L3distProviderDriver(settings, transport=AppTransport(api))
    yield made
    made.client.close()
