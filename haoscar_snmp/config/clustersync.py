"""Which head's cluster-wide settings win, what is dangerous while the heads differ, and
when a difference becomes an alarm.

Each head advertises the version and digest of its cluster-wide settings
(`cluster.py`). The version is a counter raised at every change, with the name of the
head that made it: two heads that both changed something from the same version hold
versions with the same counter, and the head name orders them, so any two versions
compare the same way on both heads. `merge` says what this head does on reading the
peer's advertisement; `cross_head_problems` says what goes wrong while the heads run
different settings; `stage_timing` says how a heartbeat-timing change goes from one
timing to another on both heads without a moment where they misjudge each other;
`DriftTracker` raises the drift alarm when the heads still differ after a few
heartbeats. Pure: times are monotonic seconds passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from haoscar_snmp.config.cluster import cluster_wide, differences, section
from haoscar_snmp.config.schema import Config, Poller


@dataclass(frozen=True, order=True)
class Version:
    """A change counter and the head that made the change; compared counter first, then name.

    `Version()` (0, "") is the file as loaded, before any change was exchanged."""

    counter: int = 0
    head: str = ""

    def __str__(self) -> str:
        return f"{self.counter}@{self.head}" if self.head else str(self.counter)


def bump(version: Version, head: str) -> Version:
    """The version of a change `head` makes to settings at `version` (a SET, a reload)."""
    return Version(version.counter + 1, head)


@dataclass(frozen=True)
class Advert:
    """What a head advertises: its name, and the version and digest of its settings."""

    head: str
    version: Version
    digest: str


class Outcome(enum.StrEnum):
    EQUAL = "equal"                # same settings: nothing to do
    ADOPT_PEER = "adopt-peer"      # the peer's are newer: take them
    PUSH_LOCAL = "push-local"      # ours are newer: the peer takes them
    CONFLICT = "conflict"          # same version, different settings: the tiebreak decides


@dataclass(frozen=True)
class Merge:
    """The decision: `adopt` is whether this head takes the peer's settings now;
    `version` is the version this head holds afterwards (the peer's when it adopts, also
    when something could not be adopted: the drift alarm then names what still differs)."""

    outcome: Outcome
    adopt: bool
    version: Version
    why: str


def merge(local: Advert, peer: Advert) -> Merge:
    """What this head does with the peer's advertisement.

    The newer version wins. Same digest: nothing to adopt, and the higher version is
    kept by both, so the next change counts on from it. Same version with different
    digests (both heads started from files that differ, or one lost its state
    directory) is a CONFLICT that the head whose name sorts first wins: it is the head
    both MIBs show as haoscarHeadIndex 1, both heads reach that answer from the two
    advertisements alone, and it depends on no setting that may itself be in conflict
    (two files may each make their own head primary) nor on roles, which may change
    while the heads disagree. The other head adopts; nothing is bumped, so the two
    then hold the same version and digest.
    """
    if local.digest == peer.digest:
        return Merge(Outcome.EQUAL, False, max(local.version, peer.version), "same settings")
    if peer.version > local.version:
        return Merge(Outcome.ADOPT_PEER, True, peer.version,
                     f"{peer.head} has newer settings ({peer.version} > {local.version})")
    if local.version > peer.version:
        return Merge(Outcome.PUSH_LOCAL, False, local.version,
                     f"this head has newer settings ({local.version} > {peer.version})")
    winner = min(local.head, peer.head)
    return Merge(Outcome.CONFLICT, winner == peer.head, local.version,
                 f"different settings at the same version {local.version}: {winner}'s win "
                 f"(the head whose name sorts first)")


# ---------------------------------------------------------------------------------------
# What is dangerous while the heads differ

Problem = tuple[str, str]


def cross_head_problems(proposed: Config, peer: Mapping[str, Any]) -> list[Problem]:
    """What goes wrong while this head runs `proposed` and the peer still runs `peer`
    (its cluster-wide settings as advertised): the window before a change reaches the
    peer, or for as long as the peer cannot take it. Each problem names the key of
    `proposed` to blame (the SET path answers inconsistentValue)."""
    mine = cluster_wide(proposed)
    theirs = section(peer, "timing")
    problems = timing_problems(section(mine, "timing"), theirs)
    poll, down = theirs.get("lan_poll_interval_ms"), theirs.get("lan_down_after_ms")
    if isinstance(poll, int) and isinstance(down, int) and down < 2 * poll:
        problems.append(("timing.lan_down_after_ms",
                         (f"the peer's lan_down_after_ms {down} is below 2 x its lan_poll_interval_ms "
                          f"= {2 * poll}: it would find interfaces down between two polls")))
    problems += _poller_problems(proposed.lan.poller, section(peer, "lan").get("poller"))
    for key, why in (
            ("cluster.name", "the peer belongs to another cluster"),
            ("heartbeat.port", "each head would beat to a port the other does not listen on"),
            ("heartbeat.public_path", ("one head would hear the other on the public LAN but not be "
                                       "heard there, and take over during a private-LAN partition"))):
        part, name = key.split(".")
        here, there = mine.get(part, {}).get(name), section(peer, part).get(name)
        if there is not None and here != there:
            problems.append((key, f"{here!r} here, {there!r} on the peer: {why}"))
    if "heads" in peer:
        for key in differences({"heads": mine.get("heads", [])}, {"heads": peer["heads"]}):
            problems.append((key, ("differs on the peer: both heads must describe the same pair "
                                   "(names, preferred roles, addresses)")))
    return problems


def timing_problems(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[Problem]:
    """What goes wrong while this head runs the heartbeat timing `mine` and the other head
    `theirs` (two `[timing]` sections): each head declares the other dead after its own
    dead time, so each dead time must cover three of the other head's beats. These are
    the only relations between two heads' timings: every other timing (initdead, the LAN
    poll and its down time, the service checks, failback, gratuitous ARP) is judged by
    each head against its own values alone. A value that is not an integer is skipped."""
    problems: list[Problem] = []
    interval, dead = _ms(mine, "heartbeat_interval_ms"), _ms(mine, "heartbeat_dead_time_ms")
    their_interval, their_dead = _ms(theirs, "heartbeat_interval_ms"), _ms(theirs, "heartbeat_dead_time_ms")
    if dead is not None and their_interval is not None and dead < 3 * their_interval:
        problems.append(("timing.heartbeat_dead_time_ms",
                         (f"must be >= 3 x the peer's heartbeat_interval_ms = {3 * their_interval} "
                          f"(got {dead}): this head would declare the peer dead "
                          f"after fewer than three of its beats")))
    if interval is not None and their_dead is not None and 3 * interval > their_dead:
        problems.append(("timing.heartbeat_interval_ms",
                         (f"must be <= a third of the peer's heartbeat_dead_time_ms = {their_dead // 3} "
                          f"(got {interval}): the peer would declare this head dead "
                          f"after fewer than three of its beats")))
    return problems


def _ms(timing: Mapping[str, Any], key: str) -> int | None:
    value = timing.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _poller_problems(mine: Poller, theirs: Any) -> list[Problem]:
    """Nobody tells of LAN faults when, in some assignment of roles, neither head polls."""
    try:
        peer_poller = Poller(theirs)
    except ValueError:
        return []
    for here_active in (True, False):
        if not _reports(mine, here_active) and not _reports(peer_poller, not here_active):
            role = "active" if here_active else "standby"
            return [("lan.poller", (f'"{mine.value}" here and "{peer_poller.value}" on the peer: '
                                    f"while this head is {role}, neither head reports LAN faults"))]
    return []


def _reports(poller: Poller, active: bool) -> bool:
    # fcaps/fault/lan/watch.py polls_here() with the peer present.
    return poller is Poller.BOTH or (poller is Poller.ACTIVE) == active


# ---------------------------------------------------------------------------------------
# Changing the heartbeat timing on both heads

# What the first step of a staged change sets; every other key goes to its new value at once.
STAGED_KEYS = ("heartbeat_interval_ms", "heartbeat_dead_time_ms", "initdead_ms")
# Added to the longest old interval before a dead time falls: the heartbeat process's and
# the role machine's timers, a busy interpreter, the datagram's way to the other head.
STAGE_MARGIN_S = 0.25


@dataclass(frozen=True)
class Stage:
    """A heartbeat-timing change that goes through an intermediate timing on both heads.

    `intermediate` holds the STAGED_KEYS for step 1: the longest dead time and start-up
    wait and the shortest interval of the old and new timings (both heads' old ones,
    when they differ). Every mix of an old, the intermediate and the new timing between
    the two heads is then safe (`timing_problems` finds nothing): with old and new each
    valid (dead >= 3 x interval), the intermediate dead time is at least every dead
    time, so at least three of any of the intervals, and its interval at most every
    interval, so at most a third of any of the dead times. It is valid on its own too
    (initdead >= dead time, since each initdead covers its own dead time).

    `settle_s`: how long step 2 waits after step 1, when step 1 sped the beat up and
    step 2 lowers a dead time. A head takes a new interval at its next beat, which was
    planned under the old interval (so is the role machine's next cycle, the daemon's
    sign of life to its heartbeat process): until the longest old interval has passed,
    the faster beat is not yet on the wire and the lower dead time must wait.
    """

    intermediate: dict[str, int]
    settle_s: float


def stage_timing(old: Mapping[str, Any], new: Mapping[str, Any],
                 peer: Mapping[str, Any] | None = None) -> Stage | None:
    """How a change of this head's `[timing]` from `old` to `new` is applied on both
    heads; `peer` is the other head's timing as known, when it may differ from `old`.

    None: one step is safe, because while one head already runs `new` and the other
    still its old timing, neither misjudges the other. Otherwise a `Stage`: step 1 applies
    the intermediate timing on both heads, step 2 the new one."""
    before = [old] + ([peer] if peer is not None and _valid_timing(peer) else [])
    if not _valid_timing(old) or not _valid_timing(new):
        return None                  # not a timing the rules accepted: nothing to stage
    if not any(timing_problems(new, t) for t in before):
        return None
    every = before + [new]
    intermediate = {
        "heartbeat_interval_ms": min(t["heartbeat_interval_ms"] for t in every),
        "heartbeat_dead_time_ms": max(t["heartbeat_dead_time_ms"] for t in every),
        "initdead_ms": max(t["initdead_ms"] for t in every),
    }
    longest = max(t["heartbeat_interval_ms"] for t in before)
    sped_up = intermediate["heartbeat_interval_ms"] < longest
    settle = longest / 1000.0 + STAGE_MARGIN_S \
        if sped_up and new["heartbeat_dead_time_ms"] < intermediate["heartbeat_dead_time_ms"] else 0.0
    return Stage(intermediate, settle)


def _valid_timing(timing: Mapping[str, Any]) -> bool:
    return all(_ms(timing, key) is not None for key in STAGED_KEYS)


# ---------------------------------------------------------------------------------------
# Drift


class DriftState(enum.StrEnum):
    IN_SYNC = "in-sync"        # same digest (or no peer heard yet)
    MISMATCH = "mismatch"      # different digests, for less than the grace: adoption under way
    DRIFT = "drift"            # different for longer: the alarm is raised


@dataclass(frozen=True)
class DriftTransition:
    """One change of state, with the sentence to log (and, for DRIFT, the alarm's text)."""

    old: DriftState
    new: DriftState
    text: str


DRIFT_BEATS = 5        # heartbeats a difference may last (time to fetch and adopt) before the alarm
_NAMED_KEYS = 5        # keys named in the alarm's text; the rest are counted


class DriftTracker:
    """Whether the heads' cluster-wide settings differ for longer than `beats` heartbeats.

    Call `observe` at each heartbeat from the peer (and at each cycle) with a monotonic
    `now`. The grace is `beats` x `interval_s`: pass the longer of the two heads'
    heartbeat intervals, since the interval may be what differs. Time without news of
    the peer does not count towards the grace, and a raised alarm stays raised until
    the digests are seen to agree.
    """

    def __init__(self, beats: int = DRIFT_BEATS) -> None:
        assert beats >= 1
        self.beats = beats
        self.state = DriftState.IN_SYNC
        self.since: float | None = None       # when the current difference was first seen
        self.differing: tuple[str, ...] = ()

    def observe(self, now: float, interval_s: float, local_digest: str, peer_digest: str | None,
                differing: Sequence[str] = ()) -> DriftTransition | None:
        """`peer_digest` None: the peer is not heard. `differing`: the keys that differ,
        when the peer's settings are known (`cluster.differences`)."""
        if peer_digest is None:
            self.since = None
            return None
        if peer_digest == local_digest:
            self.since, self.differing = None, ()
            if self.state is DriftState.MISMATCH:
                # MISMATCH -> IN_SYNC: adopted (or pushed) within the grace.
                return self._go(DriftState.IN_SYNC, "cluster-wide settings agree with the peer's again")
            if self.state is DriftState.DRIFT:
                # DRIFT -> IN_SYNC: the alarm clears.
                return self._go(DriftState.IN_SYNC, "cluster-wide settings agree with the peer's again: "
                                                    "drift cleared")
            return None
        if differing:
            self.differing = tuple(differing)
        if self.since is None:
            self.since = now
        if self.state is DriftState.IN_SYNC:
            # IN_SYNC -> MISMATCH: a change on one head, or a head that started with other settings.
            return self._go(DriftState.MISMATCH, "cluster-wide settings differ from the peer's "
                                                 f"({self._keys()}); waiting for them to be exchanged")
        if self.state is DriftState.MISMATCH and now - self.since > self.beats * interval_s:
            # MISMATCH -> DRIFT: not settled within `beats` heartbeats.
            return self._go(DriftState.DRIFT, f"cluster-wide settings differ from the peer's for "
                                              f"{now - self.since:.1f} s (more than {self.beats} heartbeats): "
                                              f"{self._keys()}")
        return None

    def _go(self, new: DriftState, text: str) -> DriftTransition:
        assert new is not self.state, (self.state, new)
        transition = DriftTransition(self.state, new, text)
        self.state = new
        return transition

    def _keys(self) -> str:
        if not self.differing:
            return "which keys is not known yet (the peer's settings have not been received)"
        named = ", ".join(self.differing[:_NAMED_KEYS])
        rest = len(self.differing) - _NAMED_KEYS
        return named + (f" and {rest} more" if rest > 0 else "")
