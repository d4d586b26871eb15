"""The daemon's live state: the one model that jobs write and the SNMP view reads.

Every slice has exactly one writer, named in its docstring. The SNMP layer only reads,
at request time, from the same event loop as the writers, so a request always sees a
consistent state without locks. Enumerations mirror HAOSCAR-MIB values exactly.

The model lives in one module per area (fault, accounting, performance, the agent's own
slices), with the enumerations and `Table` beside them; every name is importable from
here, where `State` gathers the slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Every name of the model, importable from here (the modules below hold them by area).
from .accounting import (  # noqa: F401
    AcctHeadline,
    AcctKind,
    AcctRow,
    AcctWindowRow,
)
from .agent import (  # noqa: F401
    AgentxStats,
    AgentxStatus,
    ConfigMeta,
    ConfigSyncStats,
    ConfigSyncStatus,
    ControlState,
    EmailStats,
    SecurityCounters,
)
from .enums import (  # noqa: F401
    AliasStatus,
    camel,
    CheckKind,
    ClusterStatus,
    ControlAction,
    ControlResult,
    HeadRole,
    HeadStatus,
    Lan,
    LanSource,
    LanStatus,
    LinkStatus,
    OperatorRequest,
    PollerPolicy,
    PublicState,
    RecoveryAction,
    RowStatus,
    ServiceRung,
    ServiceSelection,
    ServiceStatus,
)
from .fault import (  # noqa: F401
    AlarmRow,
    AlarmTargetRow,
    AliasRow,
    Claim,
    ClusterState,
    EventRow,
    HbPathRow,
    HbProcessView,
    HeadRow,
    LanIfRow,
    LanRow,
    LinkView,
    PeerView,
    PubTargetRow,
    PublicReach,
    QuorumState,
    ServiceRow,
    TargetStatus,
    private_lan_rows,
)
from .membership import (  # noqa: F401
    ClusterLinkRow,
    ClusterNodeRow,
    MembershipState,
    ResourceRow,
)
from .performance import (  # noqa: F401
    BucketRow,
    DurationKind,
    DurationRow,
    FrontEnd,
    HbPathPerfRow,
    HbSendFigures,
    HeartbeatFigures,
    JobPerfRow,
    JobRow,
    LoopFigures,
    PerfState,
    RequestPerfRow,
)
from .table import Table  # noqa: F401


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
    # The cluster past two heads (haoscarMembership). Writer: the cluster watch.
    membership: MembershipState = field(default_factory=MembershipState)
    cluster_nodes: Table[tuple[int], ClusterNodeRow] = field(default_factory=Table)
    cluster_links: Table[tuple[int, int], ClusterLinkRow] = field(default_factory=Table)
    resources: Table[tuple[int], ResourceRow] = field(default_factory=Table)
    # Why this head must not be made active while the peer can serve (a service's
    # recovery ladder handed the role over; "" = nothing). Writer: the service monitor.
    service_unfit: str = ""
    # Why the peer head counts as failed by the LAN poller's reckoning: every private LAN
    # interface of the peer down while this head's are up ("" = not so, or the rule is
    # off: failover.lan_failure_is_head_failure). Writer: the LAN poller.
    peer_lans_down: str = ""
