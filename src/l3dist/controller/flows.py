"""The controller's flows, built from a job's plan.

A plan is computed once, when a worker first takes the job (which amphorae to add, register,
remove...), and saved with the job; a resumed flow is built from the same plan, so taskflow finds
the same atoms and continues where the dead worker stopped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from taskflow.flow import Flow
from taskflow.patterns import linear_flow, unordered_flow

from l3dist.common import constants as c
from l3dist.controller import distributor_amphorae as da
from l3dist.controller import distributor_membership as membership
from l3dist.controller import floating_ip_tasks as fip
from l3dist.controller import tasks as t
from l3dist.controller import vip_route_tasks as vr
from l3dist.controller.services import Services
from l3dist.db import jobs
from l3dist.db.models import AmphoraRegistration, Listener, LoadBalancer
from l3dist.db.queries import live_amphora_ids


def plan(
    services: Services, flow: str, target_id: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The job's arguments completed with what the flow's shape depends on."""
    if "plan" in arguments:
        return arguments
    with services.db.session(writer=True) as session:
        lb = session.get(LoadBalancer, target_id)
        if lb is None:
            return {**arguments, "plan": {}}
        amphorae = live_amphora_ids(session, lb.id)
        registered = set(
            session.scalars(
                select(AmphoraRegistration.amphora_id).where(
                    AmphoraRegistration.load_balancer_id == lb.id
                )
            )
        )
        serving = _has_live_listener(session, lb.id) and lb.enabled
        result: dict[str, Any] = {"amphorae": amphorae, "serving": serving}
        if flow == jobs.CREATE_LOAD_BALANCER:
            result["count"] = lb.amphora_count
        elif flow == jobs.APPLY_LOAD_BALANCER:
            result["register"] = [a for a in amphorae if a not in registered] if serving else []
            result["unregister"] = [a for a in amphorae if a in registered] if not serving else []
        elif flow == jobs.SCALE_LOAD_BALANCER:
            wanted = int(arguments["amphora_count"])
            if "remove" in arguments:  # the drain action names the amphora that goes
                result["remove"] = [a for a in arguments["remove"] if a in amphorae]
            else:  # scale-in removes the newest amphorae first
                result["remove"] = amphorae[wanted:] if wanted < len(amphorae) else []
            result["add"] = max(0, wanted - (len(amphorae) - len(result["remove"])))
            result["drain"] = True  # planned: established connections finish first
        elif flow == jobs.FAILOVER_AMPHORA:
            result["old"] = [arguments["amphora_id"]]
            # Planned (the API) drains the old amphora; the health manager's is already dead.
            result["drain"] = bool(arguments.get("drain", False))
        elif flow == jobs.DELETE_LOAD_BALANCER:
            result["unregister"] = [a for a in amphorae if a in registered]
        elif flow == jobs.UPDATE_FLOATING_IPS:
            result["registered"] = [a for a in amphorae if a in registered]
        return {**arguments, "plan": result}


def _has_live_listener(session: Any, loadbalancer_id: str) -> bool:
    return any(
        listener.enabled and listener.provisioning_status not in (c.PENDING_DELETE, c.DELETED)
        for listener in session.scalars(
            select(Listener).where(Listener.load_balancer_id == loadbalancer_id)
        )
    )


