"""The heartbeat process's view of this head's own links, from netlink (pyroute2).

A carrier lost on this head's heartbeat or alias interfaces must be seen within
milliseconds, not at the next LAN poll, so the heartbeat process subscribes to the
kernel's link changes. At start it learns which interface carries each heartbeat path
(the one holding the path's local address) and adds those to the interfaces watched;
then every link message about a watched interface updates the carrier it has, and a
changed view is handed on at once.

Rules: it runs in the heartbeat process, so it imports nothing heavy (pyroute2 only
when opened); a broken netlink socket is said once and the process carries on without
it; each event is handled under the process's catch-all, which it is given.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Mapping

from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.state import Lan, LinkView

log = logging.getLogger("fcaps.fault.heartbeat.peer")   # the heartbeat process's one logger

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


class CarrierWatch:
    """Carrier of the watched interfaces, and which interface carries each path."""

    def __init__(self, watch: set[str], changed: Callable[[], None],
                 guarded: Callable[[Callable[[], str]], None]) -> None:
        self.watch = watch
        self.view = LinkView()
        self._changed = changed          # called when the view changed
        self._guarded = guarded          # the process's catch-all
        self._carrier: dict[str, bool] = {}
        self._nl: Any = None

    async def open(self, local: Mapping[Lan, str]) -> None:
        """Subscribe, and read the links and the interfaces holding each path's `local`
        address."""
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        ipr = AsyncIPRoute()
        await ipr.bind(groups=RTMGRP_LINK)
        self._nl = ipr
        names: dict[int, str] = {}
        async for link in await ipr.link("dump"):
            names[link["index"]] = link.get("ifname")
            self._link_seen(link)
        lan_if: dict[Lan, str] = {}
        async for addr in await ipr.addr("dump"):
            for lan, address in local.items():
                if addr.get("address") == address:
                    lan_if[lan] = names.get(addr["index"], "")
        self.watch |= {name for name in lan_if.values() if name}
        self.view = LinkView(lan_a=lan_if.get(Lan.LAN_A, ""), lan_b=lan_if.get(Lan.LAN_B, ""),
                             public=lan_if.get(Lan.PUBLIC, ""))
        self.view = self._link_view()
        asyncio.get_running_loop().create_task(self._netlink_events(ipr))

    def close(self) -> None:
        if self._nl is not None:
            self._nl.close()

    async def _netlink_events(self, ipr: Any) -> None:
        try:
            while True:   # each get() yields one batch of messages
                async for msg in ipr.get():
                    if msg.get("event") in ("RTM_NEWLINK", "RTM_DELLINK"):
                        self._guarded(lambda msg=msg: self._link_event(msg))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the socket broke: say so, carry on without it
            log.exception("netlink link watch stopped; carrier changes are no longer seen; %s", BUG_MARKER)

    def _link_seen(self, msg: Any) -> None:
        flags = msg.get("flags", 0)
        up = msg.get("event") != "RTM_DELLINK" and (flags & (IFF_UP | IFF_LOWER_UP)) == IFF_UP | IFF_LOWER_UP
        self._carrier[msg.get("ifname")] = up

    def _link_view(self) -> LinkView:
        carrier = tuple(sorted((n, self._carrier.get(n, False)) for n in self.watch if n in self._carrier))
        return LinkView(lan_a=self.view.lan_a, lan_b=self.view.lan_b, public=self.view.public,
                        carrier=carrier)

    def _link_event(self, msg: Any) -> str:
        if msg.get("ifname") not in self.watch:
            return ""
        self._link_seen(msg)
        view = self._link_view()
        if view != self.view:
            self.view = view
            self._changed()
        return ""
