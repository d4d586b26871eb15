"""How the heads watch and decide: [timing], [heartbeat], [lan], [failover], and this
head's [accounting] and [log] (models re-exported by `schema.py`).

Each field carries its classification (`keys.py`): cluster-wide or per-head, applied
live or restart-only. The reasons are given by the fields; `docs/operations.md` lists
them for the operator.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from haoscar_snmp.config.keys import CLUSTER_LIVE, CLUSTER_RESTART, PER_HEAD_LIVE, Key
from haoscar_snmp.config.values import (
    ConfigPath,
    FrozenModel,
    IpAddress,
    Port,
    Text,
    WithSecrets,
)

# At most this many public targets: the heartbeats carry which ones a head reaches as a
# 32-bit mask.
MAX_PUBLIC_TARGETS = 32

# The fastest heartbeat timing measured to hold (no false failover, worst gap 22 ms) with
# both heads' CPUs saturated by SNMP walks and junk datagrams (bench/bench_flood.py,
# docs/benchmarks.md). Faster timings are accepted with a warning.
TIMING_FLOOR_INTERVAL_MS = 20
TIMING_FLOOR_DEAD_TIME_MS = 60


class Poller(enum.StrEnum):
    """Which head pings the LAN interfaces."""

    STANDBY = "standby"      # the standby; the active head while there is no standby
    ACTIVE = "active"        # the active head only
    BOTH = "both"            # each head, on its own


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class TimingConfig(FrozenModel):
    """Every timing is cluster-wide: a head beating slower than the other's dead time
    allows is declared dead for nothing, and the failback policy, gratuitous ARP and the
    LAN and service defaults must act alike whichever head is active. All are read at
    every cycle, so a reload applies them (the heartbeat process is sent the new ones)."""

    heartbeat_interval_ms: Annotated[int, Field(ge=10, le=60000), CLUSTER_LIVE] = 5000
    heartbeat_dead_time_ms: Annotated[int, Field(ge=30, le=600000), CLUSTER_LIVE] = 15000
    initdead_ms: Annotated[int, Field(ge=0, le=3600000), CLUSTER_LIVE] = 30000
    lan_poll_interval_ms: Annotated[int, Field(ge=100, le=3600000), CLUSTER_LIVE] = 5000
    lan_down_after_ms: Annotated[int, Field(ge=300, le=86400000), CLUSTER_LIVE] = 15000
    service_check_interval_ms: Annotated[int, Field(ge=100, le=3600000), CLUSTER_LIVE] = 10000
    service_retry_threshold: Annotated[int, Field(ge=1, le=100), CLUSTER_LIVE] = 3
    auto_failback: Annotated[bool, CLUSTER_LIVE] = True
    failback_delay_s: Annotated[int, Field(ge=0, le=86400), CLUSTER_LIVE] = 0
    garp_count: Annotated[int, Field(ge=0, le=100), CLUSTER_LIVE] = 5
    garp_repeat_ms: Annotated[int, Field(ge=0, le=60000), CLUSTER_LIVE] = 1000
    # While active, announce each alias (one gratuitous ARP) this often, so that a second
    # holder on the public LAN is seen and settled; 0 = only at takeover.
    alias_announce_ms: Annotated[int, Field(ge=0, le=60000), CLUSTER_LIVE] = 1000


class HeartbeatConfig(WithSecrets):
    # The heads must send to the port the other listens on. Restart-only: the sockets.
    port: Annotated[Port, CLUSTER_RESTART] = 7789
    # The key's path is local. A reload rotates the key (both keys are accepted until
    # the peer has the new one).
    key_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    # Also send heartbeats over the public LAN (both heads need a `public` address). The
    # public path only arbitrates: a peer heard there is alive, so nobody takes over.
    # Both heads or neither: one that hears the other there while the other does not
    # hear it would take over during a private-LAN partition. Restart-only: the sockets.
    public_path: Annotated[bool, CLUSTER_RESTART] = True

    # The key bytes must be equal on both heads, but they are per-head: never exchanged,
    # digested or hashed. Every authenticated heartbeat already proves the heads share a
    # key (and during a rotation they legitimately hold two), and an unkeyed hash of the
    # key would give an eavesdropper something to guess against. A reload compares them
    # by digest, as any secret.
    FILE_KEYS: ClassVar[dict[str, Key]] = {"key": PER_HEAD_LIVE}

    @property
    def key(self) -> bytes | None:
        """The HMAC key read from key_file (raw bytes, nothing stripped), once loaded."""
        return self._resolved.get("key")


class LanConfig(FrozenModel):
    """How the LAN poller judges interfaces and LANs (fcaps/fault/lan/watch.py). The poll
    interval and the down-after time are in [timing] (haoscarLanPollInterval and
    haoscarLanDownAfter); these are file-only.

    Cluster-wide and live, as the watched interfaces: a role change hands the reporting
    to the other head, which must judge alike."""

    # Replies in a row before a down interface is up again (a flapping link stays down).
    rise: Annotated[int, Field(ge=1, le=100), CLUSTER_LIVE] = 3
    # At most one down and one up notification per interface (and per LAN) in this time;
    # the state is always current, and the final state is always told. 0 = no hold-down.
    hold_down_ms: Annotated[int, Field(ge=0, le=86400000), CLUSTER_LIVE] = 60000
    # A LAN has failed when, within two poll intervals, this share of its interfaces that
    # were not already down went down, and at least failure_min_interfaces of them.
    failure_percent: Annotated[int, Field(ge=1, le=100), CLUSTER_LIVE] = 50
    failure_min_interfaces: Annotated[int, Field(ge=1, le=65535), CLUSTER_LIVE] = 2
    poller: Annotated[Poller, CLUSTER_LIVE] = Poller.STANDBY


class FailoverConfig(FrozenModel):
    """How a standby decides it may take over (see docs/failover.md for the trade-offs).
    Everything here is applied live: the commands are read at use, the rest at every cycle."""

    # Run before taking the alias from a peer declared dead (e.g. power it off through its
    # BMC, as HA-OSCAR did); takeover happens only if it exits 0. "" = no fencing.
    # Per-head: it powers off the *other* head, so it differs by nature.
    fence_command: Annotated[Text, Field(max_length=255), PER_HEAD_LIVE] = ""
    # Must exit 0 for this head to become active (e.g. "ping -c1 -W1 <public gateway>"), so
    # a head cut off from everything does not take over. "" = no quorum check.
    # Per-head: it tests this head's own reachability.
    quorum_command: Annotated[Text, Field(max_length=255), PER_HEAD_LIVE] = ""
    # Per-head, as the two commands it bounds.
    command_timeout_ms: Annotated[int, Field(ge=100, le=600000), PER_HEAD_LIVE] = 10000
    # How often the quorum command runs while nothing happens, so that the heads know
    # each other's quorum (advertised in the heartbeats) before they need it. Per-head,
    # as the command.
    quorum_interval_ms: Annotated[int, Field(ge=1000, le=3600000), PER_HEAD_LIVE] = 5000
    # The active head counts as failed when the LAN poller finds all its private
    # interfaces down while the standby reaches the LANs (fcaps/fault/lan/poller.py).
    # Cluster-wide: one decision taken by the pair (the standby accuses, the active head
    # hands over).
    lan_failure_is_head_failure: Annotated[bool, CLUSTER_LIVE] = False
    # Addresses on the public LAN (the gateway, a router, a few clients) that each head
    # pings to know whether clients can reach it (fcaps/fault/role/publicreach.py): an active
    # head that reaches none of them while the standby reaches one hands the alias over.
    # () = not watched. This and the four below are cluster-wide: the heads compare what
    # each reaches of the same targets, by position in the list (the heartbeats carry a
    # mask over it), and judge them alike.
    public_targets: Annotated[tuple[IpAddress, ...], Field(max_length=MAX_PUBLIC_TARGETS), CLUSTER_LIVE] = ()
    public_probe_interval_ms: Annotated[int, Field(ge=100, le=60000), CLUSTER_LIVE] = 1000
    # Probes answered in a row for a target to count as reached, unanswered for down.
    public_rise: Annotated[int, Field(ge=1, le=10), CLUSTER_LIVE] = 2
    public_fall: Annotated[int, Field(ge=1, le=10), CLUSTER_LIVE] = 3
    # A head that lost the public LAN counts as having it back only after reaching a
    # target for this long: a flapping link does not move the service back and forth.
    public_hold_down_ms: Annotated[int, Field(ge=0, le=3600000), CLUSTER_LIVE] = 10000


# A length of time as the [accounting] section writes it: a whole number and a unit,
# s, m, h, d or w ("24h", "7d"); parsed to seconds.
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhdw])")


def duration_seconds(text: str) -> int:
    """"24h" -> 86400. Raises ValueError with the rule when the text is not a duration."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write a whole number and a unit "
                         f"(s, m, h, d or w), e.g. \"24h\" or \"30d\"")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _duration(text: str) -> str:
    duration_seconds(text)
    return text.strip()


