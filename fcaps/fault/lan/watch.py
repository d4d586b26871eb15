"""The LAN watch: which watched interfaces are up, which LAN has failed, and what to tell.

Pure: no I/O, no clock of its own. The LAN poller pings every watched interface (one
(node, LAN) pair, haoscar_snmp/config/lanrows.py) once per poll interval and, after
each round, feeds `LanWatch.step` what the prober counted per interface with the
monotonic time. It carries out the steps returned: a state step (UP, DOWN, LAN_FAILED,
LAN_RECOVERED) changes what the MIB shows at once; a notice step (TELL_*) is sent as a
notification, an alarm and an e-mail. A step is returned, never called back.

**An interface** is *unknown* until its first reply (then *up*) or until `down_after`
without one (then *down*). It is *down* when its received count has not grown for
`down_after` (>= two poll intervals), and *up* again only after `rise` replies in a row,
so a link that loses every other echo stays down instead of flapping. A count that
goes back means the prober counts afresh (Counter64 counts do not wrap).

**Hold-down** (per interface, and per LAN for the LAN notices): a down notice goes out
only if no down notice went out in the last `hold_down`; an up notice goes out as soon
as the interface is up after a down notice, never held, so a stale "down" never stands.
A down held back is told when the hold-down ends, if it is still down then. So in any
hold-down period there is at most one down and one up notice, and a link that flaps for
D seconds and then settles gives at most 2 x ceil(D / hold_down) + 1 notices, the last
of them its final state: a minute of flapping with the default 60 s gives at most 3.
A down notice also waits one *window* (two poll intervals, below) to see whether its
LAN failed; a link that is back within it is never told down.

**A LAN fails** when, within the window, at least `failure_percent` of its interfaces
that were not already down went down, and at least `failure_min` of them: one LAN_FAILED
step and one notice, not one per interface. The window is two poll intervals, the
widest spread of detections of one cut (a reply lands anywhere in an interval, and the
rule is judged once per interval). While the failure stands no per-interface notice is
sent for that LAN (the states are still kept); interfaces that go down meanwhile join
it. It **recovers** when fewer of its members are still down than would make a failure
of that many (with the defaults: more than half of them are back); members still down
are then told one by one, after one more window (most of them come back in it).

A private LAN is *out* when its failure stands or every interface on it is known down;
the cluster **runs on LAN B only** when LAN A is out and LAN B is not and has an
interface up (`running_on`). Which head reports (`polls_here`) is a pure predicate for
the poller.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from haoscar_snmp.config.lanrows import PRIVATE, IfKey
from haoscar_snmp.config.schema import Config, Poller
from haoscar_snmp.core.state import Lan, LinkStatus

L = LinkStatus


class StepKind(enum.Enum):
    # States: what the MIB shows changes at once.
    UP = "up"                                # UNKNOWN -> UP (first reply), DOWN -> UP (rise replies)
    DOWN = "down"                            # UNKNOWN/UP -> DOWN (no reply for down_after)
    LAN_FAILED = "LAN failed"                # most of a LAN went down at once
    LAN_RECOVERED = "LAN recovered"          # most of what went down with it is back
    # Notices: what is told, after the hold-down and while no LAN failure covers it.
    TELL_DOWN = "tell down"
    TELL_UP = "tell up"
    TELL_LAN_FAILED = "tell LAN failed"
    TELL_LAN_RECOVERED = "tell LAN recovered"

    @property
    def notice(self) -> bool:
        return self.name.startswith("TELL_")


@dataclass(frozen=True)
class Step:
    kind: StepKind
    lan: Lan
    node: str                                # "" for a LAN's steps
    reason: str


@dataclass(frozen=True)
class Reading:
    """What the prober counted for one interface's address since it began pinging it.

    `waiting`: the newest request is unanswered but within the prober's timeout, so it is
    not a miss yet (the prober spreads its requests over the interval, so one may be on
    its way when the round is judged)."""

    sent: int
    received: int
    last_reply: float | None = None          # monotonic time of the newest reply, if known
    rtt_s: float | None = None               # of the newest request answered in time
    waiting: bool = False


@dataclass(frozen=True)
class Policy:
    """The watch's settings ([timing] lan_*, [lan], [failover]), read at each reload."""

    poll_interval_s: float = 5.0
    down_after_s: float = 15.0
    rise: int = 3
    hold_down_s: float = 60.0
    failure_percent: int = 50
    failure_min: int = 2

    @property
    def window_s(self) -> float:
        return 2 * self.poll_interval_s

    def threshold(self, base: int) -> int:
        """How many of `base` interfaces down make a LAN failure: the share, and the minimum."""
        return max(self.failure_min, -(-self.failure_percent * base // 100))

    @classmethod
    def of(cls, config: Config) -> Policy:
        timing, lan = config.timing, config.lan
        return cls(poll_interval_s=timing.lan_poll_interval_ms / 1000,
                   down_after_s=timing.lan_down_after_ms / 1000, rise=lan.rise,
                   hold_down_s=lan.hold_down_ms / 1000, failure_percent=lan.failure_percent,
                   failure_min=lan.failure_min_interfaces)


@dataclass
class Teller:
    """What was last told about one interface or LAN, and when bad news last went out."""

    told_bad: bool = False
    bad_at: float | None = None

    def tell(self, bad: bool | None, now: float, hold_down_s: float) -> bool | None:
        """The news to send for the settled truth `bad` (None: nothing settled yet):
        True for bad news, False for good news, None for nothing now."""
        if bad and not self.told_bad:
            if self.bad_at is not None and now - self.bad_at < hold_down_s:
                return None                  # held down: told when it ends, if still true
            self.told_bad, self.bad_at = True, now
            return True
        if bad is False and self.told_bad:
            self.told_bad = False            # good news is never held
            return False
        return None


@dataclass
class Link:
    """One interface's state; times are monotonic."""

    status: LinkStatus = L.UNKNOWN
    since: float = 0.0                       # when watching began, then when the status changed
    last_reply: float = 0.0                  # the newest reply seen (when watching began, at first)
    in_a_row: int = 0                        # replies in a row, for rise
    sent: int = 0
    settled: int = 0                         # requests answered or given up on
    received: int = 0
    rtt_s: float | None = None
    reason: str = ""                         # why the status last changed
    teller: Teller = field(default_factory=Teller)

    def observe(self, reading: Reading | None, now: float, policy: Policy) -> tuple[LinkStatus, str] | None:
        """Fold in one round's counts: the transition they make (new status, why), if any."""
        fresh = False
        if reading is not None:
            settled = reading.sent - 1 if reading.waiting and reading.sent else reading.sent
            got, sent = reading.received - self.received, settled - self.settled
            if got < 0 or reading.sent < self.sent:          # the prober counts afresh
                got, sent = reading.received, settled
            self.sent, self.settled, self.received = reading.sent, settled, reading.received
            self.rtt_s = reading.rtt_s
            if got > 0:
                at = min(now, reading.last_reply if reading.last_reply is not None else now)
                fresh = now - at < policy.down_after_s       # not a count left from long ago
                if fresh:
                    self.last_reply = max(self.last_reply, at)
                    # Some lost in the same round: their order is unknown, so start again.
                    self.in_a_row = self.in_a_row + got if got >= sent else 0
            elif sent > 0:
                self.in_a_row = 0                            # pinged, no answer
        if self.status is L.UNKNOWN and fresh:
            return self._become(L.UP, now, "first reply")    # UNKNOWN -> UP
        if self.status is L.DOWN and self.in_a_row >= policy.rise:
            return self._become(L.UP, now, f"{self.in_a_row} replies in a row")   # DOWN -> UP
        silent = now - self.last_reply
        if self.status is not L.DOWN and silent >= policy.down_after_s:
            self.in_a_row = 0                                # UNKNOWN/UP -> DOWN
            return self._become(L.DOWN, now, f"no reply for {silent:.3g} s")
        return None

    def _become(self, status: LinkStatus, now: float, reason: str) -> tuple[LinkStatus, str]:
        assert status is not self.status
        self.status, self.since, self.reason = status, now, reason
        return status, reason


@dataclass
class LanFault:
    """One LAN's failure: whether it stands, and the interfaces (nodes) that went down with it."""

    failed: bool = False
    members: set[str] = field(default_factory=set)
    recovered_at: float | None = None
    reason: str = ""
    teller: Teller = field(default_factory=Teller)


@dataclass(frozen=True)
class LanSummary:
    lan: Lan
    total: int
    up: int
    down: int
    unknown: int
    failed: bool

    @property
    def out(self) -> bool:
        """Nothing works on it: its failure stands, or every interface is known down."""
        return self.failed or (self.down > 0 and self.up == 0 and self.unknown == 0)


@dataclass(frozen=True)
class IfView:
    """One interface as the MIB shows it (haoscarLanIfTable)."""

    node: str
    lan: Lan
    status: LinkStatus
    since: float
    sent: int
    received: int
    rtt_s: float | None


class LanWatch:
    """Every watched interface and LAN; `step` once per poll round."""

    def __init__(self, policy: Policy = Policy()) -> None:
        self.policy = policy
        self._links: dict[IfKey, Link] = {}
        self._lans: dict[Lan, LanFault] = {lan: LanFault() for lan in Lan}

    def configure(self, keys: Iterable[IfKey], now: float, policy: Policy | None = None) -> None:
        """The interfaces to watch, at start and at each reload. Reload is a diff: an
        interface that stays keeps its state, a new one starts unknown, a removed one is
        forgotten (also by its LAN's failure)."""
        wanted = dict.fromkeys(keys)
        for node, lan in [key for key in self._links if key not in wanted]:
            del self._links[(node, lan)]
            self._lans[lan].members.discard(node)
        for key in wanted:
            if key not in self._links:
                self._links[key] = Link(since=now, last_reply=now)
        if policy is not None:
            self.policy = policy

    def step(self, now: float, readings: Mapping[IfKey, Reading]) -> list[Step]:
        """One poll round: the counts per interface (absent: no news) at monotonic `now`."""
        p = self.policy
        steps: list[Step] = []
        for (node, lan), link in self._links.items():
            change = link.observe(readings.get((node, lan)), now, p)
            if change is not None:
                steps.append(Step(StepKind.UP if change[0] is L.UP else StepKind.DOWN, lan, node, change[1]))
        by_lan = self._by_lan()
        for lan, fault in self._lans.items():
            steps += self._judge(lan, fault, by_lan.get(lan, {}), now)
        for lan, fault in self._lans.items():
            news = fault.teller.tell(fault.failed, now, p.hold_down_s)
            if news is not None:
                kind = StepKind.TELL_LAN_FAILED if news else StepKind.TELL_LAN_RECOVERED
                steps.append(Step(kind, lan, "", fault.reason))
        for (node, lan), link in self._links.items():
            fault = self._lans[lan]
            if fault.failed:
                continue                     # the LAN's one notice covers its interfaces
            news = link.teller.tell(self._settled(link, fault, now), now, p.hold_down_s)
            if news is not None:
                kind = StepKind.TELL_DOWN if news else StepKind.TELL_UP
                steps.append(Step(kind, lan, node, link.reason))
        return steps

    def _settled(self, link: Link, fault: LanFault, now: float) -> bool | None:
        """Down long enough to be told (None: not yet, or unknown); False when up."""
        if link.status is L.UP:
            return False
        if link.status is L.DOWN:
            start = max(link.since, fault.recovered_at if fault.recovered_at is not None else link.since)
            return True if now - start >= self.policy.window_s else None
        return None

    def _judge(self, lan: Lan, fault: LanFault, links: dict[str, Link], now: float) -> list[Step]:
        p = self.policy
        if not fault.failed:
            recent = {node for node, link in links.items()
                      if link.status is L.DOWN and now - link.since < p.window_s}
            base = len(links) - sum(1 for link in links.values() if link.status is L.DOWN) + len(recent)
            if not recent or len(recent) < p.threshold(base):
                return []
            # not failed -> FAILED
            fault.failed, fault.members, fault.recovered_at = True, recent, None
            fault.reason = f"{len(recent)} of {base} interfaces went down within {p.window_s:g} s"
            return [Step(StepKind.LAN_FAILED, lan, "", fault.reason)]
        fault.members |= {node for node, link in links.items()
                          if link.status is L.DOWN and not link.teller.told_bad}
        still = sum(1 for node in fault.members if node in links and links[node].status is L.DOWN)
        if still >= p.threshold(len(fault.members)):
            return []
        # FAILED -> recovered
        back = len(fault.members) - still
        fault.reason = f"{back} of {len(fault.members)} interfaces that went down with it are back"
        fault.failed, fault.members, fault.recovered_at = False, set(), now
        return [Step(StepKind.LAN_RECOVERED, lan, "", fault.reason)]

    def _by_lan(self) -> dict[Lan, dict[str, Link]]:
        out: dict[Lan, dict[str, Link]] = {}
        for (node, lan), link in self._links.items():
            out.setdefault(lan, {})[node] = link
        return out

    # -- views -------------------------------------------------------------------------

    def status(self, key: IfKey) -> LinkStatus:
        link = self._links.get(key)
        return link.status if link is not None else L.UNKNOWN

    def view(self) -> list[IfView]:
        return [IfView(node, lan, link.status, link.since, link.sent, link.received, link.rtt_s)
                for (node, lan), link in self._links.items()]

    def summary(self) -> dict[Lan, LanSummary]:
        """Per LAN that has watched interfaces (or a standing failure): counts and the flag."""
        out = {}
        for lan, links in self._by_lan().items():
            count = {status: 0 for status in L}
            for link in links.values():
                count[link.status] += 1
            out[lan] = LanSummary(lan, len(links), count[L.UP], count[L.DOWN], count[L.UNKNOWN],
                                  self._lans[lan].failed)
        for lan, fault in self._lans.items():
            if fault.failed and lan not in out:
                out[lan] = LanSummary(lan, 0, 0, 0, 0, True)
        return out

    def sentence(self) -> str:
        """The round in one line, e.g. "lan_a 500/502 up, lan_b 0/502 up (failed)"."""
        parts = [f"{s.lan.key} {s.up}/{s.total} up" + (" (failed)" if s.failed else "")
                 for s in sorted(self.summary().values(), key=lambda s: s.lan)]
        return ", ".join(parts) or "no LAN interface watched"


def running_on(summary: Mapping[Lan, LanSummary]) -> Lan | None:
    """The one private LAN the cluster runs on ("LAN B only": LAN A is out, LAN B is not
    and has an interface up), or None: both work, both are out, or one is not watched."""
    a, b = summary.get(Lan.LAN_A), summary.get(Lan.LAN_B)
    if a is None or b is None:
        return None
    if a.out and not b.out and b.up:
        return Lan.LAN_B
    if b.out and not a.out and a.up:
        return Lan.LAN_A
    return None


def polls_here(poller: Poller, active: bool, peer_present: bool) -> bool:
    """Whether this head runs the LAN poller. `peer_present`: the other head exists and is
    heard. "standby": the standby, or the active head when there is no standby."""
    if poller is Poller.BOTH:
        return True
    if poller is Poller.ACTIVE:
        return active
    return not active or not peer_present
