"""Client of the amphora agent API, used by the controller (and the lab, demo and benchmarks)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from l3dist.contracts.agent_api import (
    AGENT_PORT,
    AMPHORA_PATH,
    BFD_PATH,
    BGP_PATH,
    FENCE_PATH,
    FRONTEND_PATH,
    AmphoraAssignment,
    BfdPeers,
    FrontendPlug,
    SpeakersUpdate,
)
from l3dist.contracts.agent_config import BgpSpeakerConfig


class AgentClientError(Exception):
    """The agent refused a request; carries its HTTP status and message."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.field = field


class AgentUnreachable(OSError):
    """No TLS conversation with the agent (down, unreachable, or its certificate refused)."""


class _NamedServerTransport(httpx.HTTPTransport):
    """Connects by address, but checks the server's certificate against a name (the amphora
    id), sent as TLS SNI too."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server_name = server_name

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["sni_hostname"] = self.server_name
        return super().handle_request(request)


class AgentClient:
    """The agent API over HTTPS with mutual TLS: the client presents the controller's
    certificate and accepts only an agent certificate from the same CA named by the amphora id
    (the address alone proves nothing: a replacement amphora may reuse it)."""

    def __init__(
        self,
        amphora_id: str,
        address: str,
        context: ssl.SSLContext | None,
        timeout: float = 10.0,
        port: int = AGENT_PORT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """transport: None for the agent over the network (context: the controller's TLS);
        another one answers in process (the noop amphora driver's)."""
        host = f"[{address}]" if ":" in address else address
        self.amphora_id = amphora_id
        if transport is None:
            assert context is not None, "an agent over the network needs a TLS context"
            transport = _NamedServerTransport(amphora_id, verify=context)
        self.http = httpx.Client(
            base_url=f"https://{host}:{port}", timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AgentUnreachable(f"agent of amphora {self.amphora_id}: {exc}") from exc
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

    def register_vip(
        self, vip_ip: str, nexthop_ip: str, peer_id: str | None = None
    ) -> dict[str, Any]:
        body = {"vip_ip": vip_ip, "nexthop_ip": nexthop_ip}
        if peer_id is not None:
            body["peer_id"] = peer_id
        return dict(self._call("POST", "/1.0/distributor/vips", json=body)["vip"])

    def unregister_vip(self, vip_ip: str, nexthop_ip: str, peer_id: str | None = None) -> None:
        params = {"nexthop_ip": nexthop_ip}
        if peer_id is not None:
            params["peer_id"] = peer_id
        self._call("DELETE", f"/1.0/distributor/vips/{vip_ip}", params=params)

    def update_vips(
        self,
        add: Sequence[tuple[str, str, str | None]] = (),
        remove: Sequence[tuple[str, str, str | None]] = (),
    ) -> dict[str, int]:
        """Many Register VIP / Unregister VIP at once, (vip_ip, nexthop_ip, peer_id) each: one
        request, one speaker change on the agent; all or nothing."""

        def body(routes: Sequence[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
            return [{"vip_ip": v, "nexthop_ip": n, **({"peer_id": p} if p else {})}
                    for v, n, p in routes]  # fmt: skip

        payload = {"add": body(add), "remove": body(remove)}
        return dict(self._call("PATCH", "/1.0/distributor/vips", json=payload, timeout=120))

    def list_vips(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._call("GET", "/1.0/distributor/vips", params=filters)["vips"])

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

    def set_flow_rescue(self, peers: list[str], router_macs: list[str] | None = None) -> Any:
        body = {"peers": peers, "router_macs": router_macs or []}
        return self._call("PUT", "/1.0/distributor/flow-rescue", json=body)

    def flow_rescue(self) -> Any:
        return self._call("GET", "/1.0/distributor/flow-rescue")

    def clear_flow_rescue(self) -> None:
        self._call("DELETE", "/1.0/distributor/flow-rescue")

    # -- host mode (the hosts compute driver) ----------------------------------------------

    def assign_amphora(self, assignment: AmphoraAssignment) -> dict[str, Any]:
        body = assignment.model_dump(mode="json", context={"secrets": True})
        return dict(self._call("PUT", AMPHORA_PATH, json=body))

    def host_amphora(self) -> dict[str, Any]:
        return dict(self._call("GET", AMPHORA_PATH))

    def reset_amphora(self) -> dict[str, Any]:
        return dict(self._call("DELETE", AMPHORA_PATH) or {})

    def clear_fence(self) -> dict[str, Any]:
        return dict(self._call("DELETE", FENCE_PATH) or {})

    def update_speakers(self, speakers: list[BgpSpeakerConfig]) -> dict[str, Any]:
        """New speakers and peer profiles; ``changed`` says whether the speaker restarted."""
        body = SpeakersUpdate(speakers=speakers).model_dump(mode="json", context={"secrets": True})
        return dict(self._call("PUT", BGP_PATH, json=body))

    def set_bfd_peers(self, peers: BfdPeers) -> dict[str, Any]:
        """Dedicated mode: answer these distributors' BFD on the front end (none: stop)."""
        return dict(self._call("PUT", BFD_PATH, json=peers.model_dump(mode="json")))

    def bfd_status(self) -> dict[str, Any]:
        return dict(self._call("GET", BFD_PATH))

    def plug_frontend(self, plug: FrontendPlug) -> dict[str, Any]:
        return dict(self._call("PUT", FRONTEND_PATH, json=plug.model_dump(mode="json")) or {})
