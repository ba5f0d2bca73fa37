"""The ``lab`` network driver: networks are bridges in the lab fabric's ToR namespace, subnets and
addresses live in the database (IPAM), ports are veth pairs from a bridge into a namespace.

An amphora's compute_id is its id; its ports go into its amphora-haproxy namespace
(``l3d-amp-<id8>-hap``), as Octavia plugs member and front-end networks there. Every method is
safe in parallel (IPAM in the database, kernel changes on distinct interfaces) and a method that
fails removes what it made before raising.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from typing import Any

from sqlalchemy import delete, select, update

from l3dist.common import constants as c
from l3dist.common import netlink
from l3dist.db.models import NetIpAllocation, NetNetwork, NetPort, NetSubnet
from l3dist.db.session import Database
from l3dist.network import ipam
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.catalog import stable_id
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
from l3dist.network.models import FixedIP, Interface, Network, Port, Subnet, VipInfo
from l3dist_lab import plumbing
from l3dist_lab.config import MEMBER_BRIDGE, TOR_NS, LabConfig, LabNetwork

OWNER_AMPHORA = "compute:l3dist-amphora"
OWNER_VIP = "Octavia"
OWNER_FRONTEND = "Octavia:frontend"
PORT_BUILD = "BUILD"  # recorded, not yet wired into its namespace
PORT_ACTIVE = "ACTIVE"
OWNER_MANAGEMENT = "compute:l3dist-amphora-mgmt"
OWNER_CONTROLLER = "network:l3dist-controller"
# Addresses below .100 of each subnet are left to the operator (gateways, fixed lab hosts).
FIRST_HOST_INDEX = 100
# Bridge MACs are pinned so they do not change as ports come and go.
BRIDGE_MACS = {
    "br-mgmt": "02:1d:00:00:00:01",
    "br-fe": "02:1d:00:00:01:01",
    MEMBER_BRIDGE: "02:1d:00:00:03:01",
}


def haproxy_namespace(compute_id: str) -> str:
    return f"l3d-amp-{compute_id.replace('-', '')[:8]}-hap"


def mac_for(network_id: str, address: str) -> str:
    """A locally administered unicast MAC derived from the port's network and first address.

    An address reused by a new port keeps its MAC, so neighbour caches on the ToR and the
    controller never point at a deleted port (lab notes: stale neighbours after reuse)."""
    raw = hashlib.sha256(f"{network_id}/{address}".encode()).digest()
    return "02:1e:" + ":".join(f"{b:02x}" for b in raw[:4])


def bridge_ifname(port_id: str) -> str:
    return "p" + port_id.replace("-", "")[:12]


class LabNetworkDriver(AbstractNetworkDriver):
    def __init__(self, db: Database, tor_namespace: str = TOR_NS) -> None:
        self.db = db
        self.tor = tor_namespace

    # -- networks and subnets (lab set-up, outside the spec's interface) -----------------------

    def ensure_network(
        self,
        name: str,
        bridge: str | None,
        subnets: list[dict[str, Any]],
        mtu: int = 1500,
        network_id: str | None = None,
        bridge_mac: str | None = None,
    ) -> Network:
        """Create (or find) a network: its subnets for IPAM and, for a network with a bridge,
        the bridge in the fabric with each subnet's gateway address on it (the ToR routes)."""
        network = self.register_network(name, bridge, subnets, mtu, network_id)
        if bridge:
            plumbing.add_bridge(self.tor, bridge, bridge_mac)
            for subnet_id in network.subnets:
                subnet = self.get_subnet(subnet_id)
                if subnet.gateway_ip:
                    prefixlen = ipaddress.ip_network(subnet.cidr).prefixlen
                    netlink.add_address(self.tor, bridge, f"{subnet.gateway_ip}/{prefixlen}")
        return network

    def register_network(
        self,
        name: str,
        bridge: str | None,
        subnets: list[dict[str, Any]],
        mtu: int = 1500,
        network_id: str | None = None,
    ) -> Network:
        """Record a network and its subnets (idempotent by name), without touching the kernel."""
        with self.db.session(writer=True) as s:
            row = s.scalar(select(NetNetwork).where(NetNetwork.name == name))
            if row is None:
                row = NetNetwork(
                    id=network_id or str(uuid.uuid4()), name=name, bridge=bridge, mtu=mtu
                )
                s.add(row)
                s.flush()
            for spec in subnets:
                if s.scalar(select(NetSubnet).where(NetSubnet.name == spec["name"])) is None:
                    cidr = ipaddress.ip_network(spec["cidr"])
                    s.add(NetSubnet(network_id=row.id, ip_version=cidr.version, **spec))
            network_id = row.id
        return self.get_network(network_id)

    # -- lookups ---------------------------------------------------------------------------

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
            return Subnet(
                id=row.id,
                name=row.name,
                network_id=row.network_id,
                cidr=row.cidr,
                ip_version=row.ip_version,
                gateway_ip=row.gateway_ip,
                role=row.role,
            )

    def get_port(self, port_id: str) -> Port:
        with self.db.session() as s:
            row = s.get(NetPort, port_id)
            if row is None:
                raise PortNotFound(f"port {port_id} not found")
            return self._port(row)

    @property
    def networks(self) -> dict[str, Network]:
        with self.db.session() as s:
            ids = s.scalars(select(NetNetwork.id)).all()
        return {i: self.get_network(i) for i in ids}

    @staticmethod
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

    # -- ports -----------------------------------------------------------------------------

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
        """A port with addresses from IPAM; with a namespace, also a veth into it."""
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
                status=PORT_BUILD if namespace else "DOWN",
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
            bridge, mtu = network.bridge, network.mtu
            prefixes = {
                sn.id: (ipaddress.ip_network(sn.cidr).prefixlen, sn.gateway_ip) for sn in subnets
            }
            s.flush()
            s.refresh(row)
            port = self._port(row)
        if namespace:
            try:
                self._wire(port, bridge, mtu, namespace, ifname or "eth0", prefixes, default_routes)
            except Exception as exc:
                self.delete_port(port.id)
                raise PlugNetworkException(f"could not wire port {port.id}: {exc}") from exc
            with self.db.session(writer=True) as s:
                s.execute(update(NetPort).where(NetPort.id == port.id).values(status=PORT_ACTIVE))
            port.status = PORT_ACTIVE
        return port

    def _wire(
        self,
        port: Port,
        bridge: str | None,
        mtu: int,
        namespace: str,
        ifname: str,
        prefixes: dict[str, tuple[int, str | None]],
        default_routes: bool,
    ) -> None:
        if bridge is None:
            raise PlugNetworkException(f"network {port.network_id} has no bridge")
        if namespace not in plumbing.list_namespaces():
            raise AmphoraNotFound(f"namespace {namespace} does not exist")
        plumbing.add_veth(
            self.tor,
            bridge_ifname(port.id),
            namespace,
            ifname,
            master=bridge,
            mtu=mtu,
            peer_mac=port.mac_address,
        )
        for fixed in port.fixed_ips:
            prefixlen, gateway = prefixes[fixed.subnet_id]
            netlink.add_address(namespace, ifname, f"{fixed.ip_address}/{prefixlen}")
            if default_routes and gateway:
                plumbing.add_default_route(namespace, gateway)

    def delete_port(self, port_id: str) -> None:
        """Remove a port (veth, addresses, database rows); absent is fine."""
        plumbing.delete_link(self.tor, bridge_ifname(port_id))
        with self.db.session(writer=True) as s:
            row = s.get(NetPort, port_id)
            if row is not None:
                s.delete(row)

    def ports_of(self, device_id: str, network_id: str | None = None) -> list[Port]:
        with self.db.session() as s:
            stmt = select(NetPort).where(NetPort.device_id == device_id)
            if network_id:
                stmt = stmt.where(NetPort.network_id == network_id)
            return [self._port(r) for r in s.scalars(stmt.order_by(NetPort.created_at))]

    # -- the spec's interface --------------------------------------------------------------

    def plug_network(
        self, compute_id: str, network_id: str, ip_address: str | None = None
    ) -> Interface:
        self.get_network(network_id)
        namespace = haproxy_namespace(compute_id)
        if namespace not in plumbing.list_namespaces():
            raise AmphoraNotFound(f"amphora {compute_id} not found")
        for port in self.ports_of(compute_id, network_id):
            if ip_address is None or any(f.ip_address == ip_address for f in port.fixed_ips):
                return Interface(port.id, network_id, compute_id, port.fixed_ips)  # idempotent
        fixed: list[tuple[str, str | None]] | None = None
        if ip_address is not None:
            subnet = self._subnet_for(network_id, ip_address)
            fixed = [(subnet, ip_address)]
        with self.db.session() as s:
            count = len(s.scalars(select(NetPort.id).where(NetPort.device_id == compute_id)).all())
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
        if haproxy_namespace(compute_id) not in plumbing.list_namespaces():
            raise AmphoraNotFound(f"amphora {compute_id} not found")
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
        vip = loadbalancer.vip
        subnet = self.get_subnet(vip.subnet_id)
        existing = [
            p for p in self.ports_of(f"lb-{loadbalancer.id}") if p.device_owner == OWNER_VIP
        ]
        if existing:  # idempotent: the same load balancer gets its VIP back
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
        """Give each amphora a front-end port, and the VIP: on loopback in its amphora-haproxy
        namespace for ACTIVE_ACTIVE (the fabric routes the VIP to the front-end IP; no ARP for
        it), on the front-end port otherwise."""
        frontend_subnet = self.get_subnet(getattr(vip, "frontend_subnet_id", None) or vip.subnet_id)
        version = ipaddress.ip_address(vip.ip_address).version
        active_active = loadbalancer.topology == c.TOPOLOGY_ACTIVE_ACTIVE
        made: list[str] = []
        try:
            for amphora in loadbalancer.amphorae:
                namespace = haproxy_namespace(amphora.id)
                if namespace not in plumbing.list_namespaces():
                    raise PortNotFound(f"amphora {amphora.id} has no namespace {namespace}")
                port = None
                for existing in self.ports_of(amphora.id, frontend_subnet.network_id):
                    if existing.device_owner != OWNER_FRONTEND:
                        continue
                    if existing.status == PORT_ACTIVE:
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
                        "fe0",
                        amphora.id,
                        OWNER_FRONTEND,
                        [(frontend_subnet.id, None), *others],
                        default_routes=True,
                    )
                    made.append(port.id)
                if active_active:
                    netlink.set_sysctls(namespace, netlink.VIP_ON_LOOPBACK_SYSCTLS)
                    netlink.add_address(
                        namespace, "lo", f"{vip.ip_address}/{32 if version == 4 else 128}"
                    )
                else:
                    prefix = ipaddress.ip_network(frontend_subnet.cidr).prefixlen
                    netlink.add_address(namespace, "fe0", f"{vip.ip_address}/{prefix}")
                amphora.frontend_ip = next(
                    ip.ip_address for ip in port.fixed_ips if ip.subnet_id == frontend_subnet.id
                )
                amphora.frontend_port_id = port.id
                amphora.frontend_subnet_id = frontend_subnet.id
                amphora.frontend_interface = "fe0"
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
            namespace = haproxy_namespace(amphora.id)
            if namespace in plumbing.list_namespaces():
                for ifname in ("lo", "fe0"):
                    for address in netlink.addresses(namespace, ifname):
                        if address.split("/")[0] == wanted:
                            found = True
                            netlink.delete_address(namespace, ifname, address)
            for port in self.ports_of(amphora.id):
                if port.device_owner == OWNER_FRONTEND:
                    found = True
                    self.delete_port(port.id)
        if not found:
            raise PluggedVIPNotFound(f"VIP {vip.ip_address} is not plugged")

    def update_vip(self, loadbalancer: Any) -> None:
        """Nothing to update: the lab has no security groups (listener ports are all open)."""

    def failover_preparation(self, amphora: Any) -> None:
        if not self.ports_of(amphora.id):
            raise PortNotFound(f"amphora {amphora.id} has no ports")

    def forget_all(self) -> int:
        """Drop every network, subnet, port and allocation (the lab was torn down); returns how
        many records there were."""
        with self.db.session(writer=True) as s:
            count = 0
            for table in (NetIpAllocation, NetPort, NetSubnet, NetNetwork):
                result = s.execute(delete(table))
                count += int(getattr(result, "rowcount", 0) or 0)
            return count

    def allocations(self) -> list[tuple[str, str]]:
        with self.db.session() as s:
            return [(a.subnet_id, a.ip_address) for a in s.scalars(select(NetIpAllocation))]