def build(services: Services, flow: str, target_id: str, arguments: dict[str, Any]) -> Flow:
    p = arguments["plan"]
    if flow == jobs.CREATE_LOAD_BALANCER:
        return create_load_balancer(services, p["count"], p.get("serving", False))
    if flow == jobs.APPLY_LOAD_BALANCER:
        return apply_load_balancer(services, p["register"], p["unregister"])
    if flow == jobs.DELETE_LOAD_BALANCER:
        return delete_load_balancer(services, p["amphorae"], p["unregister"])
    if flow == jobs.SCALE_LOAD_BALANCER:
        if not p["amphorae"] and p["add"]:
            # Nothing to scale from: its create failed (and reverted its VIP). Built as a
            # create, so the repair gets the VIP and the distributor's routes back too.
            return create_load_balancer(services, p["add"], p["serving"])
        return scale_load_balancer(
            services, p["add"], p["remove"], p["serving"], p.get("drain", False)
        )
    if flow == jobs.FAILOVER_AMPHORA:
        return failover_amphora(services, p["old"], p["serving"], p.get("drain", False))
    if flow == jobs.UPDATE_FLOATING_IPS:
        return update_floating_ips(
            services,
            list(arguments.get("add", [])),
            list(arguments.get("remove", [])),
            p.get("registered", []),
        )
    if flow == jobs.CLEAR_FENCE:
        return linear_flow.Flow("clear-fence").add(
            t.Provide("clear-fence-amphora", "amphora_id", arguments["amphora_id"]),
            t.ClearFence(services, "clear-fence"),
        )
    if flow in (jobs.CREATE_DISTRIBUTOR, jobs.UPDATE_DISTRIBUTOR):
        d = services.distributor
        steps = linear_flow.Flow(flow).add(
            t.Provide("distributor-id", "distributor_id", target_id),
            t.MarkDistributorErrorOnRevert(services, "distributor-error-on-revert"),
        )
        if flow == jobs.CREATE_DISTRIBUTOR:
            # The fabric checked, then (dedicated mode) its amphorae built with the sessions up.
            steps.add(
                d.get_create_distributor_subflow(),
                da.BuildDistributorAmphorae(services, "distributor-amphorae"),
            )
        else:  # then (dedicated mode) as many distributor amphorae as it says
            steps.add(
                d.get_update_distributor_subflow(),
                membership.ScaleDistributorAmphorae(services, "scale-distributor-amphorae"),
            )
        return steps.add(t.MarkDistributorActive(services, "distributor-active"))
    if flow == jobs.DELETE_DISTRIBUTOR:
        return linear_flow.Flow(flow).add(
            t.Provide("distributor-id", "distributor_id", target_id),
            t.MarkDistributorErrorOnRevert(services, "distributor-error-on-revert"),
            services.distributor.get_delete_distributor_subflow(),
            da.DeleteDistributorAmphorae(services, "delete-distributor-amphorae"),
            da.DeleteDistributorRow(services, "delete-distributor-row"),
        )
    if flow == jobs.FAILOVER_DISTRIBUTOR_AMPHORA:
        return linear_flow.Flow(flow).add(
            t.Provide("distributor-id", "distributor_id", target_id),
            t.Provide("failed-amphora-id", "amphora_id", arguments["amphora_id"]),
            t.MarkDistributorErrorOnRevert(services, "distributor-error-on-revert"),
            *membership.failover_tasks(services),
            t.MarkDistributorActive(services, "distributor-active"),
        )
    if flow in (jobs.CREATE_VIP_ROUTE, jobs.DELETE_VIP_ROUTE):
        return vip_route(services, flow, target_id)
    if flow == jobs.RESET_HOST:
        return linear_flow.Flow("reset-host").add(
            t.Provide("reset-host-id", "host_id", target_id), t.ResetHost(services, "reset-host")
        )
    raise ValueError(f"unknown flow {flow}")


