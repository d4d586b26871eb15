"""The last line of defence against two holders: watch the public LAN for our aliases.

Heartbeats cannot tell a dead peer from a peer that nobody can hear. When they fail
every way at once, both heads may end up holding an alias. This job sees that directly,
in the manner of RFC 5227's ongoing address conflict detection:

* While this head holds an alias, it announces it (one gratuitous ARP) every
  `alias_announce_ms`. A live daemon on the other head does the same.
* A packet socket on each alias interface receives ARP. An *announcement* of one of our
  alias addresses (sender and target address equal) from another MAC is a claim by a
  live head: recorded in `state.alias_claims` (sole writer), and the role state machine
  is woken to settle it by the split-brain rule. Other ARP traffic from another MAC for
  the address (a kernel that kept it after its daemon died answers, but never announces)
  is only reported, as an aliasConflict alarm while this head holds the address.

The evidence lives for three announcement intervals. IPv6 aliases are announced by the
role state machine at takeover; their conflicts are not watched here yet.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import AliasStatus, Claim, HeadStatus, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .machine import claim_window
from fcaps.fault.takeover import ETH_P_ARP, Alias, AliasOps

log = logging.getLogger(__name__)

PACKET_OUTGOING = 4
MAX_FRAMES_PER_WAKE = 64


def parse_arp(frame: bytes) -> tuple[int, bytes, str, str] | None:
    """(operation, sender MAC, sender IPv4, target IPv4) of an Ethernet ARP frame, or None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        return None
    sha = frame[22:28]
    spa = socket.inet_ntoa(frame[28:32])
    tpa = socket.inet_ntoa(frame[38:42])
    return op, sha, spa, tpa


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class AliasGuard:
    """Announces held aliases and records other heads' announcements of them."""

    name = "alias-guard"

    def __init__(self, state: State, config: Callable[[], Config], aliases: AliasOps, alarms: Alarms,
                 clock: Clock, wake_role: Callable[[], None]) -> None:
        self.state = state
        self.config = config
        self.aliases = aliases
        self.alarms = alarms
        self.clock = clock
        self.wake_role = wake_role
        self._sockets: dict[str, socket.socket] = {}
        self._macs: dict[str, bytes] = {}
        self._uses: dict[str, tuple[str, float]] = {}   # address -> (MAC, time) of other traffic

    # -- the job ---------------------------------------------------------------------------

    def interval(self) -> float:
        announce = self.config().timing.alias_announce_ms
        return announce / 1000.0 if announce else 1.0

    async def run_cycle(self) -> str:
        cfg = self.config()
        self._watch(cfg)
        held = self._held(cfg)
        now = self.clock.monotonic()
        window = claim_window(cfg)
        if cfg.timing.alias_announce_ms:
            for alias in held:
                claim = self.state.alias_claims.get(alias.address)
                if claim is not None and now - claim.last <= window:
                    # Another head claims it: whether to announce is the role state
                    # machine's decision now (it re-announces if this head keeps it); a
                    # routine announcement here could pull clients to a head about to yield.
                    continue
                sent = await self.aliases.announce(alias, 1)
                row = self.state.aliases.get((alias.index,))
                if row is not None:
                    row.garp_sent += sent
        for address in [a for a, c in self.state.alias_claims.items() if now - c.last > window]:
            del self.state.alias_claims[address]
        for address in [a for a, (_, t) in self._uses.items() if now - t > window]:
            del self._uses[address]
        self._conflict_alarms({a.address for a in held})
        claims = [f"{a} by {c.mac}" for a, c in sorted(self.state.alias_claims.items())]
        if claims:
            return f"aliases also announced elsewhere: {', '.join(claims)}"
        return f"announcing {len(held)} held alias(es)" if held else "no alias held"

    def _held(self, cfg: Config) -> list[Alias]:
        """Aliases this head holds and may announce: only while it is active (not while a
        release is under way, nor when its heartbeat process removed them)."""
        head = self.state.heads.get((cfg.head_index(cfg.cluster.local_head),))
        if head is None or head.status != HeadStatus.ACTIVE or self.state.hb_fenced:
            return []
        held = []
        for a in cfg.active_aliases():
            row = self.state.aliases.get((a.index,))
            if row is not None and row.status == AliasStatus.HELD and a.address.version == 4:
                held.append(Alias(str(a.address), a.prefix_length, a.interface, a.index))
        return held

    def _holding(self, address: str) -> bool:
        """Whether this head holds `address` now (active, its row held)."""
        cfg = self.config()
        head = self.state.heads.get((cfg.head_index(cfg.cluster.local_head),))
        if head is None or head.status != HeadStatus.ACTIVE:
            return False
        return any(str(a.address) == address and (row := self.state.aliases.get((a.index,))) is not None
                   and row.status == AliasStatus.HELD for a in cfg.active_aliases())

    def _conflict_alarms(self, held: set[str]) -> None:
        for address in sorted({a.address for a in self.config().active_aliases()}, key=str):
            text = str(address)
            use = self._uses.get(text)
            if use is not None and text in held:
                self.alarms.raise_alarm(ProbableCause.ALIAS_CONFLICT, text, Severity.WARNING,
                                        AlarmType.COMMUNICATIONS,
                                        f"alias {text} is also in use at MAC {use[0]} on the public LAN "
                                        f"(a head whose daemon stopped may still hold it)")
            else:
                self.alarms.clear(ProbableCause.ALIAS_CONFLICT, text)

    # -- listening ---------------------------------------------------------------------------

    def _watch(self, cfg: Config) -> None:
        """One ARP socket per alias interface; opened once, at start and when one appears."""
        wanted = {a.interface for a in cfg.active_aliases() if a.address.version == 4}
        loop = asyncio.get_running_loop()
        for ifname in sorted(wanted - set(self._sockets)):
            try:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
                s.bind((ifname, ETH_P_ARP))
                s.setblocking(False)
            except OSError as exc:
                log.warning("cannot watch ARP on %s (alias conflicts there go unseen): %s", ifname, exc)
                continue
            self._sockets[ifname] = s
            self._macs[ifname] = s.getsockname()[4][:6]
            loop.add_reader(s.fileno(), self._readable, ifname)

    def _readable(self, ifname: str) -> None:
        s = self._sockets.get(ifname)
        if s is None:
            return
        for _ in range(MAX_FRAMES_PER_WAKE):
            try:
                frame, addr = s.recvfrom(128)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("ARP watch on %s failed: %s", ifname, exc)
                return
            if len(addr) > 2 and addr[2] == PACKET_OUTGOING:
                continue
            self.seen(ifname, frame)

    def seen(self, ifname: str, frame: bytes) -> None:
        """One received ARP frame (public for tests)."""
        parsed = parse_arp(frame)
        if parsed is None:
            return
        _op, sha, spa, tpa = parsed
        if sha == self._macs.get(ifname):
            return
        ours = {str(a.address) for a in self.config().active_aliases()
                if a.interface == ifname and a.address.version == 4}
        if spa not in ours:
            return
        now = self.clock.monotonic()
        mac = mac_text(sha)
        if spa == tpa:   # an announcement: a live head claims the address
            old = self.state.alias_claims.get(spa)
            fresh = old is None or old.mac != mac or now - old.last > claim_window(self.config())
            self.state.alias_claims[spa] = Claim(mac, now if fresh else old.first, now)  # type: ignore[union-attr]
            if fresh:
                log.warning("alias %s announced by %s on %s", spa, mac, ifname)
            # Every announcement wakes the role machine (they are rare: one a second per
            # holder, or a takeover burst): the one that matters may come from a head that
            # has been announcing all along and has just become a second holder.
            self.wake_role()
        elif self._holding(spa):
            # Only while this head holds it: traffic seen while standby (the peer's kernel
            # resolving a client from the alias it held then) is no conflict with a later
            # takeover of ours.
            self._uses[spa] = (mac, now)

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        for s in self._sockets.values():
            try:
                loop.remove_reader(s.fileno())
            except (ValueError, RuntimeError):
                pass
            s.close()
        self._sockets.clear()
