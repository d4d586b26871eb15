"""The cluster's members and what it serves: [cluster], [[heads]], the watched LAN
interfaces and nodes, [[aliases]] and [[services]] (models re-exported by `schema.py`).

Each field carries its classification (`keys.py`): cluster-wide or per-head, applied
live or restart-only. The reasons are given by the fields; `docs/operations.md` lists
them for the operator.
"""

from __future__ import annotations

import enum
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    model_validator,
)

from haoscar_snmp.config.checkspec import CheckSpec, CheckSpecError, CheckType
from haoscar_snmp.config.checkspec import parse as parse_check
from haoscar_snmp.config.keys import CLUSTER_LIVE, CLUSTER_RESTART, PER_HEAD_RESTART
from haoscar_snmp.config.values import (
    FrozenModel,
    IfName,
    IpAddress,
    NodeName,
    RowIndex,
    StateDir,
    Text,
)
from haoscar_snmp.core.state import Lan, RowStatus


class Role(enum.StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"


class Recovery(enum.StrEnum):
    RESTART_THEN_FAILOVER = "restart-then-failover"
    RESTART_THEN_NOTIFY = "restart-then-notify"
    NOTIFY_ONLY = "notify-only"


def _lan(value: object) -> Lan:
    if isinstance(value, Lan):
        return value
    if isinstance(value, str) and value in {lan.key for lan in Lan}:
        return Lan.from_key(value)
    raise ValueError('must be "lan_a", "lan_b" or "public"')


def _row_status(value: object) -> RowStatus:
    """Only these two survive in a file: notReady rows live in memory until complete."""
    if isinstance(value, RowStatus) and value in (RowStatus.ACTIVE, RowStatus.NOT_IN_SERVICE):
        return value
    if value in ("active", "notInService"):
        return RowStatus.from_label(str(value))
    raise ValueError('must be "active" or "notInService"')


# One encoding each (core.state): the file writes the names, the MIB the numbers.
LanKey = Annotated[Lan, BeforeValidator(_lan), PlainSerializer(lambda v: v.key, return_type=str)]
StoredRowStatus = Annotated[RowStatus, BeforeValidator(_row_status),
                            PlainSerializer(lambda v: v.label, return_type=str)]


class ClusterConfig(FrozenModel):
    # Both heads must belong to the same cluster. Restart-only, as every identity.
    name: Annotated[Text, Field(min_length=1, max_length=64), CLUSTER_RESTART]
    # Which head this is and where it keeps its state: local by definition.
    local_head: Annotated[NodeName, PER_HEAD_RESTART]
    state_dir: Annotated[StateDir, PER_HEAD_RESTART] = Field("", validate_default=True)


class HeadConfig(FrozenModel):
    """One of the pair. Both heads' files must describe the same pair (the same names,
    preferred roles and addresses): a head beats to the addresses its own file gives
    for the other, and two files that each make their own head primary fight over
    failback. Restart-only: the heartbeat sockets and the head table are built on them."""

    name: Annotated[NodeName, CLUSTER_RESTART]
    preferred_role: Annotated[Role, CLUSTER_RESTART]
    lan_a: Annotated[IpAddress | None, CLUSTER_RESTART] = None
    lan_b: Annotated[IpAddress | None, CLUSTER_RESTART] = None
    public: Annotated[IpAddress | None, CLUSTER_RESTART] = None


# The watched LAN interfaces and nodes are cluster-wide: every head polls every
# interface, and a role change hands the reporting to the other head, which must judge
# alike. A reload applies them (the poller's rows are rebuilt, indexes kept).


class InterfaceConfig(FrozenModel):
    node: Annotated[NodeName, CLUSTER_LIVE]
    lan: Annotated[LanKey, CLUSTER_LIVE]
    name: Annotated[IfName, CLUSTER_LIVE]
    address: Annotated[IpAddress | None, CLUSTER_LIVE] = None


class NodeConfig(FrozenModel):
    """A compute node watched on the private LANs: one entry stands for up to two
    interface rows (haoscar_snmp/config/lanrows.py), pinged at these addresses."""

    name: Annotated[NodeName, CLUSTER_LIVE]
    lan_a: Annotated[IpAddress | None, CLUSTER_LIVE] = None
    lan_b: Annotated[IpAddress | None, CLUSTER_LIVE] = None

    @model_validator(mode="after")
    def _has_an_address(self) -> Self:
        if self.lan_a is None and self.lan_b is None:
            raise ValueError("give lan_a, lan_b or both (the addresses the LAN poller pings)")
        return self


class AliasConfig(FrozenModel):
    """A service address the active head holds; `index` is its HAOSCAR-MIB row index.

    Cluster-wide: after a failover the other head must hold the same addresses. The
    interface is one name for both heads (one column here and in haoscarAliasInterface),
    so both heads must name their public interface alike. A reload applies the rows
    (an active head adds or removes the addresses)."""

    index: Annotated[RowIndex, CLUSTER_LIVE] = 0  # always set in a Config: explicit, or the smallest free one
    address: Annotated[IpAddress, CLUSTER_LIVE]
    prefix_length: Annotated[int, Field(ge=1, le=128), CLUSTER_LIVE]
    interface: Annotated[IfName, CLUSTER_LIVE]
    row_status: Annotated[StoredRowStatus, CLUSTER_LIVE] = RowStatus.ACTIVE


def _interval_ms(value: int) -> int:
    if value and not 100 <= value <= 3600000:
        raise ValueError("must be 0 (the [timing] default) or 100..3600000")
    return value


def _timeout_ms(value: int) -> int:
    if value and not 10 <= value <= 600000:
        raise ValueError("must be 0 (80% of the interval) or 10..600000")
    return value


class ServiceConfig(FrozenModel):
    """A monitored service; `index` is its HAOSCAR-MIB row index.

    `check` is read by `check_type` (haoscar_snmp/config/checkspec.py): a shell command,
    a systemd unit, a pid file or process name, host:port, or a URL. The recovery ladder:
    `retry_threshold` failed checks declare the service failed; it is restarted up to
    `max_restarts` times within `restart_window_s`, then escalated by `recovery`.

    Every column is cluster-wide (after a failover the other head must watch the same
    services with the same recovery policy) and applied live (unchanged rows keep their
    counters and history).
    """

    index: Annotated[RowIndex, CLUSTER_LIVE] = 0  # always set in a Config: explicit, or the smallest free one
    name: Annotated[Text, Field(min_length=1, max_length=32), CLUSTER_LIVE]
    check: Annotated[Text, Field(min_length=1, max_length=255), CLUSTER_LIVE]
    check_type: Annotated[CheckType, CLUSTER_LIVE] = CheckType.COMMAND
    interval_ms: Annotated[int, AfterValidator(_interval_ms), CLUSTER_LIVE] = 0   # 0: timing's default
    timeout_ms: Annotated[int, AfterValidator(_timeout_ms), CLUSTER_LIVE] = 0     # 0: 80% of the interval
    rise: Annotated[int, Field(ge=1, le=100), CLUSTER_LIVE] = 1
    send: Annotated[Text, Field(max_length=255), CLUSTER_LIVE] = ""               # udp: the request
    expect: Annotated[Text, Field(max_length=255), CLUSTER_LIVE] = ""             # udp: reply text; http: statuses
    restart: Annotated[Text, Field(max_length=255), CLUSTER_LIVE] = ""
    restart_timeout_ms: Annotated[int, Field(ge=100, le=600000), CLUSTER_LIVE] = 30000
    # None: timing's default.
    retry_threshold: Annotated[Annotated[int, Field(ge=1, le=100)] | None, CLUSTER_LIVE] = None
    recovery: Annotated[Recovery, CLUSTER_LIVE] = Recovery.RESTART_THEN_FAILOVER
    max_restarts: Annotated[int, Field(ge=0, le=100), CLUSTER_LIVE] = 3
    restart_window_s: Annotated[int, Field(ge=1, le=86400), CLUSTER_LIVE] = 300
    reset_after: Annotated[int, Field(ge=1, le=10000), CLUSTER_LIVE] = 10
    flap_threshold: Annotated[int, Field(ge=0, le=100), CLUSTER_LIVE] = 5
    failure_timeout_s: Annotated[int, Field(ge=0, le=604800), CLUSTER_LIVE] = 0
    active_only: Annotated[bool, CLUSTER_LIVE] = False
    # Run when this head becomes active / stops being active (active_only services).
    start: Annotated[Text, Field(max_length=255), CLUSTER_LIVE] = ""
    stop: Annotated[Text, Field(max_length=255), CLUSTER_LIVE] = ""
    enabled: Annotated[bool, CLUSTER_LIVE] = True
    row_status: Annotated[StoredRowStatus, CLUSTER_LIVE] = RowStatus.ACTIVE

    def spec(self) -> CheckSpec:
        """The check, parsed for its type (the rules have refused a row it fails on)."""
        return parse_check(self.check_type, self.check, self.send, self.expect)

    def spec_problem(self) -> CheckSpecError | None:
        try:
            self.spec()
        except CheckSpecError as error:
            return error
        return None

    def restart_command(self) -> str:
        """The restart command; a systemd unit without one is restarted with systemctl."""
        if self.restart or self.check_type is not CheckType.SYSTEMD:
            return self.restart
        return f"systemctl restart -- {self.check}"
