"""The agent on an enrolled amphora host (``l3dist-agent run``).

A host starts idle: it answers the agent API with the certificate it got at enrollment and
holds no amphora. The hosts compute driver assigns it one (``PUT /1.0/amphora``): the agent
builds that amphora's configuration from its own (management interface, front-end interface,
namespace names, paths) and the controller's (amphora id, BGP speakers and peers, heartbeats,
anycast prefixes), keeps it (a restarted agent resumes the same amphora), makes the
amphora-haproxy namespace and starts the amphora's services: from then on every amphora call
works as on an amphora booted from a config drive. ``PUT /1.0/plug/frontend`` makes the front
end the network driver reserved. ``DELETE /1.0/amphora`` resets the host: the services stop
(the speaker's sessions close, so every route is withdrawn), the namespace goes with HAProxy's
sockets, the VIPs, the front end and the flow-rescue tables in it, the state is cleared; the
answer says what is left (nothing, or the reset failed).

Invariant: at most one amphora per host; another assignment while one is held is refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from l3dist import __version__
from l3dist.amphora_agent import frontend
from l3dist.amphora_agent.service import AgentError, AgentService
from l3dist.common.files import write_atomic
from l3dist.contracts import agent_config
from l3dist.contracts.agent_api import AmphoraAssignment, FrontendPlug, SpeakersUpdate
from l3dist.contracts.agent_config import AgentConfig, InterfaceConfig
from l3dist.contracts.host_config import HostAgentConfig

log = logging.getLogger(__name__)
FRONTEND_IFNAME = "fe0"
AMPHORA_CONFIG = "agent.json"  # in <state_dir>/amphora: the amphora's own configuration


class NotEnrolled(RuntimeError):
    pass


class HostAgent:
    """The agent API's provider on a host: the amphora's service once assigned."""

    def __init__(self, config: HostAgentConfig) -> None:
        self.config = config
        try:
            identity = json.loads(config.identity_path.read_text())
        except FileNotFoundError:
            raise NotEnrolled(
                f"this host is not enrolled ({config.identity_path} is missing): run "
                "`l3dist-agent enroll --token TOKEN` first"
            ) from None
        self.host_id: str = identity["host_id"]
        self.assignment_path = config.state_dir / "assignment.json"
        self.lock = threading.RLock()
        self.assignment: AmphoraAssignment | None = None
        self.service: AgentService | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Resume the amphora this host held before a restart, if any."""
        with self.lock:
            try:
                saved = AmphoraAssignment.model_validate_json(self.assignment_path.read_text())
            except FileNotFoundError:
                log.info("amphora host %s started, idle", self.host_id)
                return
            try:
                self._start_amphora(saved)
            except Exception:
                self.assignment = None  # not running: the controller's assign tries again
                raise

    def stop(self) -> None:
        with self.lock:
            if self.service is not None:
                self.service.stop()
                self.service = None

    # -- the provider's calls --------------------------------------------------------------

    def current(self) -> AgentService:
        service = self.service
        if service is None:
            raise AgentError(409, f"amphora host {self.host_id} holds no amphora")
        return service

    def info(self) -> dict[str, Any]:
        if self.service is not None:
            return {**self.service.info(), "host_id": self.host_id, "mode": "host"}
        return {
            "hostname": socket.gethostname(),
            "host_id": self.host_id,
            "mode": "host",
            "amphora_id": None,
            "api_version": "1.0",
            "l3dist_version": __version__,
        }

    def state(self) -> dict[str, Any]:
        """What the controller checks after an assignment and after a reset."""
        ns = self.config.haproxy_namespace
        return {
            "host_id": self.host_id,
            "amphora_id": self.assignment.amphora_id if self.assignment else None,
            "running": self.service is not None,
            "namespace": frontend.namespace_exists(ns),
            "frontend": (
                frontend.namespace_exists(ns) and frontend.link_mac(ns, FRONTEND_IFNAME) is not None
            )
            or frontend.link_mac(None, FRONTEND_IFNAME) is not None,  # a distributor's
            "state": self.assignment_path.exists(),
            "fenced": self.service.fenced if self.service else None,
        }

    def assign(self, assignment: AmphoraAssignment) -> dict[str, Any]:
        with self.lock:
            if self.assignment is not None:
                if self.assignment.amphora_id != assignment.amphora_id:
                    raise AgentError(
                        409,
                        f"amphora host {self.host_id} holds amphora "
                        f"{self.assignment.amphora_id}: reset it first",
                        "amphora_id",
                    )
                return self.state()  # a resumed flow repeats its call
            self._keep(assignment)
            try:
                self._start_amphora(assignment)
            except Exception:
                self._reset()
                raise
            return self.state()

    def _keep(self, assignment: AmphoraAssignment) -> None:
        """On disk (fsync'd: it must survive the machine), passwords included (0600)."""
        write_atomic(self.assignment_path, assignment.model_dump_json(context={"secrets": True}),
                     durable=True)  # fmt: skip

    def _start_amphora(self, assignment: AmphoraAssignment) -> None:
        self.assignment = assignment  # first: it says where the front end goes
        frontend.ensure_namespace(self.config.haproxy_namespace)
        self._replug_frontend()
        config = self._amphora_config(assignment)
        # What the amphora runs with, for the operator to read (0600: it holds BGP passwords).
        agent_config.dump(config, self.amphora_config_path)
        service = AgentService(config)
        # A fence outlives a restart of the agent: only the controller clears it.
        with contextlib.suppress(FileNotFoundError):
            service.fenced = self.fence_path.read_text() or "fenced before a restart"
        service.on_fence = self._keep_fence
        service.start()
        self.service = service
        log.info("amphora host %s is amphora %s", self.host_id, assignment.amphora_id)

    def _amphora_config(self, assignment: AmphoraAssignment) -> AgentConfig:
        host = self.config
        return AgentConfig.model_validate(
            {
                "amphora_id": assignment.amphora_id,
                "service_type": assignment.service_type,
                "management": {
                    "name": host.management.interface,
                    "addresses": [str(a) for a in host.management.addresses],
                },
                # Plugged later (PUT /1.0/plug/frontend), kept for a restart: the agent
                # then reads the port's addresses from here, not from the kernel each time.
                "frontend": self._frontend_config(self._saved_frontend()),
                "haproxy_namespace": host.haproxy_namespace,
                "bind_port": host.bind_port,
                "state_dir": str(self.amphora_dir),
                "bgp": assignment.bgp.model_dump(mode="json", context={"secrets": True}),
                "tls": {
                    "client_ca": str(host.ca_path),
                    "server_pem": str(host.cert_path),
                    "server_key": str(host.key_path),
                },
                "heartbeat": assignment.heartbeat.model_dump(mode="json", context={"secrets": True})
                if assignment.heartbeat
                else None,
                "listener_check": assignment.listener_check.model_dump(mode="json"),
                "anycast_prefixes": [str(p) for p in assignment.anycast_prefixes],
                "fence_after": assignment.fence_after,
                "host_id": self.host_id,
            }
        )

    @property
    def fence_path(self) -> Path:
        return self.config.state_dir / "fenced"

    def _keep_fence(self, reason: str | None) -> None:
        if reason is None:
            self.fence_path.unlink(missing_ok=True)
        else:
            write_atomic(self.fence_path, reason, durable=True)

    @property
    def amphora_dir(self) -> Path:
        return self.config.state_dir / "amphora"

    @property
    def amphora_config_path(self) -> Path:
        return self.amphora_dir / AMPHORA_CONFIG

    @property
    def frontend_path(self) -> Path:
        return self.config.state_dir / "frontend.json"

    def _saved_frontend(self) -> FrontendPlug | None:
        """The front end as it was last plugged (kept for a restart), if it was."""
        try:
            return FrontendPlug.model_validate_json(self.frontend_path.read_text())
        except FileNotFoundError:
            return None

    @staticmethod
    def _frontend_config(port: FrontendPlug | None) -> dict[str, Any]:
        """The amphora's front end as plugged (its addresses and gateways), or only its name
        before it is."""
        if port is None:
            return {"name": FRONTEND_IFNAME}
        return {
            "name": FRONTEND_IFNAME,
            "addresses": [str(a) for a in port.addresses],
            "gateways": [str(g) for g in port.gateways],
        }

    @property
    def _frontend_namespace(self) -> str | None:
        """Where the front end goes: the amphora-haproxy namespace, or for a dedicated
        distributor the host's own (its speaker watches next hops there, frontend.py)."""
        if self.assignment is not None and self.assignment.service_type == "distributor":
            return None
        return self.config.haproxy_namespace

    def _replug_frontend(self) -> None:
        """A restart resumes the front end as it was plugged (after a reboot the namespace is
        new and empty): made again from ``frontend.json``, a no-op when it is there. Not for a
        fenced amphora: its front end stays down (or absent) until the controller decides."""
        port = self._saved_frontend()
        if port is None or self.fence_path.exists():
            return
        try:
            frontend.plug(self._frontend_namespace, self.config.frontend.parent_interface,
                          FRONTEND_IFNAME, port)  # fmt: skip
        except frontend.FrontendError as exc:
            log.error("amphora host %s: the front end could not be made again: %s",
                      self.host_id, exc)  # fmt: skip

    def plug_frontend(self, port: FrontendPlug) -> dict[str, Any]:
        with self.lock:
            service = self.current()
            try:
                made = frontend.plug(
                    self._frontend_namespace,
                    self.config.frontend.parent_interface,
                    FRONTEND_IFNAME,
                    port,
                )
            except frontend.FrontendError as exc:
                raise AgentError(409, str(exc), "mac_address") from exc
            write_atomic(self.frontend_path, port.model_dump_json(), durable=True)
            service.use_frontend(InterfaceConfig.model_validate(self._frontend_config(port)))
            agent_config.dump(service.config, self.amphora_config_path)
            service.announce_frontend()  # the gateways learn our MAC before any route
            return {"plugged": made, **self.state()}

    def update_speakers(self, update: SpeakersUpdate) -> dict[str, Any]:
        """The distributor's speakers changed: kept in the assignment (a restarted agent runs
        the new ones), then the speaker restarted with them."""
        with self.lock:
            service, assignment = self.current(), self.assignment
            assert assignment is not None
            bgp = assignment.bgp.model_copy(update={"speakers": update.speakers})
            if bgp == assignment.bgp:
                return {"changed": False, **service.bgp_status()}
            changed = assignment.model_copy(update={"bgp": bgp})
            self._keep(changed)
            try:
                service.replace_speakers(bgp)
            except Exception:
                self._keep(assignment)
                raise
            self.assignment = changed
            agent_config.dump(service.config, self.amphora_config_path)
            return {"changed": True, **service.bgp_status()}

    def reset(self) -> dict[str, Any]:
        with self.lock:
            self._reset()
            left = self.state()
            if left["running"] or left["namespace"] or left["state"]:
                raise AgentError(500, f"amphora host {self.host_id} is not clean: {left}")
            return left

    def _reset(self) -> None:
        if self.service is not None:
            try:
                self.service.stop()  # the speaker's sessions close: every route withdrawn
            finally:
                self.service = None
        if self._frontend_namespace is None:
            frontend.unplug(None, FRONTEND_IFNAME)
        self.assignment = None
        frontend.delete_namespace(self.config.haproxy_namespace)
        shutil.rmtree(self.amphora_dir, ignore_errors=True)
        self.fence_path.unlink(missing_ok=True)
        self.frontend_path.unlink(missing_ok=True)
        self.assignment_path.unlink(missing_ok=True)
        log.info("amphora host %s reset, idle", self.host_id)


