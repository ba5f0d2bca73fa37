"""A small typed client of l3dist's REST API (what the provider driver needs of it).

Synchronous httpx, because Octavia calls provider drivers from its API threads. Every 4xx/5xx
becomes :class:`L3distError` with l3dist's own fault message and the field it names, so the
driver can hand Octavia's user the reason l3dist gave.
"""

from __future__ import annotations

from typing import Any

import httpx

from l3dist_octavia.config import Settings


class L3distError(Exception):
    """l3dist refused a call (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"l3dist answered {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.field = field


class L3distClient:
    """l3dist's API as an admin (or service) of it; ``transport`` lets tests mount the app."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json", **settings.extra_headers}
        if settings.auth_token:
            headers["Authorization"] = f"Bearer {settings.auth_token}"
        else:
            headers["X-Project-Id"] = settings.project_id
            headers["X-Roles"] = ",".join(settings.roles)
        self._http = httpx.Client(
            base_url=settings.api_url.rstrip("/"),
            headers=headers,
            timeout=settings.timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The answer's JSON object ({} for an empty answer), or L3distError."""
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise L3distError(0, f"l3dist at {self._http.base_url} is unreachable: {exc}") from exc
        if response.status_code >= 400:
            message, field = response.text or response.reason_phrase, None
            try:
                fault = response.json()
                message = str(fault.get("faultstring") or message)
                field = fault.get("field")
            except ValueError:
                pass
            raise L3distError(response.status_code, message, field)
        if not response.content:
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {"items": data}

    # -- the calls the driver makes ------------------------------------------------------

    def create(self, path: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        """POST {key: fields}; the created object."""
        return dict(self.request("POST", path, {key: fields})[key])

    def update(self, path: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PUT", path, {key: fields})[key])

    def delete(self, path: str, params: dict[str, str] | None = None) -> bool:
        """DELETE; False when l3dist has no such object (already gone: deletes are idempotent)."""
        try:
            self.request("DELETE", path, params=params)
        except L3distError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def show(self, path: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.request("GET", path)[key])
        except L3distError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, path: str, plural: str, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return [dict(item) for item in self.request("GET", path, params=params)[plural]]

    def find_distributor(self, name_or_id: str) -> dict[str, Any] | None:
        """The distributor with this id, else the one with this name, else None."""
        found = self.show(f"/v2/lbaas/distributors/{name_or_id}", "distributor")
        if found is not None:
            return found
        named = self.list("/v2/lbaas/distributors", "distributors", {"name": name_or_id})
        return named[0] if len(named) == 1 else None