def store(
    target_id: str, job_id: str, flow: str = "", arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The flow's inputs: most jobs target a load balancer (so its jobs run one at a time);
    one that targets another object (a distributor, a host) provides its own id under its
    own name and ignores ``loadbalancer_id``. The floating IP job's addresses are inputs too
    (``add``, ``remove``, and ``addresses``: those withdrawn), not atoms of their own: each
    atom is persisted, and a dissociation's withdrawal should not wait behind bookkeeping."""
    inputs: dict[str, Any] = {"loadbalancer_id": target_id, "job_id": job_id}
    if flow == jobs.UPDATE_FLOATING_IPS and arguments is not None:
        remove = list(arguments.get("remove", []))
        inputs.update(add=list(arguments.get("add", [])), remove=remove, addresses=remove)
    return inputs


# -- building blocks --------------------------------------------------------------------------


def _new_amphorae(services: Services, count: int, prefix: str) -> Flow:
    """count amphorae built in parallel; provides amphora_ids (the new ones)."""
    parallel = unordered_flow.Flow(f"{prefix}-build")
    names = []
    for i in range(count):
        name = f"{prefix}-amphora-{i:03d}"
        names.append(name)
        parallel.add(
            linear_flow.Flow(f"{name}-flow").add(
                t.CreateAmphoraInDB(services, f"{name}-db", provides=name),
                t.ComputeCreate(services, f"{name}-compute", rebind={"amphora_id": name}),
            )
        )
    return linear_flow.Flow(f"{prefix}-new").add(
        parallel,
        t.CollectAmphorae(services, f"{prefix}-collect", requires=names, provides="amphora_ids"),
    )


def _plug_and_configure(services: Services, prefix: str) -> Flow:
    """Front-end port and VIP (network driver), the agent told, HAProxy configured."""
    return linear_flow.Flow(f"{prefix}-plug").add(
        t.PlugVip(services, f"{prefix}-plug-vip"),
        t.AgentPlugFrontend(services, f"{prefix}-agent-plug-frontend"),
        t.AgentPlugVip(services, f"{prefix}-agent-plug-vip"),
        t.PushHaproxyConfig(services, f"{prefix}-haproxy"),
    )


def _with_amphorae(name: str, amphora_ids: list[str], subflow: Flow) -> Flow:
    """subflow run on the given amphorae (amphora_ids scoped to it)."""
    ids = t.Provide(f"{name}-ids", "amphora_ids", amphora_ids)
    return linear_flow.Flow(name).add(ids, subflow)


# -- flows ------------------------------------------------------------------------------------


def vip_route(services: Services, flow: str, route_id: str) -> Flow:
    """Register VIP (create) or Unregister VIP (delete) on every amphora that runs the
    distributor's speakers, between the task that makes the route ERROR on revert and the one
    that settles it (ACTIVE, or the row gone with its address reservation)."""
    d = services.distributor
    built = linear_flow.Flow(flow).add(
        t.Provide("vip-route-id", "route_id", route_id),
        vr.MarkVipRouteErrorOnRevert(services, "vip-route-error-on-revert"),
    )
    if flow == jobs.CREATE_VIP_ROUTE:
        return built.add(
            d.get_register_vip_route_subflow(), vr.MarkVipRouteActive(services, "vip-route-active")
        )
    return built.add(
        d.get_unregister_vip_route_subflow(), vr.DeleteVipRouteRow(services, "vip-route-delete")
    )


def create_load_balancer(services: Services, count: int, serving: bool = False) -> Flow:
    """VIP, N amphorae in parallel, front end and VIP plugged, HAProxy configured, the
    distributor's VIP routes announced by those that run its speakers. Registration (the
    load balancer's VIP announced) waits for a listener, the spec's listener start: a fully
    populated create (serving: it came with an enabled listener) registers its amphorae in
    this same flow, once HAProxy runs the whole configuration."""
    d = services.distributor
    flow = linear_flow.Flow("create-load-balancer").add(
        t.MarkLoadBalancerErrorOnRevert(services),
        t.AllocateVip(services),
        d.get_add_vip_subflow("-create"),
        _new_amphorae(services, count, "create"),
        _plug_and_configure(services, "create"),
        d.get_announce_vip_routes_subflow("-create"),
        t.RescueMembership(services, "create-rescue", joining=True),
    )
    if serving:
        flow.add(d.get_register_amphorae_subflow("-create"))
    return flow.add(
        t.UpdateVip(services, "create-update-vip"), t.MarkLoadBalancerActive(services, whole=True)
    )


def apply_load_balancer(services: Services, register: list[str], unregister: list[str]) -> Flow:
    """A listener, pool, member or monitor changed: withdraw where nothing should run any more,
    push the configuration everywhere (hitless reload), announce where a listener now runs."""
    d = services.distributor
    flow = linear_flow.Flow("apply-load-balancer").add(t.MarkLoadBalancerErrorOnRevert(services))
    if unregister:
        flow.add(_with_amphorae("stop", unregister, d.get_unregister_amphorae_subflow("-stop")))
    flow.add(t.AllAmphorae(services, "all-amphorae"), t.PushHaproxyConfig(services, "haproxy"))
    if register:
        flow.add(_with_amphorae("start", register, d.get_register_amphorae_subflow("-start")))
    return flow.add(
        t.UpdateVip(services, "update-vip"), t.MarkLoadBalancerActive(services, whole=True)
    )


def delete_load_balancer(services: Services, amphorae: list[str], unregister: list[str]) -> Flow:
    """Withdraw first (no traffic is sent to an amphora being torn down), then tear down."""
    d = services.distributor
    return linear_flow.Flow("delete-load-balancer").add(
        t.MarkLoadBalancerErrorOnRevert(services),
        _with_amphorae("withdraw", unregister, d.get_unregister_amphorae_subflow("-delete")),
        _with_amphorae(
            "teardown",
            amphorae,
            linear_flow.Flow("teardown-steps").add(
                t.UnplugVip(services, "unplug-vip"), t.DeleteAmphorae(services, "delete-amphorae")
            ),
        ),
        d.get_remove_vip_subflow("-delete"),
        t.DeallocateVip(services),
        t.DeleteLoadBalancerRows(services),
    )


def scale_load_balancer(
    services: Services,
    add: int,
    remove: list[str],
    serving: bool,
    drain: bool,
    failover: bool = False,
) -> Flow:
    """N+1: new amphorae are built, configured and announced (the distributor's VIP routes
    too) before any old one goes; removed amphorae are withdrawn before they are deleted, and
    with drain their established connections finish first (the peers' flow rescue carries them
    to their owner meanwhile)."""
    d = services.distributor
    flow = linear_flow.Flow("scale-load-balancer").add(t.MarkLoadBalancerErrorOnRevert(services))
    if failover and remove:
        flow.add(_with_amphorae("prepare", remove, t.PrepareFailover(services, "prepare-failover")))
    if add:
        grow = linear_flow.Flow("grow").add(
            _new_amphorae(services, add, "scale"),
            _plug_and_configure(services, "scale"),
            d.get_announce_vip_routes_subflow("-scale"),
            # every peer has the new amphorae in its rules before they are announced
            t.RescueMembership(services, "grow-rescue", joining=True),
        )
        if serving:
            grow.add(d.get_register_amphorae_subflow("-scale"))
        flow.add(grow)
    if remove:
        steps = linear_flow.Flow("shrink-steps")
        if drain:
            steps.add(d.get_drain_amphorae_subflow("-scale"))
        flow.add(
            _with_amphorae(
                "shrink",
                remove,
                steps.add(
                    d.get_unregister_amphorae_subflow("-scale"),
                    t.RescueMembership(services, "shrink-rescue", joining=False),
                    t.UnplugVip(services, "shrink-unplug-vip"),
                    t.DeleteAmphorae(services, "shrink-delete"),
                ),
            )
        )
    return flow.add(t.UpdateVip(services, "scale-update-vip"), t.MarkLoadBalancerActive(services))


def failover_amphora(services: Services, old: list[str], serving: bool, drain: bool) -> Flow:
    """The network driver prepares the old amphora's failover; the replacement is built and
    registered first, then (drained, when planned) the old one is unregistered and deleted."""
    return scale_load_balancer(services, len(old), old, serving, drain, failover=True)


def update_floating_ips(
    services: Services,
    add: list[str],
    remove: list[str],
    registered: list[str],
) -> Flow:
    """Floating IPs bound to (add) or unbound from (remove) the load balancer's virtual-ip
    (the job's inputs: ``store``). Unbound ones are withdrawn first, on every amphora, and
    leave their loopbacks; HAProxy then binds exactly the load balancer's addresses; the
    registered amphorae are registered again, which announces every address of the load
    balancer, the new ones included. Nothing here names an amphora interface: the
    registration steps keep the virtual-ip's interfaces."""
    d = services.distributor
    flow = linear_flow.Flow("update-floating-ips").add(
        fip.MarkFloatingIpsErrorOnRevert(services, "floating-ips-error-on-revert"),
        t.AllAmphorae(services, "floating-ips-amphorae"),
    )
    if remove:
        flow.add(d.get_unregister_addresses_subflow("-floating-ips"))
    flow.add(t.PushHaproxyConfig(services, "floating-ips-haproxy"))
    if add and registered:
        flow.add(
            _with_amphorae(
                "floating-ips-announce", registered, d.get_register_amphorae_subflow("-fip")
            )
        )
    return flow.add(fip.MarkFloatingIps(services, "floating-ips-mark"))