class ConfigDriveAgent:
    """The provider of an amphora booted from a config drive: its one service, always."""

    def __init__(self, service: AgentService) -> None:
        self.service = service

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()

    def current(self) -> AgentService:
        return self.service

    def info(self) -> dict[str, Any]:
        return self.service.info()

    def state(self) -> dict[str, Any]:
        return {"amphora_id": self.service.config.amphora_id, "running": True, "mode": "drive"}

    def assign(self, assignment: AmphoraAssignment) -> dict[str, Any]:
        raise AgentError(409, "this amphora runs from its config drive; it takes no assignment")

    def reset(self) -> dict[str, Any]:
        raise AgentError(409, "this amphora runs from its config drive; delete it instead")

    def update_speakers(self, update: SpeakersUpdate) -> dict[str, Any]:
        raise AgentError(409, "this amphora runs from its config drive; rebuild it with the "
                         "new speakers")  # fmt: skip

    def plug_frontend(self, port: FrontendPlug) -> dict[str, Any]:
        """Its front end was plugged when it was made (a config drive's amphora): present is
        fine."""
        ns, ifname = self.service.config.haproxy_namespace, self.service.config.frontend.name
        if frontend.link_mac(ns, ifname) is None:
            raise AgentError(409, f"no {ifname} in {ns}: this amphora's ports come from outside")
        return {"plugged": False, **self.state()}
