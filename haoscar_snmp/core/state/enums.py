"""The state's enumerations: each mirrors a HAOSCAR-MIB textual convention or
enumeration, with the MIB's values."""

from __future__ import annotations

import enum
from dataclasses import dataclass


def camel(name: str) -> str:
    """NOT_IN_SERVICE -> notInService, LAN_A -> lanA: an enum member as the MIB spells it."""
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


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
