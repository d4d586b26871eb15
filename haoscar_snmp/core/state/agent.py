"""The agent's own slices: security counters, AgentX, the settings exchange, operator
control, e-mail and the configuration's metadata."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .enums import ControlAction, ControlResult


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


@dataclass
class ConfigMeta:
    """Writer: the configuration applier."""

    last_changed: float = 0.0
    changes: int = 0
