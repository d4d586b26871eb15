"""The performance slices: failover and failback durations, heartbeat, job and SNMP
request figures, the event loop's lag."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .enums import Lan


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
