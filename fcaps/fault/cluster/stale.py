"""The consistency check the Linux HA stack lacks: an address left behind on this node.

IPaddr2 removes its address from the interface when it stops. On a link that is down
the removal can be skipped while the stop still reports success, so Pacemaker starts the
address elsewhere and this node keeps it; once the link heals two nodes answer for it.
Nothing in Pacemaker looks again. This check does: for every address resource (one
with an `ip` parameter) that Pacemaker says is stopped or started on another node,
an address still configured on one of this node's interfaces is stale.

Rules:

* A stale address raises one alarm (probable cause staleAddress, subject the address)
  and publishes ADDRESS_STALE; when it is gone from this node, or Pacemaker places its
  resource here again, the alarm is cleared with the same identity and
  ADDRESS_STALE_CLEARED is published.
* It is told only once it has lasted `hold` seconds (on the injected clock) over two
  checks or more: the moment between Pacemaker's view and the kernel's, while a stop
  or start is under way, is not a fault.
* An address that some resource row places on this node is never stale, so the other
  instances of a cloned address resource do not count against it.
* While Pacemaker's placement is unknown nothing is decided: alarms stand, suspicions
  wait.
* A resource leaving the configuration while its address is stale clears the alarm:
  nothing claims the address any more.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause

from .changes import where
from .model import ClusterView, Resource

log = logging.getLogger(__name__)


class LocalAddresses(Protocol):
    async def addresses(self) -> dict[str, str]:
        """Every address configured on this node's interfaces -> its interface's name."""


class NetlinkAddresses:
    """This node's addresses from the kernel, through pyroute2's asynchronous API."""

    def __init__(self) -> None:
        self._ipr: object | None = None

    async def addresses(self) -> dict[str, str]:
        from pyroute2 import AsyncIPRoute      # loaded with the corosync backend only

        if self._ipr is None:
            ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
            self._ipr = ipr
        ipr = self._ipr
        names = {link["index"]: link.get_attr("IFLA_IFNAME")
                 async for link in await ipr.link("dump")}           # type: ignore[attr-defined]
        return {canonical(addr.get_attr("IFA_ADDRESS")): names.get(addr["index"], "")
                async for addr in await ipr.addr("dump")}             # type: ignore[attr-defined]

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()                                         # type: ignore[attr-defined]
            self._ipr = None


def canonical(address: str) -> str:
    """192.0.2.10 and 2001:db8::20 as the kernel and RFC 5952 write them."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


@dataclass
class _Suspect:
    since: float                # monotonic time of the first check that saw it
    resource_id: str
    told: bool = False


class StaleAddresses:
    """Sole raiser of staleAddress alarms. `check(view)` after every new view."""

    def __init__(self, alarms: Alarms, bus: EventBus, clock: Clock, addresses: LocalAddresses,
                 local_node: str, row_index: Callable[[str], int | None], *, hold: float = 5.0) -> None:
        self.alarms = alarms
        self.bus = bus
        self.clock = clock
        self.source = addresses
        self.local_node = local_node
        self.row_index = row_index          # resource id -> its haoscarResourceTable index
        self.hold = hold
        self._suspects: dict[str, _Suspect] = {}        # address -> since when it looks stale

    def _me(self, view: ClusterView) -> str:
        """Pacemaker's name of this node: the node with Corosync's local id, else the
        name given."""
        if view.membership is not None and view.placement is not None:
            for node in view.placement.nodes:
                if node.node_id == view.membership.local_node_id:
                    return node.name
        return self.local_node

    async def check(self, view: ClusterView) -> None:
        if view.placement is None:
            return
        try:
            local = await self.source.addresses()
        except OSError as err:
            log.warning("cannot read this node's addresses: %s", err)
            return
        me = self._me(view)
        rows = [(canonical(r.address), r) for r in view.placement.resources if r.address]
        placed_here = {address for address, r in rows if r.node == me}   # a cloned address runs here too
        stale: dict[str, tuple[Resource, str]] = {}
        for address, row in rows:
            if address in local and address not in placed_here:
                stale.setdefault(address, (row, local[address]))
        now = self.clock.monotonic()
        for address in sorted(self._suspects.keys() - stale.keys()):
            suspect = self._suspects.pop(address)
            if suspect.told:
                self._clear(address, suspect.resource_id)
        for address, (row, ifname) in sorted(stale.items()):
            suspect = self._suspects.setdefault(address, _Suspect(now, row.resource_id))
            if not suspect.told and now - suspect.since >= self.hold:
                suspect.told = True
                self._raise(address, row, ifname)

    def _raise(self, address: str, row: Resource, ifname: str) -> None:
        text = (f"address {address} of resource {row.resource_id} is still on {ifname} of this node, "
                f"which Pacemaker says is {where(row).lower()}")
        self.alarms.raise_alarm(ProbableCause.STALE_ADDRESS, address, Severity.MAJOR,
                                AlarmType.COMMUNICATIONS, text)
        self.bus.publish(Event(EventType.ADDRESS_STALE, address, Severity.MAJOR, text, self.clock.time(),
                               {"resource_index": self.row_index(row.resource_id) or 0, "reason": text}))

    def _clear(self, address: str, resource_id: str) -> None:
        text = f"address {address} is no longer stale on this node"
        self.alarms.clear(ProbableCause.STALE_ADDRESS, address, text)
        self.bus.publish(Event(EventType.ADDRESS_STALE_CLEARED, address, Severity.CLEARED, text,
                               self.clock.time(),
                               {"resource_index": self.row_index(resource_id) or 0, "reason": text}))
