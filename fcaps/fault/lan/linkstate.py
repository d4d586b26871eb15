"""What the link watch knows of each watched name, and what it tells of it.

`LinkTable` keeps the watched names, the state last seen of each interface that exists
(`links()`) and which names are known not to exist (`absent()`); `_observe` takes one
link message (an event, a dump part or a poll answer, fault/lan/netlink.py) and `_gone`
one disappearance, and both tell the consumer through `on_change` and `on_presence`.
Reading the kernel (the socket, the dumps, the carrier poll) is the `LinkWatch` built on
it (fault/lan/links.py).

Renames, removals and creations: a watched name that disappears (deleted, renamed away,
moved to another namespace) is reported as `on_change(name, False, False)` (if it was up)
and `on_presence(name, False)`; one that appears (created, renamed to it) as
`on_presence(name, True)` and, if it is up, `on_change`. Bridge-port notices (family
AF_BRIDGE) are about the port, not the interface, and are ignored. The first state of a
name (at `open()`, or after `set_names` added it) is taken silently: `links()` and
`absent()` show it. Callbacks run on the loop's reader: they should record and wake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from haoscar_snmp.core.bug import BUG_MARKER

from .netlink import LinkMessage

log = logging.getLogger("fcaps.fault.lan.links")    # it logs as the link watch it is part of


@dataclass(frozen=True, slots=True)
class LinkState:
    """A watched interface as last seen. `carrier` is None while administratively down."""

    ifindex: int
    admin_up: bool
    carrier: bool | None
    operstate: str

    @property
    def usable(self) -> bool:
        return self.admin_up and self.carrier is True


@dataclass
class LinkWatchStats:
    messages: int = 0          # link messages about watched interfaces: events, dump parts, polls
    polls: int = 0             # carrier polls sent
    changes: int = 0           # on_change calls
    dumps: int = 0             # dumps completed
    dump_failures: int = 0     # refused by the kernel, timed out, or the socket closed
    interrupted: int = 0       # dumps the kernel marked inconsistent (links changed meanwhile)
    overruns: int = 0          # ENOBUFS: events were lost
    resyncs: int = 0           # dumps asked for because of an overrun
    malformed: int = 0         # datagrams (the rest of them) dropped
    last_dump_ms: float = 0.0


OnChange = Callable[[str, bool, bool], None]
OnPresence = Callable[[str, bool], None]


def no_presence(name: str, present: bool) -> None:
    """The null `on_presence`: appearing and vanishing also show through `on_change`."""


class LinkTable:
    """The watched names and the state of each; the part of the link watch that tells."""

    def __init__(self, names: Iterable[str], on_change: OnChange, on_presence: OnPresence) -> None:
        self._names = set(names)
        self._on_change = on_change
        self._on_presence = on_presence
        self.stats = LinkWatchStats()        # the whole watch's; this part counts `changes`
        self._known: dict[str, LinkState] = {}
        self._by_index: dict[int, str] = {}
        # Names whose first state is still to be taken (silently), with the generation of
        # the first dump that was asked for after they were added: only its end can say
        # they are absent.
        self._pending: dict[str, int] = {name: 1 for name in self._names}

    # -- reading -------------------------------------------------------------------------

    def links(self) -> dict[str, LinkState]:
        """The watched interfaces known to exist, by name (a copy)."""
        return dict(self._known)

    def absent(self) -> list[str]:
        """Watched names known not to exist."""
        return sorted(n for n in self._names if n not in self._known and n not in self._pending)

    # -- the state -----------------------------------------------------------------------

    def _observe(self, msg: LinkMessage, touched: set[str] | None) -> None:
        """Take one link message; `touched` (a dump's, while one is in flight) gains
        the watched names it shows."""
        old = self._by_index.get(msg.ifindex)
        if msg.deleted:
            if old is not None:
                self._gone(old)
            if touched is not None:
                touched.add(msg.name)
            if msg.name in self._pending:       # deleted before its first state: absent
                self._pending.pop(msg.name)
            return
        if old is not None and old != msg.name:   # renamed away (or the name given to another)
            self._gone(old)
        if msg.name not in self._names:
            return
        if touched is not None:
            touched.add(msg.name)
        state = LinkState(msg.ifindex, msg.admin_up, msg.has_carrier, msg.operstate_name)
        prev = self._known.get(msg.name)
        if prev is not None and prev.ifindex != msg.ifindex:   # replaced by a new interface
            self._gone(msg.name)
            prev = None
        self._known[msg.name] = state
        self._by_index[msg.ifindex] = msg.name
        if self._pending.pop(msg.name, None) is not None:
            return                                  # its first state: taken silently
        if prev is None:
            self._tell_presence(msg.name, True)
        if (prev.usable if prev else False, prev.admin_up if prev else False) != (state.usable, state.admin_up):
            self._tell_change(msg.name, state.usable, state.admin_up)

    def _gone(self, name: str) -> None:
        state = self._known.pop(name, None)
        if state is None:
            return
        self._by_index.pop(state.ifindex, None)
        self._tell_presence(name, False)
        if state.usable or state.admin_up:
            self._tell_change(name, False, False)

    def _tell_change(self, name: str, carrier: bool, admin_up: bool) -> None:
        self.stats.changes += 1
        log.debug("link %s: carrier %s, admin %s", name, carrier, "up" if admin_up else "down")
        try:
            self._on_change(name, carrier, admin_up)
        except Exception:  # a consumer's bug must not stop the watch
            log.exception("link watch: on_change(%s) failed; %s", name, BUG_MARKER)

    def _tell_presence(self, name: str, present: bool) -> None:
        try:
            self._on_presence(name, present)
        except Exception:  # a consumer's bug must not stop the watch
            log.exception("link watch: on_presence(%s) failed; %s", name, BUG_MARKER)
