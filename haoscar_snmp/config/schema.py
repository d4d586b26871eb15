"""The operator's configuration as typed, immutable models (the C of FCAPS).

Key names, defaults and ranges are the binding ones from the project's config schema;
the SNMP ranges in HAOSCAR-MIB are the same numbers, so a value that loads from the file
can always be shown over SNMP and vice versa. The models check single values only;
rules that relate several values live in `rules.py` so they can run on a partially
valid file and report every problem at once. `Config` runs those rules too, so a
`Config` object is valid however it was built.

The sections are defined by area, and every name is importable from here:

    schema_cluster.py   [cluster], [[heads]], [[interfaces]], [[nodes]], [[aliases]], [[services]]
    schema_policy.py    [timing], [heartbeat], [lan], [failover], [accounting], [log]
    schema_snmp.py      [snmp] (communities, users, targets, [snmp.agentx]), [notify]
    schema_web.py       [web] (the web panel)
    schema_membership.py  [membership] (own heartbeat, or Corosync and Pacemaker)

Every key carries its classification next to its definition (`keys.py`): cluster-wide
or per-head, applied live or restart-only; `KEYS` is the classification of `Config`.

Secrets: a community, USM key or heartbeat key is given inline or as `*_file`. The
loader reads the files and attaches the contents to the models (`community.secret`,
`user.auth_key`, `user.priv_key`, `heartbeat.key`), which never appear in a repr or a
dump. Models here do no I/O; paths are made absolute when the loader passes
`base_dir` in the validation context.

Imports go one way: values, keys -> the section modules -> lanrows -> rules -> this
module -> cluster, diff (a unit test keeps the configuration package free of circles).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Self, TypeVar

from pydantic import AfterValidator, Field, model_validator

from haoscar_snmp.config import rules
from haoscar_snmp.config.errors import format_loc
from haoscar_snmp.config.keys import Classification, classification
from haoscar_snmp.config.schema_cluster import (
    AliasConfig,
    ClusterConfig,
    HeadConfig,
    InterfaceConfig,
    LanKey,
    NodeConfig,
    Recovery,
    Role,
    ServiceConfig,
    StoredRowStatus,
)
from haoscar_snmp.config.schema_membership import Backend, MembershipConfig, PacemakerUse
from haoscar_snmp.config.schema_policy import (
    MAX_ACCT_WINDOWS,
    MAX_PUBLIC_TARGETS,
    TIMING_FLOOR_DEAD_TIME_MS,
    TIMING_FLOOR_INTERVAL_MS,
    AccountingConfig,
    Duration,
    FailoverConfig,
    HeartbeatConfig,
    LanConfig,
    LogConfig,
    LogLevel,
    Poller,
    TimingConfig,
    duration_seconds,
)
from haoscar_snmp.config.schema_snmp import (
    Access,
    AgentxConfig,
    AuthProtocol,
    CommunityConfig,
    EmailConfig,
    NotifyConfig,
    NotifyKind,
    PrivProtocol,
    SmtpSecurity,
    SnmpConfig,
    SnmpVersion,
    TargetConfig,
    UserConfig,
)
from haoscar_snmp.config.schema_web import MetricsAuth, WebConfig, WebUserInline
from haoscar_snmp.config.values import (
    AgentxMaster,
    ConfigPath,
    Email,
    Endpoint,
    EngineId,
    FrozenModel,
    IfName,
    IpAddress,
    NodeName,
    Passphrase,
    Port,
    RowIndex,
    Secret,
    StateDir,
    Text,
    WithSecrets,
)
from haoscar_snmp.core.state import RowStatus

# IANA's documentation enterprise number (RFC 5612); HAOSCAR-MIB lives under it.
ENTERPRISE_NUMBER = 32473


_Row = TypeVar("_Row", ServiceConfig, AliasConfig)

# The [timing] keys of the heads' own heartbeat, failback and alias announcements: with
# the corosync backend nothing reads them (the LAN and service timings still apply).
_TIMING_OF_OWN = ("heartbeat_interval_ms", "heartbeat_dead_time_ms", "initdead_ms", "auto_failback",
                  "failback_delay_s", "garp_count", "garp_repeat_ms", "alias_announce_ms")


def assign_indexes(rows: tuple[_Row, ...]) -> tuple[_Row, ...]:
    """Give rows without an explicit `index` the smallest free one, in file order.

    Auto indexes move when rows are inserted above them, so operators who want OIDs
    (and SNMP overrides, which are keyed by index) stable across edits set `index`.
    """
    taken = {row.index for row in rows if row.index}
    result: list[_Row] = []
    candidate = 1
    for row in rows:
        if not row.index:
            while candidate in taken:
                candidate += 1
            taken.add(candidate)
            row = row.model_copy(update={"index": candidate})
        result.append(row)
    return tuple(result)


Heads = Annotated[tuple[HeadConfig, ...], Field(min_length=1, max_length=2)]
Services = Annotated[tuple[ServiceConfig, ...], AfterValidator(assign_indexes)]
Aliases = Annotated[tuple[AliasConfig, ...], AfterValidator(assign_indexes)]


class Config(FrozenModel):
    """One validated configuration; build it with `load_config()` or `apply_overrides()`."""

    cluster: ClusterConfig
    heads: Heads
    interfaces: tuple[InterfaceConfig, ...] = ()
    nodes: tuple[NodeConfig, ...] = ()
    aliases: Aliases = ()
    services: Services = ()
    timing: TimingConfig = TimingConfig()
    lan: LanConfig = LanConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    failover: FailoverConfig = FailoverConfig()
    snmp: SnmpConfig
    notify: NotifyConfig = NotifyConfig()
    accounting: AccountingConfig = AccountingConfig()
    log: LogConfig = LogConfig()
    web: WebConfig = WebConfig()
    membership: MembershipConfig = MembershipConfig()

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        issues = rules.check(rules.Sections.of(self))
        if issues:
            raise ValueError("; ".join(f"{format_loc(loc)}: {message}" for loc, message in issues))
        return self

    def head_index(self, name: str) -> int:
        """A head's row index in haoscarHeadTable: its rank by name (1 for the smaller),
        so both heads use the same index for the same head whatever the file order."""
        names = sorted(head.name for head in self.heads)
        return names.index(name) + 1

    def public_heartbeat_path(self) -> tuple[str, str] | None:
        """(local, peer) public addresses when the public LAN carries heartbeats."""
        peer = self.peer_head_config
        me = self.local_head_config
        if peer is None or not self.heartbeat.public_path or me.public is None or peer.public is None:
            return None
        return str(me.public), str(peer.public)

    def head(self, name: str) -> HeadConfig | None:
        return next((head for head in self.heads if head.name == name), None)

    @property
    def local_head_config(self) -> HeadConfig:
        head = self.head(self.cluster.local_head)
        assert head is not None, "rules.check guarantees local_head names a head"
        return head

    @property
    def peer_head_config(self) -> HeadConfig | None:
        return next((head for head in self.heads if head.name != self.cluster.local_head), None)

    def retry_threshold(self, service: ServiceConfig) -> int:
        """The service's own threshold, else timing.service_retry_threshold (read at use time)."""
        return service.retry_threshold or self.timing.service_retry_threshold

    def check_interval_ms(self, service: ServiceConfig) -> int:
        """The service's own interval, else timing.service_check_interval_ms."""
        return service.interval_ms or self.timing.service_check_interval_ms

    def check_timeout_ms(self, service: ServiceConfig) -> int:
        """The service's own timeout, else 80% of its interval."""
        return service.timeout_ms or max(10, self.check_interval_ms(service) * 4 // 5)

    def active_services(self) -> tuple[ServiceConfig, ...]:
        """Rows to monitor: notInService rows stay in the MIB but are not checked."""
        return tuple(s for s in self.services if s.row_status is RowStatus.ACTIVE)

    def active_aliases(self) -> tuple[AliasConfig, ...]:
        return tuple(a for a in self.aliases if a.row_status is RowStatus.ACTIVE)

    def effective_sys_name(self) -> str:
        return self.snmp.sys_name or self.cluster.local_head

    def effective_engine_id(self) -> bytes:
        """snmp.engine_id, else an RFC 3411 engine ID derived from the cluster and head name.

        Derived, not random, so an NMS that knows a head's v3 engine ID (informs,
        localized keys) keeps working after a restart or a reinstall.
        """
        if self.snmp.engine_id:
            return bytes.fromhex(self.snmp.engine_id)
        prefix = (0x80000000 | ENTERPRISE_NUMBER).to_bytes(4, "big")
        text = f"{self.cluster.name}/{self.cluster.local_head}".encode()
        if len(text) <= 27:
            return prefix + b"\x04" + text  # format 4: administratively assigned text
        return prefix + b"\x05" + hashlib.sha256(text).digest()[:27]  # format 5: octets

    def advisories(self) -> list[str]:
        """Settings that are valid but unwise, as "key: why" sentences (check-config
        prints them, the daemon logs them at start and after every change)."""
        out = []
        t = self.timing
        if not self.corosync and self.failover.lan_failure_is_head_failure and not self.nodes and not any(
                i.node not in {h.name for h in self.heads} for i in self.interfaces):
            out.append("failover.lan_failure_is_head_failure: no compute node is watched, so no head can "
                       "prove that it reaches the LANs: the rule never fires")
        email = self.notify.email
        if email.enabled and not email.to:
            out.append("notify.email.to: e-mail is enabled but has no recipient (haoscarNotifyEmail is empty): "
                       "no e-mail is sent")
        elif email.to and not email.enabled:
            out.append("notify.email.enabled: false, so no e-mail goes to the recipients in notify.email.to")
        for i, svc in enumerate(self.services):
            if svc.recovery is Recovery.RESTART_THEN_FAILOVER and len(self.heads) == 1:
                out.append(f"services[{i}].recovery: restart-then-failover on a single-head cluster: "
                           f"there is no head to fail over to; the operator is notified instead")
        if self.web.users:
            out.append("web.users: password hashes written in the configuration file: whoever reads the file "
                       "can guess passwords offline; use web.users_file (mode 0600) outside demos")
        unused = self.unused_keys()
        if unused:
            out.append(f"membership.backend: {self.membership.backend}, so these settings are not used: "
                       f"{', '.join(unused)}")
        if self.corosync:
            return out
        if t.heartbeat_interval_ms < TIMING_FLOOR_INTERVAL_MS or t.heartbeat_dead_time_ms < TIMING_FLOOR_DEAD_TIME_MS:
            out.append(f"timing: heartbeat {t.heartbeat_interval_ms} ms / dead time {t.heartbeat_dead_time_ms} ms "
                       f"is below the floor measured under SNMP load ({TIMING_FLOOR_INTERVAL_MS} ms / "
                       f"{TIMING_FLOOR_DEAD_TIME_MS} ms): a busy machine may declare a live peer dead")
        return out

    @property
    def corosync(self) -> bool:
        """Whether Corosync and Pacemaker run the cluster: no heartbeat, role machine or
        alias takeover of ours."""
        return self.membership.backend is Backend.COROSYNC

    def unused_keys(self) -> list[str]:
        """Keys given (in the file or by a SET) that the chosen backend does not use."""
        if not self.corosync:
            return [f"membership.{name}" for name in sorted(self.membership.model_fields_set - {"backend"})]
        given = [f"timing.{name}" for name in _TIMING_OF_OWN if name in self.timing.model_fields_set]
        given += [f"heartbeat.{name}" for name in sorted(self.heartbeat.model_fields_set)]
        given += [f"failover.{name}" for name in sorted(self.failover.model_fields_set)]
        given += [f"services[{i}].{name}" for i, svc in enumerate(self.services)
                  for name in ("start", "stop") if getattr(svc, name)]
        return given

    def inline_secret_keys(self) -> list[str]:
        """Keys of USM keys written inline in the file; the daemon warns about each."""
        keys = []
        for i, user in enumerate(self.snmp.users):
            if user.auth_key_inline is not None:
                keys.append(f"snmp.users[{i}].auth_key")
            if user.priv_key_inline is not None:
                keys.append(f"snmp.users[{i}].priv_key")
        return keys


# Every key of the configuration with its scope and reload kind (keys.py), from the
# fields' own declarations.
KEYS: Classification = classification(Config)

__all__ = [
    "ENTERPRISE_NUMBER", "KEYS", "MAX_ACCT_WINDOWS", "MAX_PUBLIC_TARGETS", "TIMING_FLOOR_DEAD_TIME_MS",
    "TIMING_FLOOR_INTERVAL_MS",
    "Access", "AccountingConfig", "Backend", "MembershipConfig", "PacemakerUse", "AgentxConfig", "AgentxMaster", "AliasConfig", "Aliases", "AuthProtocol",
    "ClusterConfig", "CommunityConfig", "Config", "ConfigPath", "Duration", "Email", "EmailConfig",
    "Endpoint", "EngineId", "FailoverConfig", "FrozenModel", "HeadConfig", "Heads", "HeartbeatConfig",
    "IfName", "InterfaceConfig", "IpAddress", "LanConfig", "LanKey", "LogConfig", "LogLevel", "MetricsAuth",
    "NodeConfig",
    "NodeName", "NotifyConfig", "NotifyKind", "Passphrase", "Poller", "Port", "PrivProtocol", "Recovery",
    "Role", "RowIndex", "Secret", "ServiceConfig", "Services", "SmtpSecurity", "SnmpConfig", "SnmpVersion",
    "StateDir", "StoredRowStatus", "TargetConfig", "Text", "TimingConfig", "UserConfig", "WithSecrets",
    "WebConfig", "WebUserInline", "assign_indexes", "duration_seconds",
]