def _subnet_specs(net: LabNetwork) -> list[dict[str, Any]]:
    return [
        {
            "id": stable_id(f"{net.name}-v{v}"),
            "name": f"{net.name}-v{v}",
            "cidr": str(cidr),
            "gateway_ip": str(cidr[1]) if net.routed else None,
            "first_host_index": FIRST_HOST_INDEX,
            "role": net.role,
        }
        for v, cidr in net.subnets()
    ]


def register_lab_networks(driver: LabNetworkDriver, cfg: LabConfig | None = None) -> None:
    """The lab's networks in the driver's database only (API tests, no kernel), with the ids
    the catalog gives them."""
    for net in (cfg or LabConfig()).networks():
        driver.register_network(
            net.name, net.bridge, _subnet_specs(net), network_id=stable_id(net.name)
        )


def build_lab_networks(driver: LabNetworkDriver, cfg: LabConfig) -> None:
    """The lab's networks, made through the driver: database rows and bridges in the ToR."""
    for net in cfg.networks():
        driver.ensure_network(
            net.name,
            net.bridge,
            _subnet_specs(net),
            network_id=stable_id(net.name),
            bridge_mac=BRIDGE_MACS.get(net.bridge or ""),
        )


def from_database(db: Database) -> LabNetworkDriver:
    """The entry point's factory: the driver with the lab's networks recorded (idempotent), so
    the API can show them even before ``l3dist lab up`` builds their bridges."""
    driver = LabNetworkDriver(db)
    register_lab_networks(driver)
    return driver
