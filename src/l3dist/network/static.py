"""The ``static`` network driver: the operator's own networks, defined through the admin API.

Networks and subnets (each with its role, ``models.SUBNET_ROLES``) are rows in the database;
addresses are handed out by the database IPAM (``ipam``: one row per address, so two workers
never get the same one); a port is an address reservation with Neutron's fields (device_owner,
device_id, MAC). Nothing here touches a kernel: what has to change inside an amphora host (its
front-end address, the VIP on loopback) is done by the agent on that host, told by the
controller through the agent API.

Subclasses that also wire ports into namespaces (the lab's simulated datacenter) override the
hooks ``namespace_of``, ``_wire_port``, ``_unwire_port``, ``_put_vip`` and ``_remove_vip``;
every other method, and so every database invariant, is this class's. Every method is safe in
parallel, and a method that fails removes what it made before raising.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from l3dist.common import constants as c
from l3dist.db.models import NetIpAllocation, NetNetwork, NetPort, NetSubnet
from l3dist.db.session import Database
from l3dist.network import ipam
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.exceptions import (
    AllocateVIPException,
    AmphoraNotFound,
    DeallocateVIPException,
    NetworkException,
    NetworkNotFound,
    PluggedVIPNotFound,
    PlugNetworkException,
    PlugVIPException,
    PortNotFound,
    SubnetNotFound,
    UnplugNetworkException,
    VIPConfigurationNotFound,
)
from l3dist.network.models import (
    ROLE_MEMBER,
    SUBNET_ROLES,
    FixedIP,
    Interface,
    Network,
    Port,
    Subnet,
    VipInfo,
)

OWNER_AMPHORA = "compute:l3dist-amphora"
OWNER_VIP = "Octavia"
OWNER_FRONTEND = "Octavia:frontend"
OWNER_MANAGEMENT = "compute:l3dist-amphora-mgmt"
OWNER_CONTROLLER = "network:l3dist-controller"
PORT_BUILD = "BUILD"  # recorded, not yet wired into its namespace
PORT_ACTIVE = "ACTIVE"
PORT_DOWN = "DOWN"  # a reservation only (nothing to wire)
FRONTEND_IFNAME = "fe0"
# Addresses below this host index of each subnet are left to the operator (gateways, routers).
FIRST_HOST_INDEX = 100


class NetworkInUse(NetworkException):
    """A network or subnet that still has ports cannot be deleted."""


class DuplicateName(NetworkException):
    """Network and subnet names are unique (clients resolve them by name)."""


@dataclass(frozen=True)
class Wiring:
    """What a subclass needs to wire a port: its network's bridge and MTU, and per subnet the
    prefix length and gateway."""

    bridge: str | None
    mtu: int
    prefixes: dict[str, tuple[int, str | None]]


def mac_for(network_id: str, address: str) -> str:
    """A locally administered unicast MAC derived from the port's network and first address.

    An address reused by a new port keeps its MAC, so neighbour caches on the router never
    point at a deleted port (lab notes: stale neighbours after reuse)."""
    raw = hashlib.sha256(f"{network_id}/{address}".encode()).digest()
    return "02:1e:" + ":".join(f"{b:02x}" for b in raw[:4])


class StaticNetworkDriver(AbstractNetworkDriver):
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- hooks for drivers that wire ports (none here) ----------------------------------------

    def namespace_of(self, compute_id: str) -> str | None:
        """The namespace an amphora's ports go into; None: ports are reservations only."""
        return None

    def _wire_port(
        self, port: Port, wiring: Wiring, namespace: str, ifname: str, default_routes: bool
    ) -> None:
        """Make the port real in the namespace (raise to refuse)."""

    def _unwire_port(self, port_id: str) -> None:
        """Undo _wire_port; absent is fine."""

    def _put_vip(self, namespace: str, address: str, active_active: bool, prefixlen: int) -> None:
        """Put the VIP on the amphora (loopback for ACTIVE_ACTIVE, the front end otherwise)."""

    def _remove_vip(self, namespace: str, address: str) -> bool:
        """Remove the VIP from the amphora; True when it was there."""
        return False

    # -- networks and subnets (the admin API) --------------------------------------------------

    def create_network(
        self,
        name: str,
        mtu: int = 1500,
        network_id: str | None = None,
        router_external: bool = False,
        project_id: str | None = None,
        bridge: str | None = None,
    ) -> Network:
        with self.db.session(writer=True) as s:
            if s.scalar(select(NetNetwork.id).where(NetNetwork.name == name)) is not None:
                raise DuplicateName(f"a network named {name!r} exists")
            row = NetNetwork(
                id=network_id or str(uuid.uuid4()),
                name=name,
                bridge=bridge,
                mtu=mtu,
                router_external=router_external,
                project_id=project_id,
            )
            s.add(row)
            network_id = row.id
        return self.get_network(network_id)

    def create_subnet(
        self,
        network_id: str,
        cidr: str,
        name: str,
        role: str = ROLE_MEMBER,
        gateway_ip: str | None = None,
        first_host_index: int = FIRST_HOST_INDEX,
        subnet_id: str | None = None,
    ) -> Subnet:
        """A subnet of the network; its CIDR may not overlap any other subnet's (one address
        belongs to one subnet, so a VIP's subnet and role are never ambiguous)."""
        if role not in SUBNET_ROLES:
            raise NetworkException(f"role {role!r} is not one of {', '.join(SUBNET_ROLES)}")
        network_cidr = ipaddress.ip_network(cidr)
        if gateway_ip is not None and ipaddress.ip_address(gateway_ip) not in network_cidr:
            raise NetworkException(f"gateway_ip {gateway_ip} is not in {network_cidr}")
        with self.db.session(writer=True) as s:
            if s.get(NetNetwork, network_id) is None:
                raise NetworkNotFound(f"network {network_id} not found")
            if s.scalar(select(NetSubnet.id).where(NetSubnet.name == name)) is not None:
                raise DuplicateName(f"a subnet named {name!r} exists")
            for other in s.scalars(select(NetSubnet)):
                if ipaddress.ip_network(other.cidr).overlaps(network_cidr):
                    raise NetworkInUse(f"{network_cidr} overlaps subnet {other.id} ({other.cidr})")
            row = NetSubnet(
                id=subnet_id or str(uuid.uuid4()),
                network_id=network_id,
                name=name,
                cidr=str(network_cidr),
                ip_version=network_cidr.version,
                gateway_ip=gateway_ip,
                first_host_index=first_host_index,
                role=role,
            )
            s.add(row)
            subnet_id = row.id
        return self.get_subnet(subnet_id)

    def delete_subnet(self, subnet_id: str) -> None:
        with self.db.session(writer=True) as s:
            row = s.get(NetSubnet, subnet_id)
            if row is None:
                raise SubnetNotFound(f"subnet {subnet_id} not found")
            used = s.scalar(select(func.count()).where(NetIpAllocation.subnet_id == subnet_id))
            if used:
                raise NetworkInUse(f"subnet {subnet_id} has {used} address(es) in use")
            s.delete(row)

    def delete_network(self, network_id: str) -> None:
        with self.db.session(writer=True) as s:
            row = s.get(NetNetwork, network_id)
            if row is None:
                raise NetworkNotFound(f"network {network_id} not found")
            ports = s.scalar(select(func.count()).where(NetPort.network_id == network_id))
            if ports:
                raise NetworkInUse(f"network {network_id} has {ports} port(s)")
            s.delete(row)

    def register_network(
        self,
        name: str,
        bridge: str | None,
        subnets: list[dict[str, Any]],
        mtu: int = 1500,
        network_id: str | None = None,
        router_external: bool = False,
    ) -> Network:
        """Record a network and its subnets (idempotent by name), for configuration that
        defines networks in code (the lab)."""
        with self.db.session(writer=True) as s:
            row = s.scalar(select(NetNetwork).where(NetNetwork.name == name))
            if row is None:
                row = NetNetwork(
                    id=network_id or str(uuid.uuid4()),
                    name=name,
                    bridge=bridge,
                    mtu=mtu,
                    router_external=router_external,
                )
                s.add(row)
                s.flush()
            for spec in subnets:
                if s.scalar(select(NetSubnet).where(NetSubnet.name == spec["name"])) is None:
                    cidr = ipaddress.ip_network(spec["cidr"])
                    s.add(NetSubnet(network_id=row.id, ip_version=cidr.version, **spec))
            network_id = row.id
        return self.get_network(network_id)

    # -- lookups -------------------------------------------------------------------------------

    def get_network(self, network_id: str) -> Network:
        with self.db.session() as s:
            row = s.get(NetNetwork, network_id)
            if row is None:
                raise NetworkNotFound(f"network {network_id} not found")
            subnets = s.scalars(select(NetSubnet.id).where(NetSubnet.network_id == row.id)).all()
            return Network(
                id=row.id,
                name=row.name,
                subnets=list(subnets),
                tenant_id=row.project_id,
                admin_state_up=row.admin_state_up,
                router_external=row.router_external,
                mtu=row.mtu,
            )

    def get_subnet(self, subnet_id: str) -> Subnet:
        with self.db.session() as s:
            row = s.get(NetSubnet, subnet_id)
            if row is None:
                raise SubnetNotFound(f"subnet {subnet_id} not found")
            return _subnet(row)

    def subnets(self) -> list[Subnet]:
        with self.db.session() as s:
            return [_subnet(r) for r in s.scalars(select(NetSubnet).order_by(NetSubnet.name))]

    def get_port(self, port_id: str) -> Port:
        with self.db.session() as s:
            row = s.get(NetPort, port_id)
            if row is None:
                raise PortNotFound(f"port {port_id} not found")
            return _port(row)

    @property
    def networks(self) -> dict[str, Network]:
        with self.db.session() as s:
            ids = s.scalars(select(NetNetwork.id)).all()
        return {i: self.get_network(i) for i in ids}

    def ports_of(self, device_id: str, network_id: str | None = None) -> list[Port]:
        with self.db.session() as s:
            stmt = select(NetPort).where(NetPort.device_id == device_id)
            if network_id:
                stmt = stmt.where(NetPort.network_id == network_id)
            return [_port(r) for r in s.scalars(stmt.order_by(NetPort.created_at))]

    def address_in_use(self, address: str) -> bool:
        """Whether any port holds the address (on any subnet)."""
        normalized = str(ipaddress.ip_address(address))
        with self.db.session() as s:
            found = s.scalar(
                select(NetIpAllocation.port_id).where(NetIpAllocation.ip_address == normalized)
            )
        return found is not None

    def allocations(self) -> list[tuple[str, str]]:
        with self.db.session() as s:
            return [(a.subnet_id, a.ip_address) for a in s.scalars(select(NetIpAllocation))]

    # -- ports ---------------------------------------------------------------------------------

    def create_port(
        self,
        network_id: str,
        namespace: str | None,
        ifname: str | None,
        device_id: str,
        device_owner: str,
        fixed_ips: list[tuple[str, str | None]] | None = None,
        default_routes: bool = False,
    ) -> Port:
        """A port with addresses from IPAM (every subnet of the network unless fixed_ips says
        which, with an address or None for any); with a namespace, also wired into it."""
        port_id = str(uuid.uuid4())
        with self.db.session(writer=True) as s:
            network = s.get(NetNetwork, network_id)
            if network is None:
                raise NetworkNotFound(f"network {network_id} not found")
            subnets = s.scalars(select(NetSubnet).where(NetSubnet.network_id == network_id)).all()
            wanted = fixed_ips if fixed_ips is not None else [(sn.id, None) for sn in subnets]
            row = NetPort(
                id=port_id,
                network_id=network_id,
                device_id=device_id,
                device_owner=device_owner,
                namespace=namespace,
                ifname=ifname,
                # BUILD until wired: a port a crash left half-made is known and replaced.
                status=PORT_BUILD if namespace else PORT_DOWN,
            )
            s.add(row)
            s.flush()
            given = []
            for subnet_id, address in wanted:
                subnet = s.get(NetSubnet, subnet_id)
                if subnet is None or subnet.network_id != network_id:
                    raise SubnetNotFound(f"subnet {subnet_id} not found on network {network_id}")
                given.append(ipam.allocate(s, subnet, port_id, address))
            row.mac_address = mac_for(network_id, given[0] if given else port_id)
            wiring = Wiring(
                network.bridge,
                network.mtu,
                {sn.id: (ipaddress.ip_network(sn.cidr).prefixlen, sn.gateway_ip) for sn in subnets},
            )
            s.flush()
            s.refresh(row)
            port = _port(row)
        if namespace:
            try:
                self._wire_port(port, wiring, namespace, ifname or "eth0", default_routes)
            except Exception as exc:
                self.delete_port(port.id)
                raise PlugNetworkException(f"could not wire port {port.id}: {exc}") from exc
            with self.db.session(writer=True) as s:
                s.execute(update(NetPort).where(NetPort.id == port.id).values(status=PORT_ACTIVE))
            port.status = PORT_ACTIVE
        return port

    def delete_port(self, port_id: str) -> None:
        """Remove a port (its wiring, addresses, database rows); absent is fine."""
        self._unwire_port(port_id)
        with self.db.session(writer=True) as s:
            row = s.get(NetPort, port_id)
            if row is not None:
                s.delete(row)

    # -- the spec's interface ------------------------------------------------------------------

    def _check_amphora(self, compute_id: str) -> str | None:
        namespace = self.namespace_of(compute_id)
        if namespace is not None and not self._namespace_exists(namespace):
            raise AmphoraNotFound(f"amphora {compute_id} not found")
        return namespace

    def _namespace_exists(self, namespace: str) -> bool:
        return True

    def plug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> Interface:
        self.get_network(network_id)
        namespace = self._check_amphora(compute_id)
        for port in self.ports_of(compute_id, network_id):
            if ip_address is None or any(f.ip_address == ip_address for f in port.fixed_ips):
                return Interface(port.id, network_id, compute_id, port.fixed_ips)  # idempotent
        fixed: list[tuple[str, str | None]] | None = None
        if ip_address is not None:
            fixed = [(self._subnet_for(network_id, ip_address), ip_address)]
        count = len(self.ports_of(compute_id))
        try:
            port = self.create_port(
                network_id, namespace, f"eth{count + 1}", compute_id, OWNER_AMPHORA, fixed
            )
        except (ipam.AddressInUse, ipam.SubnetFull) as exc:
            raise PlugNetworkException(str(exc)) from exc
        return Interface(port.id, network_id, compute_id, port.fixed_ips)

    def _subnet_for(self, network_id: str, address: str) -> str:
        for subnet_id in self.get_network(network_id).subnets:
            if self.get_subnet(subnet_id).contains(address):
                return subnet_id
        raise PlugNetworkException(f"{address} is on no subnet of network {network_id}")

    def unplug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> None:
        self.get_network(network_id)
        self._check_amphora(compute_id)
        ports = [
            p
            for p in self.ports_of(compute_id, network_id)
            if ip_address is None or any(f.ip_address == ip_address for f in p.fixed_ips)
        ]
        if not ports:
            raise UnplugNetworkException(
                f"amphora {compute_id} has no port on network {network_id}"
                + (f" with {ip_address}" if ip_address else "")
            )
        for port in ports:
            self.delete_port(port.id)

    def get_plugged_networks(self, compute_id: str) -> list[Interface]:
        return [
            Interface(p.id, p.network_id, compute_id, p.fixed_ips)
            for p in self.ports_of(compute_id)
        ]

    def allocate_vip(self, loadbalancer: Any) -> VipInfo:
        """Reserve the VIP: the requested address (refused with AllocateVIPException when it is
        in use or not a host address of the subnet), or the lowest free one. Idempotent: the
        same load balancer gets its VIP back."""
        vip = loadbalancer.vip
        subnet = self.get_subnet(vip.subnet_id)
        existing = [
            p for p in self.ports_of(f"lb-{loadbalancer.id}") if p.device_owner == OWNER_VIP
        ]
        if existing:
            fixed = existing[0].fixed_ips[0]
            return VipInfo(
                loadbalancer.id,
                fixed.ip_address,
                fixed.subnet_id,
                subnet.network_id,
                existing[0].id,
            )
        try:
            port = self.create_port(
                subnet.network_id,
                None,
                None,
                f"lb-{loadbalancer.id}",
                OWNER_VIP,
                [(subnet.id, vip.ip_address)],
            )
        except NetworkException as exc:
            raise AllocateVIPException(f"cannot allocate the VIP: {exc}") from exc
        fixed = port.fixed_ips[0]
        return VipInfo(
            loadbalancer.id, fixed.ip_address, fixed.subnet_id, subnet.network_id, port.id
        )

    def deallocate_vip(self, vip: Any) -> None:
        try:
            port = self.get_port(vip.port_id)
        except PortNotFound:
            raise VIPConfigurationNotFound(f"VIP port {vip.port_id} not found") from None
        if port.device_owner != OWNER_VIP:
            raise DeallocateVIPException(f"port {port.id} is not a VIP port")
        self.delete_port(port.id)

    def plug_vip(self, loadbalancer: Any, vip: Any) -> list[Any]:
        """Give each amphora a front-end port (its address is the next hop the fabric routes
        the VIP to) and the VIP; the front-end details are set on each amphora object."""
        frontend_subnet = self.get_subnet(getattr(vip, "frontend_subnet_id", None) or vip.subnet_id)
        version = ipaddress.ip_address(vip.ip_address).version
        active_active = loadbalancer.topology == c.TOPOLOGY_ACTIVE_ACTIVE
        made: list[str] = []
        try:
            for amphora in loadbalancer.amphorae:
                namespace = self.namespace_of(amphora.id)
                if namespace is not None and not self._namespace_exists(namespace):
                    raise PortNotFound(f"amphora {amphora.id} has no namespace {namespace}")
                port = None
                for existing in self.ports_of(amphora.id, frontend_subnet.network_id):
                    if existing.device_owner != OWNER_FRONTEND:
                        continue
                    if existing.status != PORT_BUILD:
                        port = existing
                    else:  # half-made by a process that died: made again
                        self.delete_port(existing.id)
                if port is None:
                    # An address on every subnet of the front-end network (as a Neutron port
                    # gets), the chosen one first: the next hop is of the VIP's family, and
                    # members of the other family are reached through the front end too.
                    others = [
                        (subnet_id, None)
                        for subnet_id in self.get_network(frontend_subnet.network_id).subnets
                        if subnet_id != frontend_subnet.id
                    ]
                    port = self.create_port(
                        frontend_subnet.network_id,
                        namespace,
                        FRONTEND_IFNAME,
                        amphora.id,
                        OWNER_FRONTEND,
                        [(frontend_subnet.id, None), *others],
                        default_routes=True,
                    )
                    made.append(port.id)
                if namespace is not None:
                    prefixlen = (
                        (32 if version == 4 else 128)
                        if active_active
                        else ipaddress.ip_network(frontend_subnet.cidr).prefixlen
                    )
                    self._put_vip(namespace, vip.ip_address, active_active, prefixlen)
                amphora.frontend_ip = next(
                    ip.ip_address for ip in port.fixed_ips if ip.subnet_id == frontend_subnet.id
                )
                amphora.frontend_port_id = port.id
                amphora.frontend_subnet_id = frontend_subnet.id
                amphora.frontend_interface = FRONTEND_IFNAME
        except Exception as exc:
            for port_id in made:
                self.delete_port(port_id)
            if isinstance(exc, (PortNotFound, PlugVIPException)):
                raise
            raise PlugVIPException(f"cannot plug the VIP: {exc}") from exc
        return list(loadbalancer.amphorae)

    def unplug_vip(self, loadbalancer: Any, vip: Any) -> None:
        wanted = str(ipaddress.ip_address(vip.ip_address))
        found = False
        for amphora in loadbalancer.amphorae:
            namespace = self.namespace_of(amphora.id)
            if namespace is not None and self._namespace_exists(namespace):
                found = self._remove_vip(namespace, wanted) or found
            for port in self.ports_of(amphora.id):
                if port.device_owner == OWNER_FRONTEND:
                    found = True
                    self.delete_port(port.id)
        if not found:
            raise PluggedVIPNotFound(f"VIP {vip.ip_address} is not plugged")

    def update_vip(self, loadbalancer: Any) -> None:
        """The VIP's records follow the load balancer as it now is (no security groups here:
        the fabric's ACLs are the operator's). Its VIP port is ACTIVE while the load balancer
        is enabled and has amphorae, DOWN otherwise, with ``admin_state_up`` = enabled (what a
        floating IP on the VIP follows, as on a Neutron port); the front-end ports of its
        amphorae are ACTIVE (their agents plugged them; a failover's preparation had set a
        replaced one DOWN, and a failover that reverted gets it back)."""
        enabled = bool(getattr(loadbalancer, "enabled", True))
        amphora_ids = [a.id for a in loadbalancer.amphorae]
        with self.db.session(writer=True) as s:
            s.execute(
                update(NetPort)
                .where(NetPort.device_id == f"lb-{loadbalancer.id}",
                       NetPort.device_owner == OWNER_VIP)
                .values(admin_state_up=enabled,
                        status=PORT_ACTIVE if enabled and amphora_ids else PORT_DOWN)
            )  # fmt: skip
            if amphora_ids:
                s.execute(
                    update(NetPort)
                    .where(NetPort.device_id.in_(amphora_ids),
                           NetPort.device_owner == OWNER_FRONTEND, NetPort.status != PORT_BUILD)
                    .values(status=PORT_ACTIVE)
                )  # fmt: skip

    def failover_preparation(self, amphora: Any) -> None:
        """The amphora is being replaced: its front-end ports go DOWN (its next hop is being
        retired; the replacement gets a port of its own, and delete releases these).
        PortNotFound for an amphora with no port at all."""
        if not self.ports_of(amphora.id):
            raise PortNotFound(f"amphora {amphora.id} has no ports")
        with self.db.session(writer=True) as s:
            s.execute(
                update(NetPort)
                .where(NetPort.device_id == amphora.id, NetPort.device_owner == OWNER_FRONTEND)
                .values(status=PORT_DOWN)
            )

    def forget_all(self) -> int:
        """Drop every network, subnet, port and allocation; returns how many records there
        were (the lab, torn down)."""
        with self.db.session(writer=True) as s:
            count = 0
            for table in (NetIpAllocation, NetPort, NetSubnet, NetNetwork):
                result = s.execute(delete(table))
                count += int(getattr(result, "rowcount", 0) or 0)
            return count


def _subnet(row: NetSubnet) -> Subnet:
    return Subnet(
        id=row.id,
        name=row.name,
        network_id=row.network_id,
        cidr=row.cidr,
        ip_version=row.ip_version,
        gateway_ip=row.gateway_ip,
        role=row.role,
    )


def _port(row: NetPort) -> Port:
    return Port(
        id=row.id,
        network_id=row.network_id,
        name=row.name,
        device_id=row.device_id,
        device_owner=row.device_owner,
        mac_address=row.mac_address,
        status=row.status,
        tenant_id=row.project_id,
        admin_state_up=row.admin_state_up,
        fixed_ips=[FixedIP(a.subnet_id, a.ip_address) for a in row.fixed_ips],
    )


def from_database(db: Database) -> StaticNetworkDriver:
    """The entry point's factory."""
    return StaticNetworkDriver(db)
