"""The accounting slices: the outage ledger's figures per subject and window."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AcctKind(enum.IntEnum):
    """HAOSCAR-MIB haoscarAcctSubjectType: what an accounting subject is."""

    CLUSTER = 1             # the cluster's service as clients see it: every alias held by some head
    HEAD = 2
    SERVICE = 3
    LAN_INTERFACE = 4
    HEARTBEAT_PATH = 5
    ALIAS = 6               # the service at one alias address: held by some head
    # A cluster past two heads (the corosync membership backend), from haoscarMembership:
    CLUSTER_NODE = 7        # a node of Corosync's nodelist: a member of the membership
    QUORUM = 8              # the cluster's quorum: this partition quorate
    RESOURCE = 9            # a Pacemaker resource: active on some node, not failed
    MEMBERSHIP_VIEW = 10    # Corosync or Pacemaker as this agent reads them: the agent blind


@dataclass(slots=True)
class AcctRow:
    """Writer: the accounting ledger (fcaps/accounting/rows.py). One subject over one
    window; key (subject index, window index). Times in seconds; `last_outage_start` is
    the ledger's time (wall-clock based, see fcaps/accounting/timeline.py), 0 = none.

    Updated in place when the figures are recomputed (every few seconds, thousands of
    rows): new rows each time would outlive the collector's young generations and bring
    its full collections sooner. The writer sets all the figures of a row without
    handing the loop back, so a reader never sees half of an update."""

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


@dataclass(frozen=True, slots=True)
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
