"""The daemon's live state: the one model that jobs write and the SNMP view reads.

Every slice has exactly one writer, named in its docstring. The SNMP layer only reads,
at request time, from the same event loop as the writers, so a request always sees a
consistent state without locks. Enumerations mirror HAOSCAR-MIB values exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Generic, Iterator, TypeVar

K = TypeVar("K", bound=tuple)
R = TypeVar("R")


class ClusterStatus(enum.IntEnum):
    UNKNOWN = 1
    NORMAL = 2
    DEGRADED = 3
    FAILING_OVER = 4
    FAILED = 5
    SPLIT_BRAIN = 6


class HeadRole(enum.IntEnum):
    PRIMARY = 1
    STANDBY = 2


class HeadStatus(enum.IntEnum):
    UNKNOWN = 1
    STARTING = 2
    ACTIVE = 3
    STANDBY = 4
    FAILED = 5
    TAKING_OVER = 6
    RELEASING = 7


class Lan(enum.IntEnum):
    """A LAN of the cluster, as HAOSCAR-MIB numbers it (HaoscarLan). `label` is its name in
    the MIB (lanA), `key` its name in the configuration file (lan_a)."""

    LAN_A = 1
    LAN_B = 2
    PUBLIC = 3

    @property
    def label(self) -> str:
        return camel(self.name)

    @property
    def key(self) -> str:
        return self.name.lower()

    @classmethod
    def from_key(cls, text: str) -> "Lan":
        return cls[text.upper()]


class RowStatus(enum.IntEnum):
    """RFC 2579 RowStatus, with the MIB's values; `label` is its name there (notInService),
    which is also how the configuration and the overrides file write it."""

    ACTIVE = 1
    NOT_IN_SERVICE = 2
    NOT_READY = 3
    CREATE_AND_GO = 4
    CREATE_AND_WAIT = 5
    DESTROY = 6

    @property
    def label(self) -> str:
        return camel(self.name)

    @classmethod
    def from_label(cls, text: str) -> "RowStatus":
        for member in cls:
            if member.label == text:
                return member
        raise ValueError(f"{text!r} is not a RowStatus")


def camel(name: str) -> str:
    """NOT_IN_SERVICE -> notInService, LAN_A -> lanA: an enum member as the MIB spells it."""
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


class LinkStatus(enum.IntEnum):
    UNKNOWN = 1
    UP = 2
    DOWN = 3


class LanSource(enum.IntEnum):
    """HAOSCAR-MIB haoscarLanIfSource: whose probes a haoscarLanIfTable row shows."""

    NONE = 1            # not polled yet
    THIS_HEAD = 2
    PEER_HEAD = 3


class LanStatus(enum.IntEnum):
    """HAOSCAR-MIB haoscarLanStatus: a private LAN as a whole."""

    UNKNOWN = 1
    OK = 2              # none of its interfaces is down, and some are up
    DEGRADED = 3        # some are down, not enough together to make a LAN failure
    FAILED = 4          # a LAN failure stands: most of it went down together


class PublicState(enum.IntEnum):
    """HAOSCAR-MIB haoscarHeadPublicState: whether a head reaches the public LAN, by its
    public targets."""

    NOT_WATCHED = 1     # no public targets configured (or not advertised by the peer)
    UNKNOWN = 2         # not judged yet, or the head is not heard
    REACHED = 3         # it reaches at least one target
    LOST = 4            # it reaches none (or regained one less than the hold-down ago)


class PollerPolicy(enum.IntEnum):
    """HAOSCAR-MIB haoscarLanPollerPolicy; the members are named as the configuration's
    `lan.poller` values are (`PollerPolicy[poller.name]`)."""

    STANDBY = 1
    ACTIVE = 2
    BOTH = 3


class AliasStatus(enum.IntEnum):
    UNKNOWN = 1
    HELD = 2
    RELEASED = 3
    CONFLICT = 4


class ServiceStatus(enum.IntEnum):
    UNKNOWN = 1
    RUNNING = 2
    FAILED = 3
    RECOVERING = 4
    STOPPED = 5
    DISABLED = 6


class RecoveryAction(enum.IntEnum):
    NONE = 1
    RESTART = 2
    FAILOVER = 3
    NOTIFY = 4


class ControlAction(enum.IntEnum):
    NONE = 1
    SWITCHOVER = 2
    FAILBACK = 3
    RESET_COUNTERS = 4
    RESET_SERVICE = 5
    PULL_PEER_CONFIG = 6     # adopt the peer's cluster-wide settings now
    PUSH_LOCAL_CONFIG = 7    # make the peer take this head's cluster-wide settings


@dataclass(frozen=True)
class ServiceSelection:
    """haoscarControlServiceIndex was written: the service a resetService applies to."""

    index: int

    @property
    def name(self) -> str:        # as the audit line names an operator request
        return f"SELECT_SERVICE_{self.index}"


# What a SET of a haoscarControl object asks the operator-action handler to do.
OperatorRequest = ControlAction | ServiceSelection


class ServiceRung(enum.IntEnum):
    """Where a service stands on its recovery ladder (HAOSCAR-MIB haoscarServiceRung)."""

    WATCHING = 1
    RESTARTING = 2
    FAILOVER = 3
    OPERATOR = 4


class CheckKind(enum.IntEnum):
    """HAOSCAR-MIB haoscarServiceCheckType."""

    COMMAND = 1
    SYSTEMD_UNIT = 2
    PROCESS = 3
    TCP = 4
    UDP = 5
    HTTP = 6


class ControlResult(enum.IntEnum):
    NONE = 1
    IN_PROGRESS = 2
    SUCCEEDED = 3
    FAILED = 4
    REFUSED = 5


class Table(Generic[K, R]):
    """Rows keyed by their MIB index (a tuple of ints), with the sorted key order cached.

    The cache is invalidated only when rows are added or removed, so a walk over a large
    table costs one sort per change, not one per request.
    """

    def __init__(self) -> None:
        self._rows: dict[K, R] = {}
        self._sorted: list[K] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def get(self, key: K) -> R | None:
        return self._rows.get(key)

    def __getitem__(self, key: K) -> R:
        return self._rows[key]

    def put(self, key: K, row: R) -> None:
        if key not in self._rows:
            self._sorted = None
        self._rows[key] = row

    def remove(self, key: K) -> R | None:
        row = self._rows.pop(key, None)
        if row is not None:
            self._sorted = None
        return row

    def clear(self) -> None:
        self._rows.clear()
        self._sorted = None

    def keys(self) -> list[K]:
        if self._sorted is None:
            self._sorted = sorted(self._rows)
        return self._sorted

    def items(self) -> list[tuple[K, R]]:
        return [(k, self._rows[k]) for k in self.keys()]

    def values(self) -> list[R]:
        return [self._rows[k] for k in self.keys()]


@dataclass
class ClusterState:
    """Writer: the role state machine (fault/role/machine.py); start-up fields by the daemon; the
    lan_* fields (haoscarLans scalars): Writer: LAN poller."""

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


@dataclass
class HeadRow:
    """Writers: the configuration (the configured fields), the role state machine (this
    head's status and role changes), the heartbeat monitor (the peer's status) and
    fault/heartbeat/process.py (the peer's last heartbeat)."""

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


@dataclass
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


@dataclass
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


@dataclass
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


@dataclass
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


@dataclass
class AliasRow:
    """Config fields: configuration applier. Runtime fields: takeover job."""

    address: str
    prefix_length: int
    interface: str
    row_status: RowStatus = RowStatus.ACTIVE   # active, notInService or notReady
    owner: str = ""
    status: AliasStatus = AliasStatus.UNKNOWN
    garp_sent: int = 0


@dataclass
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


@dataclass(frozen=True)
class EventRow:
    """Writer: event history (fcaps/fault/history.py)."""

    time: float
    type: int
    subject: str
    severity: int
    text: str


@dataclass(frozen=True)
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


@dataclass
class AlarmTargetRow:
    """Writer: the notifier (haoscar_snmp/snmp/notify.py); haoscarAlarmTargetTable."""

    name: str
    inform: bool
    status: TargetStatus = TargetStatus.UNKNOWN
    sent: int = 0
    lost: int = 0
    resyncs: int = 0
    last_resync: float = 0.0     # monotonic; 0 = never (the view converts to sysUpTime ticks)


class AcctKind(enum.IntEnum):
    """HAOSCAR-MIB haoscarAcctSubjectType: what an accounting subject is."""

    CLUSTER = 1             # the cluster's service as clients see it: every alias held by some head
    HEAD = 2
    SERVICE = 3
    LAN_INTERFACE = 4
    HEARTBEAT_PATH = 5
    ALIAS = 6               # the service at one alias address: held by some head


@dataclass(frozen=True)
class AcctRow:
    """Writer: the accounting ledger (fcaps/accounting/rows.py). One subject over one
    window; key (subject index, window index). Times in seconds; `last_outage_start` is
    the ledger's time (wall-clock based, see fcaps/accounting/timeline.py), 0 = none."""

    kind: AcctKind
    subject: str
    outages: int = 0                # outages that began in the window
    downtime_s: int = 0
    monitored_s: int = 0
    availability_ppm: int = 1_000_000
    mttr_s: int = 0
    mtbf_s: int = 0
    last_outage_start: float = 0.0
    last_outage_duration_s: int = 0
    last_outage_cause: str = ""
    in_outage: bool = False


@dataclass(frozen=True)
class AcctWindowRow:
    """Writer: the accounting ledger. One configured window; key (window index,)."""

    name: str                       # as configured: "24h"
    length_s: int


@dataclass(frozen=True)
class AcctHeadline:
    """Writer: the accounting ledger. The cluster's figures over the longest window
    (haoscarPerfMttr, haoscarPerfMtbf, haoscarPerfAvailability)."""

    window: str = ""
    mttr_s: int = 0
    mtbf_s: int = 0
    availability_ppm: int = 1_000_000


@dataclass
class PerfState:
    """Writer: the performance figures (fcaps/performance/figures.py)."""

    failover_last_ms: int = 0
    failover_min_ms: int = 0
    failover_max_ms: int = 0
    failover_mean_ms: int = 0


class DurationKind(enum.IntEnum):
    """HAOSCAR-MIB haoscarPerfDurationKind: which takeover a duration measures."""

    FAILOVER = 1        # from a peer that was heard and fell silent
    FAILBACK = 2        # the preferred primary taking back from a standby that handed over


@dataclass
class DurationRow:
    """Writer: the performance figures (fcaps/performance/figures.py). Key (DurationKind,).
    All in milliseconds; 0 while none has completed."""

    count: int = 0
    last_ms: int = 0
    min_ms: int = 0
    max_ms: int = 0
    mean_ms: int = 0
    total_ms: int = 0        # for the mean (not shown)


@dataclass
class BucketRow:
    """Writer: the performance figures. Key (DurationKind, bucket number): how many
    durations d fell in lower_ms < d <= upper_ms (upper_ms 4294967295: no bound)."""

    lower_ms: int
    upper_ms: int
    count: int = 0


@dataclass
class HbPathPerfRow:
    """Writer: the performance collector (fcaps/performance/collector.py), from what the
    heartbeat process measured. Key as haoscarHbPathTable's: (head index, Lan)."""

    rtt_us: int = 0
    rtt_min_us: int = 0
    rtt_max_us: int = 0
    rtt_mean_us: int = 0
    jitter_us: int = 0
    replies: int = 0


@dataclass
class JobPerfRow:
    """Writer: the performance collector, from the scheduler's job samples. Key as
    haoscarJobTable's (job index,)."""

    cycles: int = 0
    total_us: int = 0
    mean_us: int = 0
    overruns: int = 0        # cycles that lasted longer than the job's interval


class FrontEnd(enum.IntEnum):
    """HAOSCAR-MIB haoscarPerfRequestFrontEnd: where SNMP requests come in."""

    STANDALONE = 1      # the agent's own UDP listeners
    AGENTX = 2          # the master agent, over AgentX


@dataclass
class RequestPerfRow:
    """Writer: the performance collector, from the front ends' meters. Key (FrontEnd,)."""

    served: int = 0
    dropped: int = 0
    total_us: int = 0
    mean_us: int = 0
    recent_max_us: int = 0   # worst handling time of the last seconds
    max_us: int = 0          # worst since start / resetCounters


@dataclass
class HbSendFigures:
    """Writer: the performance collector, from the heartbeat process's reports."""

    lag_us: int = 0          # worst lateness of a heartbeat send in the last report period
    lag_max_us: int = 0      # worst since the process started / resetCounters


@dataclass
class LoopFigures:
    """Writer: the loop-lag probe (fcaps/performance/looplag.py)."""

    lag_us: int = 0          # worst of the last seconds
    lag_max_us: int = 0      # worst since start / resetCounters


@dataclass
class HeartbeatFigures:
    """Writer: the heartbeat (its process measures, `heartbeat/process.py` copies in)."""

    rtt_us: int = 0
    jitter_us: int = 0


@dataclass
class JobRow:
    """Writer: the scheduler's job wrapper."""

    name: str
    runs: int = 0
    failures: int = 0
    last_duration_us: int = 0
    max_duration_us: int = 0
    last_run: float = 0.0
    last_result: str = ""


@dataclass
class SecurityCounters:
    """Writers: SNMP engine observer (snmp_*), heartbeat receiver (hb_*, malformed)."""

    snmp_auth_failures: int = 0
    snmp_set_accepted: int = 0
    snmp_set_rejected: int = 0
    hb_auth_failures: int = 0
    hb_replays: int = 0
    malformed_packets: int = 0
    # The latest heartbeat refused, as "<LAN>: <why>" (e.g. "lanA: wrong key"); the
    # security area names it in its events. "" = none since the heartbeat process started.
    hb_last_refused: str = ""


class AgentxStatus(enum.IntEnum):
    """The AgentX subagent's link to the master agent (haoscar_snmp/snmp/agentx/session.py)."""

    DISABLED = 1        # [snmp.agentx] enabled = false
    CONNECTING = 2      # connecting, opening the session, registering
    REGISTERED = 3      # serving our subtree through the master
    BACKOFF = 4         # waiting before the next attempt
    CLOSED = 5          # stopped (daemon shutdown)


@dataclass
class AgentxStats:
    """Writer: the AgentX subagent session; haoscarAgentx shows them (and describe())."""

    status: AgentxStatus = AgentxStatus.DISABLED
    master: str = ""
    session_id: int = 0
    connects: int = 0            # sessions opened and registered
    reconnects: int = 0          # of those, after a lost one
    failed_attempts: int = 0     # connects, opens or registrations that failed
    pdus_in: int = 0
    pdus_out: int = 0
    parse_errors: int = 0
    duplicates: int = 0          # retransmitted requests answered from the cache
    notifications_sent: int = 0
    notifications_dropped: int = 0
    last_error: str = ""


class ConfigSyncStatus(enum.IntEnum):
    """Mirrors haoscarConfigSyncStatus."""

    STANDALONE = 1      # no peer head configured
    UNKNOWN = 2         # the peer is not heard, or has not advertised its settings
    IN_SYNC = 3         # same digest
    MISMATCH = 4        # different digests, within the grace: the exchange is under way
    DRIFT = 5           # different for longer: the drift alarm is raised


@dataclass
class ConfigSyncStats:
    """Writer: the cluster configuration sync (fcaps/configuration/sync.py); haoscarConfigSync shows it."""

    status: ConfigSyncStatus = ConfigSyncStatus.STANDALONE
    version: int = 0
    version_head: str = ""
    digest: str = ""
    peer_version: int = 0
    peer_version_head: str = ""
    peer_fingerprint: str = ""
    differing: str = ""
    pushes: int = 0
    adoptions: int = 0
    refusals: int = 0
    unconfirmed: int = 0
    bad_messages: int = 0


@dataclass
class ControlState:
    """Writer: the operator-action handler."""

    result: ControlResult = ControlResult.NONE
    result_text: str = ""
    last_action: ControlAction = ControlAction.NONE
    last_time: float = 0.0
    service_index: int = 0      # the service resetService applies to (0: every one)


@dataclass
class EmailStats:
    """Writer: the mailer (fault/mailer.py)."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0
    last_error: str = ""
    last_sent: float = 0.0


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


@dataclass
class ConfigMeta:
    """Writer: the configuration applier."""

    last_changed: float = 0.0
    changes: int = 0


@dataclass
class State:
    """All slices, in one place. Passed to writers by slice, to the SNMP view whole."""

    cluster: ClusterState = field(default_factory=ClusterState)
    config_meta: ConfigMeta = field(default_factory=ConfigMeta)
    control: ControlState = field(default_factory=ControlState)
    heads: Table[tuple[int], HeadRow] = field(default_factory=Table)
    hb_paths: Table[tuple[int, int], HbPathRow] = field(default_factory=Table)
    peer: PeerView | None = None        # writer: heartbeat monitor (None: single head)
    links: LinkView = field(default_factory=LinkView)  # writer: heartbeat monitor
    # The heartbeat process fell silent and removed our aliases: the daemon did not answer
    # it in time. Writer: heartbeat monitor.
    hb_fenced: bool = False
    # Whether the heartbeat process reports in time (it may hang while the daemon runs).
    # Writer: heartbeat monitor.
    hb_process: HbProcessView = field(default_factory=lambda: HbProcessView())
    quorum: QuorumState = field(default_factory=QuorumState)
    # address -> the latest claim on one of our aliases by another host on the public
    # LAN. Writer: the alias guard.
    alias_claims: dict[str, Claim] = field(default_factory=dict)
    lan_ifs: Table[tuple[int], LanIfRow] = field(default_factory=Table)
    public_targets: Table[tuple[int, int], PubTargetRow] = field(default_factory=Table)
    public_reach: PublicReach = field(default_factory=lambda: PublicReach())
    # The next haoscarLanIfIndex never given in this run. Writer: the configuration applier.
    lan_if_next_index: int = 1
    lans: Table[tuple[int], LanRow] = field(default_factory=private_lan_rows)
    aliases: Table[tuple[int], AliasRow] = field(default_factory=Table)
    services: Table[tuple[int], ServiceRow] = field(default_factory=Table)
    events: Table[tuple[int], EventRow] = field(default_factory=Table)
    event_last_index: int = 0
    alarms: Table[tuple[int], AlarmRow] = field(default_factory=Table)
    alarm_last_changed: float = 0.0  # monotonic; the view converts to sysUpTime ticks
    alarm_targets: Table[tuple[int], AlarmTargetRow] = field(default_factory=Table)
    accounting: Table[tuple[int, int], AcctRow] = field(default_factory=Table)
    acct_windows: Table[tuple[int], AcctWindowRow] = field(default_factory=Table)
    acct_headline: AcctHeadline = field(default_factory=lambda: AcctHeadline())
    perf: PerfState = field(default_factory=PerfState)
    hb_figures: HeartbeatFigures = field(default_factory=HeartbeatFigures)
    loop: LoopFigures = field(default_factory=LoopFigures)
    # The performance area's figures (fcaps/performance): durations and their buckets
    # (writer: figures.py), the rest from the measurement channel (writer: collector.py).
    perf_durations: Table[tuple[int], DurationRow] = field(default_factory=Table)
    perf_buckets: Table[tuple[int, int], BucketRow] = field(default_factory=Table)
    perf_hb_paths: Table[tuple[int, int], HbPathPerfRow] = field(default_factory=Table)
    perf_jobs: Table[tuple[int], JobPerfRow] = field(default_factory=Table)
    perf_requests: Table[tuple[int], RequestPerfRow] = field(default_factory=Table)
    perf_hb_send: HbSendFigures = field(default_factory=HbSendFigures)
    jobs: Table[tuple[int], JobRow] = field(default_factory=Table)
    security: SecurityCounters = field(default_factory=SecurityCounters)
    agentx: AgentxStats = field(default_factory=AgentxStats)
    config_sync: ConfigSyncStats = field(default_factory=ConfigSyncStats)
    email: EmailStats = field(default_factory=EmailStats)
    # Why this head must not be made active while the peer can serve (a service's
    # recovery ladder handed the role over; "" = nothing). Writer: the service monitor.
    service_unfit: str = ""
    # Why the peer head counts as failed by the LAN poller's reckoning: every private LAN
    # interface of the peer down while this head's are up ("" = not so, or the rule is
    # off: failover.lan_failure_is_head_failure). Writer: the LAN poller.
    peer_lans_down: str = ""