Duration = Annotated[str, AfterValidator(_duration)]
MAX_ACCT_WINDOWS = 8            # haoscarAcctWindowIndex is 1..8


class AccountingConfig(FrozenModel):
    """The outage ledger (fcaps/accounting): over which windows availability, MTTR and
    MTBF are computed, how long outages are kept, and how often the ledger marks that
    the agent is alive (an outage open at a crash is closed at the last mark).

    Per-head and live: each head keeps its own ledger, from what it saw."""

    # Each window is the time up to now over which the figures are computed; the MIB has
    # one haoscarAcctTable row per subject and window, and haoscarPerfAvailability,
    # haoscarPerfMttr and haoscarPerfMtbf show the cluster's figures over the longest.
    windows: Annotated[tuple[Duration, ...], Field(min_length=1, max_length=MAX_ACCT_WINDOWS),
                       PER_HEAD_LIVE] = ("24h", "7d", "30d")
    # Outages and runs that ended longer ago than this are deleted; at least the longest
    # window, so that every window is computed from whole data (rules.py checks both).
    retention: Annotated[Duration, PER_HEAD_LIVE] = "400d"
    # How often the ledger writes its last-alive mark (at most this much of an outage
    # open at a crash, or of the agent's own downtime, is unknown).
    mark_interval_s: Annotated[int, Field(ge=1, le=300), PER_HEAD_LIVE] = 10

    @property
    def window_seconds(self) -> tuple[int, ...]:
        return tuple(duration_seconds(w) for w in self.windows)

    @property
    def retention_seconds(self) -> int:
        return duration_seconds(self.retention)


class LogConfig(FrozenModel):
    """Per-head: this machine's journal. A reload sets logging up again."""

    level: Annotated[LogLevel, PER_HEAD_LIVE] = LogLevel.INFO
    syslog: Annotated[bool, PER_HEAD_LIVE] = False
