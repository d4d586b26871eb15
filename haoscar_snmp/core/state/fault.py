"""The fault slices: the cluster, heads, heartbeat paths, the peer and link views, public
targets, LAN interfaces and LANs, aliases, services, events and alarms."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .enums import (
    AliasStatus,
    CheckKind,
    ClusterStatus,
    HeadRole,
    HeadStatus,
    Lan,
    LanSource,
    LanStatus,
    LinkStatus,
    PollerPolicy,
    PublicState,
    RecoveryAction,
    RowStatus,
    ServiceRung,
    ServiceStatus,
)
from .table import Table


@dataclass
class ClusterState:
    """Writer: the role state machine (fault/role/machine.py and report.py), or with the
    corosync backend fault/role/placed.py; start-up fields by the daemon; the lan_* fields
    (haoscarLans scalars): Writer: LAN poller."""

    name: str = ""
    status: ClusterStatus = ClusterStatus.UNKNOWN
    active_head: str = ""
    failover_count: int = 0
    last_failover_time: float = 0.0  # wall clock; 0 = never
    last_failover_duration_ms: int = 0
    last_failover_reason: str = ""
    local_head: str = ""
    agent_version: str = ""
    agent_start_time: float = 0.0
    lan_poller: str = ""            # the head that polls and reports the LANs now; "" = none yet
    lan_poller_policy: int = PollerPolicy.STANDBY   # PollerPolicy; configuration key lan.poller
    lan_state: str = ""             # one sentence: "lanA failed: running on lanB only; ..."


@dataclass(slots=True)
class HeadRow:
    """Writers: the configuration (the configured fields), the role state machine (this
    head's status and role changes), the heartbeat monitor (the peer's status) and
    fault/heartbeat/process.py (the peer's last heartbeat); with the corosync backend
    fault/role/placed.py (both heads' status and role changes)."""

    name: str
    preferred_role: HeadRole
    lan_a: str = ""
    lan_b: str = ""
    public: str = ""
    is_local: bool = False
    status: HeadStatus = HeadStatus.UNKNOWN
    last_heartbeat: float = 0.0
    role_changes: int = 0
    # Written by the public-reach job: targets reached (this head's by its own probes, the
    # peer's as it advertises them) and the verdict.
    public_reached: int = 0
    public_state: PublicState = PublicState.NOT_WATCHED


@dataclass(slots=True)
class HbPathRow:
    """Writer: the daemon's side of the heartbeat process (fault/heartbeat/process.py), copying the
    process's counters. Key: (head index, Lan)."""

    status: LinkStatus = LinkStatus.UNKNOWN
    sent: int = 0
    received: int = 0
    lost: int = 0
    rtt_us: int = 0
    last_heard: float = 0.0
    rejected: int = 0
    max_gap_us: int = 0   # longest time between two valid heartbeats while the path was up


@dataclass(frozen=True)
class PeerView:
    """Writer: the heartbeat. What the heartbeats say about the peer head, as one frozen
    snapshot: the role decision reads this and nothing else, and the MIB shows the same.

    Times are on the monotonic clock. `status`, `flags`, `generation` and `aliases` are
    as last heard, and are kept once the peer falls silent (they are what it was doing
    at the last contact)."""

    name: str
    preferred_primary: bool
    heard: bool = False                 # a valid heartbeat on some path within the dead time
    paths_up: frozenset[int] = frozenset()   # Lan values of the paths that are up
    status: HeadStatus = HeadStatus.UNKNOWN
    flags: int = 0
    generation: int = 0
    aliases: tuple[str, ...] = ()
    heard_since: float = 0.0            # start of the current contact
    silent_since: float = 0.0           # when it was last declared silent (0: never)
    ever_heard: bool = False
    # The peer's cluster-wide settings as its heartbeats advertise them: (version counter,
    # head that made the change, digest fingerprint); None while it has not advertised
    # any (not heard yet, or a release that does not).
    config: tuple[int, str, int] | None = None
    # The peer's public targets as its heartbeats advertise them: (watched, reached, mask of
    # those reached); None while it has not advertised them (not heard yet, or an earlier
    # release that does not).
    public: tuple[int, int, int] | None = None

    @property
    def private_up(self) -> bool:
        return bool(self.paths_up & {int(Lan.LAN_A), int(Lan.LAN_B)})

    @property
    def public_only(self) -> bool:
        return self.heard and not self.private_up


@dataclass(slots=True)
class PubTargetRow:
    """Writer: the public-reach job. Key: (head index, target index). One public target as
    a head reaches it: this head's rows from its own probes, the peer's from what its
    heartbeats advertise (state only)."""

    address: str
    status: LinkStatus = LinkStatus.UNKNOWN
    rtt_us: int = 0                 # this head's rows only
    last_change: float = 0.0        # wall clock; 0 = no change seen yet


@dataclass(frozen=True)
class PublicReach:
    """Writer: the public-reach job. What this head advertises of its public targets and
    what the role decision reads."""

    watched: int = 0
    reached: int = 0
    mask: int = 0                   # bit i: the i-th target is reached
    lost: str = ""                  # why this head counts as cut off from the public LAN ("" = not)
    lost_since: float = 0.0         # monotonic: since when (meaningful only while `lost`)


@dataclass(frozen=True)
class HbProcessView:
    """Writer: the heartbeat monitor. The daemon's word on its own heartbeat process,
    which reports at every heartbeat it sends: a process that falls silent (stopped,
    stuck in the kernel, a bug) or exits leaves this head deaf to its peer, so the head
    is unfit to hold an alias until a new process has run for a dead time."""

    silent: str = ""                       # why it is not reporting ("" = it is)
    restarts: int = 0                      # new processes started in this run of the daemon
    restarted_at: float = float("-inf")    # monotonic time the last new process was ready


@dataclass(frozen=True)
class LinkView:
    """Writer: the heartbeat (from netlink). Carrier of this head's own interfaces:
    the ones its LAN A and LAN B heartbeats leave from, and those that carry aliases."""

    lan_a: str = ""                     # interface names ("" until found)
    lan_b: str = ""
    public: str = ""                    # of the public heartbeat path, if there is one
    carrier: tuple[tuple[str, bool], ...] = ()

    def up(self, ifname: str) -> bool | None:
        """Carrier of one interface; None when it is not watched or not known yet."""
        return dict(self.carrier).get(ifname)

    @property
    def isolated(self) -> bool:
        """No carrier on either private heartbeat link (both known and both down)."""
        return bool(self.lan_a and self.lan_b) and self.up(self.lan_a) is False \
            and self.up(self.lan_b) is False

    def down_names(self) -> list[str]:
        return [name for name, up in self.carrier if not up]


@dataclass(slots=True)
class LanIfRow:
    """Config fields (node, lan, name, address): the configuration applier. The rest:
    Writer: LAN poller.

    Probe fields count what the poller named by `source` saw of the address; kernel fields
    (carrier and the packet, error and discard counters) are read for this head's own
    interfaces only and stay UNKNOWN / 0 for other nodes'. Times are wall clock (0 = never).
    """

    node: str
    lan: Lan
    name: str
    address: str = ""
    status: LinkStatus = LinkStatus.UNKNOWN
    in_packets: int = 0             # kernel
    out_packets: int = 0            # kernel
    last_change: float = 0.0        # of status
    probes_sent: int = 0            # echo requests sent to the address
    replies: int = 0                # echo replies, in time or late
    rtt_us: int = 0                 # of the last reply in time; 0 = none yet
    last_reply: float = 0.0
    probe_errors: int = 0           # send failures and ICMP errors about our requests
    last_error: str = ""            # the last of them, in words; at most 64 characters (MIB SIZE)
    carrier: LinkStatus = LinkStatus.UNKNOWN   # kernel, from netlink events
    in_errors: int = 0              # kernel
    out_errors: int = 0             # kernel
    in_discards: int = 0            # kernel
    out_discards: int = 0           # kernel
    source: LanSource = LanSource.NONE


@dataclass(slots=True)
class LanRow:
    """Writer: LAN poller. One private LAN as a whole (haoscarLanTable); key (Lan value,).
    The rows of LAN A and LAN B exist from the start (`State.lans`)."""

    status: LanStatus = LanStatus.UNKNOWN
    interfaces: int = 0             # haoscarLanIfTable rows on this LAN
    up: int = 0
    down: int = 0
    unknown: int = 0
    last_change: float = 0.0        # wall clock of the last status change; 0 = never


def private_lan_rows() -> Table[tuple[int], LanRow]:
    """haoscarLanTable as the agent starts: one unknown row per private LAN."""
    rows: Table[tuple[int], LanRow] = Table()
    for lan in (Lan.LAN_A, Lan.LAN_B):
        rows.put((int(lan),), LanRow())
    return rows


@dataclass(slots=True)
class AliasRow:
    """Config fields: configuration applier. Runtime fields: takeover job (with the
    corosync backend: fault/role/placed.py, from Pacemaker's placement)."""

    address: str
    prefix_length: int
    interface: str
    row_status: RowStatus = RowStatus.ACTIVE   # active, notInService or notReady
    owner: str = ""
    status: AliasStatus = AliasStatus.UNKNOWN
    garp_sent: int = 0


@dataclass(slots=True)
class ServiceRow:
    """Config fields: configuration applier. Runtime fields: service monitor."""

    name: str
    check: str
    restart: str = ""
    retry_threshold: int = 3
    recovery: int = 1  # MIB haoscarServiceRecovery value
    enabled: bool = True
    active_only: bool = False
    row_status: RowStatus = RowStatus.ACTIVE   # active, notInService or notReady
    check_type: CheckKind = CheckKind.COMMAND
    interval_ms: int = 0
    timeout_ms: int = 0
    rise: int = 1
    send: str = ""
    expect: str = ""
    max_restarts: int = 3
    restart_window_s: int = 300
    reset_after: int = 10
    flap_threshold: int = 5
    failure_timeout_s: int = 0
    restart_timeout_ms: int = 30000
    # runtime: the service monitor
    status: ServiceStatus = ServiceStatus.UNKNOWN
    restarts: int = 0
    consec_failures: int = 0
    last_failure: float = 0.0
    last_action: RecoveryAction = RecoveryAction.NONE
    rung: ServiceRung = ServiceRung.WATCHING
    restarts_in_window: int = 0
    last_reason: str = ""
    last_action_time: float = 0.0
    check_errors: int = 0
    check_timeouts: int = 0


@dataclass(frozen=True, slots=True)
class EventRow:
    """Writer: event history (fcaps/fault/history.py)."""

    time: float
    type: int
    subject: str
    severity: int
    text: str


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """Writer: alarm table (fcaps/fault/alarms.py)."""

    severity: int
    alarm_type: int
    probable_cause: int
    subject: str
    raised_time: float
    text: str
    last_updated: float = 0.0   # wall time of the row's last change (raise, severity, text)


class TargetStatus(enum.IntEnum):
    """Mirrors HAOSCAR-MIB haoscarAlarmTargetStatus."""

    REACHABLE = 1       # an inform target whose last answered inform was acknowledged
    UNREACHABLE = 2     # its last one was lost: it is being resynchronised
    UNKNOWN = 3         # a trap target: nothing is acknowledged


@dataclass(slots=True)
class AlarmTargetRow:
    """Writer: the notifier (haoscar_snmp/snmp/notify.py); haoscarAlarmTargetTable."""

    name: str
    inform: bool
    status: TargetStatus = TargetStatus.UNKNOWN
    sent: int = 0
    lost: int = 0
    resyncs: int = 0
    last_resync: float = 0.0     # monotonic; 0 = never (the view converts to sysUpTime ticks)


@dataclass(frozen=True)
class Claim:
    """Another host announcing one of our alias addresses on the public LAN."""

    mac: str
    first: float        # monotonic time of its first announcement in this run of them
    last: float         # monotonic time of its latest announcement


@dataclass
class QuorumState:
    """Writer: the quorum job (and a takeover, which runs the check once more)."""

    ok: bool = True          # True while no quorum command is configured
    checked: float = 0.0     # wall clock of the last check; 0 = never
    failures: int = 0

    def record(self, ok: bool, when: float) -> None:
        self.ok, self.checked = ok, when
        if not ok:
            self.failures += 1
