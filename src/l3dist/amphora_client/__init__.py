"""Client of the amphora agent API, used by the controller (and the lab, demo and benchmarks)."""

from __future__ import annotations

from typing import Any

import httpx


class AgentClientError(Exception):
    """The agent refused a request; carries its HTTP status and message."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.field = field


class AgentClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text}
            raise AgentClientError(
                response.status_code, str(body.get("message")), body.get("field")
            )
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("text/plain"):
            return response.text
        return response.json()

    def info(self) -> dict[str, Any]:
        return dict(self._call("GET", "/1.0/info"))

    def plug_vip(self, vip: str) -> None:
        self._call("POST", f"/1.0/plug/vip/{vip}")

    def unplug_vip(self, vip: str) -> None:
        self._call("DELETE", f"/1.0/plug/vip/{vip}")

    def register_amphora(
        self, amphora_id: str, vip_ip: str, nexthop_ip: str, peer_id: str | None = None
    ) -> dict[str, Any]:
        body = {"amphora_id": amphora_id, "vip_ip": vip_ip, "nexthop_ip": nexthop_ip}
        if peer_id is not None:
            body["peer_id"] = peer_id
        return dict(self._call("POST", "/1.0/distributor/amphorae", json=body)["registration"])

    def unregister_amphora(
        self, amphora_id: str, vip_ip: str, nexthop_ip: str, peer_id: str | None = None
    ) -> None:
        params = {"vip_ip": vip_ip, "nexthop_ip": nexthop_ip}
        if peer_id is not None:
            params["peer_id"] = peer_id
        self._call("DELETE", f"/1.0/distributor/amphorae/{amphora_id}", params=params)

    def drain_amphora(
        self, amphora_id: str, vip_ip: str, nexthop_ip: str, peer_id: str | None = None
    ) -> dict[str, Any]:
        body = {"vip_ip": vip_ip, "nexthop_ip": nexthop_ip}
        if peer_id is not None:
            body["peer_id"] = peer_id
        path = f"/1.0/distributor/amphorae/{amphora_id}/drain"
        return dict(self._call("POST", path, json=body)["registration"])

    def list_amphorae(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._call("GET", "/1.0/distributor/amphorae", params=filters)["amphorae"])

    def bgp_status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/1.0/distributor/bgp"))

    def put_haproxy(self, load_balancer_id: str, config: str) -> None:
        self._call(
            "PUT",
            f"/1.0/loadbalancer/{load_balancer_id}/haproxy",
            content=config.encode(),
            headers={"content-type": "text/plain"},
        )

    def get_haproxy(self, load_balancer_id: str) -> str:
        return str(self._call("GET", f"/1.0/loadbalancer/{load_balancer_id}/haproxy"))

    def delete_haproxy(self, load_balancer_id: str) -> None:
        self._call("DELETE", f"/1.0/loadbalancer/{load_balancer_id}/haproxy")
