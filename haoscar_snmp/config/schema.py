"""The operator's configuration as typed, immutable models (the C of FCAPS).

Key names, defaults and ranges are the binding ones from the project's config schema;
the SNMP ranges in HAOSCAR-MIB are the same numbers, so a value that loads from the file
can always be shown over SNMP and vice versa. The models check single values only;
rules that relate several values live in `rules.py` so they can run on a partially
valid file and report every problem at once. `Config` runs those rules too, so a
`Config` object is valid however it was built.

Secrets: a community, USM key or heartbeat key is given inline or as `*_file`. The
loader reads the files and attaches the contents to the models (`community.secret`,
`user.auth_key`, `user.priv_key`, `heartbeat.key`), which never appear in a repr or a
dump. Models here do no I/O; paths are made absolute when the loader passes
`base_dir` in the validation context.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
from typing import Annotated, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from haoscar_snmp.config.checkspec import CheckSpec, CheckSpecError, CheckType
from haoscar_snmp.config.checkspec import parse as parse_check
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
from haoscar_snmp.config.webusers import NAME_PATTERN, ROLES, UsersFileError, WebUser, check_user
from haoscar_snmp.core.state import Lan, RowStatus

# At most this many public targets: the heartbeats carry which ones a head reaches as a
# 32-bit mask.
MAX_PUBLIC_TARGETS = 32

# IANA's documentation enterprise number (RFC 5612); HAOSCAR-MIB lives under it.
ENTERPRISE_NUMBER = 32473

# The fastest heartbeat timing measured to hold (no false failover, worst gap 22 ms) with
# both heads' CPUs saturated by SNMP walks and junk datagrams (bench/bench_flood.py,
# docs/benchmarks.md). Faster timings are accepted with a warning.
TIMING_FLOOR_INTERVAL_MS = 20
TIMING_FLOOR_DEAD_TIME_MS = 60


def _web_user_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError("must be 1..32 characters from A-Z a-z 0-9 . _ -")
    return value


def _web_role(value: str) -> str:
    if value not in ROLES:
        raise ValueError("must be 'read' or 'write'")
    return value


def _web_hash(value: str) -> str:
    try:
        check_user("x", "read", value)
    except UsersFileError as error:
        raise ValueError(str(error).removeprefix("user x: ")) from None
    return value


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


class Access(enum.StrEnum):
    READ = "read"
    WRITE = "write"


class AuthProtocol(enum.StrEnum):
    SHA = "sha"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class PrivProtocol(enum.StrEnum):
    NONE = "none"
    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"


class SnmpVersion(enum.StrEnum):
    V2C = "v2c"
    V3 = "v3"


class NotifyKind(enum.StrEnum):
    TRAP = "trap"
    INFORM = "inform"


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


# ---------------------------------------------------------------------------------------
# Sections


class ClusterConfig(FrozenModel):
    name: Annotated[Text, Field(min_length=1, max_length=64)]
    local_head: NodeName
    state_dir: StateDir = Field("", validate_default=True)


class HeadConfig(FrozenModel):
    name: NodeName
    preferred_role: Role
    lan_a: IpAddress | None = None
    lan_b: IpAddress | None = None
    public: IpAddress | None = None


class InterfaceConfig(FrozenModel):
    node: NodeName
    lan: LanKey
    name: IfName
    address: IpAddress | None = None


class NodeConfig(FrozenModel):
    """A compute node watched on the private LANs: one entry stands for up to two
    interface rows (haoscar_snmp/config/lanrows.py), pinged at these addresses."""

    name: NodeName
    lan_a: IpAddress | None = None
    lan_b: IpAddress | None = None

    @model_validator(mode="after")
    def _has_an_address(self) -> Self:
        if self.lan_a is None and self.lan_b is None:
            raise ValueError("give lan_a, lan_b or both (the addresses the LAN poller pings)")
        return self


class AliasConfig(FrozenModel):
    """A service address the active head holds; `index` is its HAOSCAR-MIB row index."""

    index: RowIndex = 0  # always set in a Config: explicit, or the smallest free one
    address: IpAddress
    prefix_length: Annotated[int, Field(ge=1, le=128)]
    interface: IfName
    row_status: StoredRowStatus = RowStatus.ACTIVE


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
    """

    index: RowIndex = 0  # always set in a Config: explicit, or the smallest free one
    name: Annotated[Text, Field(min_length=1, max_length=32)]
    check: Annotated[Text, Field(min_length=1, max_length=255)]
    check_type: CheckType = CheckType.COMMAND
    interval_ms: Annotated[int, AfterValidator(_interval_ms)] = 0     # 0: timing's default
    timeout_ms: Annotated[int, AfterValidator(_timeout_ms)] = 0       # 0: 80% of the interval
    rise: Annotated[int, Field(ge=1, le=100)] = 1
    send: Annotated[Text, Field(max_length=255)] = ""                 # udp: the request
    expect: Annotated[Text, Field(max_length=255)] = ""               # udp: reply text; http: statuses
    restart: Annotated[Text, Field(max_length=255)] = ""
    restart_timeout_ms: Annotated[int, Field(ge=100, le=600000)] = 30000
    retry_threshold: Annotated[int, Field(ge=1, le=100)] | None = None  # None: timing's default
    recovery: Recovery = Recovery.RESTART_THEN_FAILOVER
    max_restarts: Annotated[int, Field(ge=0, le=100)] = 3
    restart_window_s: Annotated[int, Field(ge=1, le=86400)] = 300
    reset_after: Annotated[int, Field(ge=1, le=10000)] = 10
    flap_threshold: Annotated[int, Field(ge=0, le=100)] = 5
    failure_timeout_s: Annotated[int, Field(ge=0, le=604800)] = 0
    active_only: bool = False
    # Run when this head becomes active / stops being active (active_only services).
    start: Annotated[Text, Field(max_length=255)] = ""
    stop: Annotated[Text, Field(max_length=255)] = ""
    enabled: bool = True
    row_status: StoredRowStatus = RowStatus.ACTIVE

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


class TimingConfig(FrozenModel):
    heartbeat_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 5000
    heartbeat_dead_time_ms: Annotated[int, Field(ge=30, le=600000)] = 15000
    initdead_ms: Annotated[int, Field(ge=0, le=3600000)] = 30000
    lan_poll_interval_ms: Annotated[int, Field(ge=100, le=3600000)] = 5000
    lan_down_after_ms: Annotated[int, Field(ge=300, le=86400000)] = 15000
    service_check_interval_ms: Annotated[int, Field(ge=100, le=3600000)] = 10000
    service_retry_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    auto_failback: bool = True
    failback_delay_s: Annotated[int, Field(ge=0, le=86400)] = 0
    garp_count: Annotated[int, Field(ge=0, le=100)] = 5
    garp_repeat_ms: Annotated[int, Field(ge=0, le=60000)] = 1000
    # While active, announce each alias (one gratuitous ARP) this often, so that a second
    # holder on the public LAN is seen and settled; 0 = only at takeover.
    alias_announce_ms: Annotated[int, Field(ge=0, le=60000)] = 1000


class HeartbeatConfig(WithSecrets):
    port: Port = 7789
    key_file: ConfigPath | None = None
    # Also send heartbeats over the public LAN (both heads need a `public` address). The
    # public path only arbitrates: a peer heard there is alive, so nobody takes over.
    public_path: bool = True

    @property
    def key(self) -> bytes | None:
        """The HMAC key read from key_file (raw bytes, nothing stripped), once loaded."""
        return self._resolved.get("key")


class CommunityConfig(WithSecrets):
    name_inline: Secret | None = Field(None, alias="name")
    name_file: ConfigPath | None = None
    access: Access = Access.READ

    @property
    def secret(self) -> str:
        return self._secret("name", self.name_inline) or ""


class UserConfig(WithSecrets):
    name: Annotated[Text, Field(min_length=1, max_length=32)]
    auth_protocol: AuthProtocol
    auth_key_inline: Passphrase | None = Field(None, alias="auth_key")
    auth_key_file: ConfigPath | None = None
    priv_protocol: PrivProtocol
    priv_key_inline: Passphrase | None = Field(None, alias="priv_key")
    priv_key_file: ConfigPath | None = None
    access: Access = Access.READ

    @property
    def auth_key(self) -> str | None:
        return self._secret("auth_key", self.auth_key_inline)

    @property
    def priv_key(self) -> str | None:
        return self._secret("priv_key", self.priv_key_inline)


class TargetConfig(WithSecrets):
    name: Annotated[Text, Field(min_length=1, max_length=32)]
    address: Endpoint
    version: SnmpVersion
    kind: NotifyKind = NotifyKind.TRAP
    community_inline: Secret | None = Field(None, alias="community")
    community_file: ConfigPath | None = None
    user: str | None = None
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    timeout_ms: Annotated[int, Field(ge=100, le=60000)] = 1500

    @property
    def community(self) -> str | None:
        return self._secret("community", self.community_inline)


class AgentxConfig(FrozenModel):
    """The AgentX subagent (haoscar_snmp/snmp/agentx/session.py): serve HAOSCAR-MIB
    through the host's snmpd. With snmp.listen empty it is the only way in (AgentX only);
    with both, the standalone agent answers on snmp.listen as well."""

    enabled: bool = False
    master: AgentxMaster = "/var/agentx/master"
    # How long we wait for the master's answer (Open, Register, Ping, Notify); the Open PDU
    # asks the master to wait as long for ours (in whole seconds, rounded up).
    timeout_ms: Annotated[int, Field(ge=100, le=60000)] = 1000
    # Pings in a row that may go unanswered, beyond the first, before the master counts
    # as dead and the session is opened again.
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    ping_interval_ms: Annotated[int, Field(ge=100, le=600000)] = 5000
    # RFC 2741 registration priority: lower wins when two subagents register one subtree.
    priority: Annotated[int, Field(ge=1, le=255)] = 127
    # Only the default context is served.
    context: Text = ""
    # Notifications waiting for the master (raised while it is away); beyond this many,
    # the oldest is dropped and counted.
    notify_queue: Annotated[int, Field(ge=1, le=10000)] = 100

    @field_validator("context")
    @classmethod
    def _default_context_only(cls, value: str) -> str:
        if value:
            raise ValueError("only the default context (\"\") is served over AgentX: remove the "
                             "setting, or map the context to the default one in snmpd.conf")
        return value


class SnmpConfig(FrozenModel):
    # Empty only with [snmp.agentx] enabled: then snmpd is the only way in.
    listen: tuple[Endpoint, ...] = ()
    engine_id: EngineId = ""
    sys_name: Annotated[Text, Field(max_length=255)] = ""
    sys_contact: Annotated[Text, Field(max_length=255)] = ""
    sys_location: Annotated[Text, Field(max_length=255)] = ""
    allow_v2c_write: bool = False
    # snmpEnableAuthenTraps: send SNMPv2-MIB authenticationFailure on a refused request
    # (rate-limited). Off by default, as in net-snmp: a guesser would otherwise make the
    # agent send traffic to the NMS at the guesser's pace.
    auth_failure_traps: bool = False
    communities: tuple[CommunityConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    targets: tuple[TargetConfig, ...] = ()
    agentx: AgentxConfig = AgentxConfig()

    @model_validator(mode="after")
    def _something_answers(self) -> Self:
        if not self.listen and not self.agentx.enabled:
            raise ValueError("listen is empty and [snmp.agentx] is not enabled: nothing would answer "
                             "SNMP (give listen endpoints, or enable AgentX, or both)")
        return self


class SmtpSecurity(enum.StrEnum):
    NONE = "none"            # plain SMTP (a relay on this host or a trusted LAN)
    STARTTLS = "starttls"    # plain connection upgraded with STARTTLS, certificate verified
    TLS = "tls"              # TLS from the first byte (port 465), certificate verified


class EmailConfig(WithSecrets):
    """Operator e-mail: one mail per incident and one when it is over (fault/mailer.py)."""

    enabled: bool = False
    smtp_host: Annotated[Text, Field(min_length=1, max_length=255)] = "127.0.0.1"
    smtp_port: Port = 25
    security: SmtpSecurity = SmtpSecurity.NONE
    # CA certificates (PEM) that the server's certificate must chain to; unset: the system's.
    ca_file: ConfigPath | None = None
    username: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    password_file: ConfigPath | None = None
    sender: Email = Field("haoscar@localhost", alias="from")
    to: tuple[Email, ...] = ()
    timeout_ms: Annotated[int, Field(ge=100, le=600000)] = 10000
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_delay_ms: Annotated[int, Field(ge=100, le=3600000)] = 5000
    max_per_hour: Annotated[int, Field(ge=1, le=10000)] = 30
    queue_size: Annotated[int, Field(ge=1, le=10000)] = 100

    @property
    def password(self) -> str | None:
        """The SMTP password read from password_file, once loaded."""
        return self._resolved.get("password")


class NotifyConfig(FrozenModel):
    email: EmailConfig = EmailConfig()
    # An inform target whose inform was lost (after the target's own retries and
    # timeout_ms) gets haoscarAlarmResyncStart this often until it acknowledges one, then
    # its active alarms again (haoscar_snmp/snmp/notify.py). Trap targets: never.
    inform_resync: bool = True
    resync_interval_ms: Annotated[int, Field(ge=1000, le=3600000)] = 30000


class LanConfig(FrozenModel):
    """How the LAN poller judges interfaces and LANs (fcaps/fault/lan/watch.py). The poll
    interval and the down-after time are in [timing] (haoscarLanPollInterval and
    haoscarLanDownAfter); these are file-only."""

    # Replies in a row before a down interface is up again (a flapping link stays down).
    rise: Annotated[int, Field(ge=1, le=100)] = 3
    # At most one down and one up notification per interface (and per LAN) in this time;
    # the state is always current, and the final state is always told. 0 = no hold-down.
    hold_down_ms: Annotated[int, Field(ge=0, le=86400000)] = 60000
    # A LAN has failed when, within two poll intervals, this share of its interfaces that
    # were not already down went down, and at least failure_min_interfaces of them.
    failure_percent: Annotated[int, Field(ge=1, le=100)] = 50
    failure_min_interfaces: Annotated[int, Field(ge=1, le=65535)] = 2
    poller: Poller = Poller.STANDBY


class FailoverConfig(FrozenModel):
    """How a standby decides it may take over (see docs/failover.md for the trade-offs)."""

    # Run before taking the alias from a peer declared dead (e.g. power it off through its
    # BMC, as HA-OSCAR did); takeover happens only if it exits 0. "" = no fencing.
    fence_command: Annotated[Text, Field(max_length=255)] = ""
    # Must exit 0 for this head to become active (e.g. "ping -c1 -W1 <public gateway>"), so
    # a head cut off from everything does not take over. "" = no quorum check.
    quorum_command: Annotated[Text, Field(max_length=255)] = ""
    command_timeout_ms: Annotated[int, Field(ge=100, le=600000)] = 10000
    # How often the quorum command runs while nothing happens, so that the heads know
    # each other's quorum (advertised in the heartbeats) before they need it.
    quorum_interval_ms: Annotated[int, Field(ge=1000, le=3600000)] = 5000
    # The active head counts as failed when the LAN poller finds all its private
    # interfaces down while the standby reaches the LANs (fcaps/fault/lan/poller.py).
    lan_failure_is_head_failure: bool = False
    # Addresses on the public LAN (the gateway, a router, a few clients) that each head
    # pings to know whether clients can reach it (fcaps/fault/role/publicreach.py): an active
    # head that reaches none of them while the standby reaches one hands the alias over.
    # () = not watched.
    public_targets: Annotated[tuple[IpAddress, ...], Field(max_length=MAX_PUBLIC_TARGETS)] = ()
    public_probe_interval_ms: Annotated[int, Field(ge=100, le=60000)] = 1000
    # Probes answered in a row for a target to count as reached, unanswered for down.
    public_rise: Annotated[int, Field(ge=1, le=10)] = 2
    public_fall: Annotated[int, Field(ge=1, le=10)] = 3
    # A head that lost the public LAN counts as having it back only after reaching a
    # target for this long: a flapping link does not move the service back and forth.
    public_hold_down_ms: Annotated[int, Field(ge=0, le=3600000)] = 10000


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
    the agent is alive (an outage open at a crash is closed at the last mark)."""

    # Each window is the time up to now over which the figures are computed; the MIB has
    # one haoscarAcctTable row per subject and window, and haoscarPerfAvailability,
    # haoscarPerfMttr and haoscarPerfMtbf show the cluster's figures over the longest.
    windows: Annotated[tuple[Duration, ...], Field(min_length=1, max_length=MAX_ACCT_WINDOWS)] = (
        "24h", "7d", "30d")
    # Outages and runs that ended longer ago than this are deleted; at least the longest
    # window, so that every window is computed from whole data (rules.py checks both).
    retention: Duration = "400d"
    # How often the ledger writes its last-alive mark (at most this much of an outage
    # open at a crash, or of the agent's own downtime, is unknown).
    mark_interval_s: Annotated[int, Field(ge=1, le=300)] = 10

    @property
    def window_seconds(self) -> tuple[int, ...]:
        return tuple(duration_seconds(w) for w in self.windows)

    @property
    def retention_seconds(self) -> int:
        return duration_seconds(self.retention)


class MetricsAuth(enum.StrEnum):
    BASIC = "basic"
    NONE = "none"


class WebUserInline(FrozenModel):
    """A web panel user written in the configuration itself (demo configurations; real
    ones use `users_file`, a secret file: check-config and the daemon warn about these)."""

    name: Annotated[str, AfterValidator(_web_user_name)]
    role: Annotated[str, AfterValidator(_web_role)] = "read"
    password_hash: Annotated[str, AfterValidator(_web_hash)]


class WebConfig(WithSecrets):
    """The web panel served by the daemon (haoscar_snmp/views/web): off unless enabled.

    It listens on loopback by default (reach it through `ssh -L`); an address beyond
    loopback needs TLS, so that passwords and session cookies never cross a LAN in
    clear. Nobody gets in without a user from `users_file` (or the inline `users`)."""

    enabled: bool = False
    # 16180 beside the demo's SNMP port 16161: above 1024, and clear of the 8080/8443
    # that web front ends on a head node often take.
    listen: Endpoint = Endpoint(host="127.0.0.1", port=16180)
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    users_file: ConfigPath | None = None
    users: tuple[WebUserInline, ...] = ()
    # A session ends after this long without a request, and in any case this long after
    # the login.
    session_idle_s: Annotated[int, Field(ge=60, le=86400)] = 900
    session_max_s: Annotated[int, Field(ge=300, le=604800)] = 28800
    max_sessions: Annotated[int, Field(ge=1, le=1000)] = 64
    # Pages open at once that receive live updates (server-sent events).
    max_live_clients: Annotated[int, Field(ge=1, le=256)] = 16
    # /metrics (Prometheus, OpenMetrics): "basic" asks for HTTP Basic authentication as a
    # user of the panel (any role; Prometheus sends it with basic_auth); "none" serves it
    # to whoever reaches the listener, and only when set explicitly.
    metrics_auth: MetricsAuth = MetricsAuth.BASIC

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def file_users(self) -> tuple[WebUser, ...]:
        """The users read from users_file at load (the panel re-reads it when it changes)."""
        return self._resolved.get("users", ())

    def all_users(self) -> tuple[WebUser, ...]:
        inline = tuple(WebUser(u.name, u.role, u.password_hash) for u in self.users)
        return inline + self.file_users

    @model_validator(mode="after")
    def _safe(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both (TLS) or neither")
        if not self.enabled:
            return self
        if self.users_file is None and not self.users:
            raise ValueError("enabled without users: give users_file (see haoscar-snmp web-user)")
        if not self.tls and not ipaddress.ip_address(self.listen.host).is_loopback:
            raise ValueError(f"listen {self.listen} is beyond loopback without TLS: passwords and session "
                             f"cookies would cross the network in clear (set tls_cert_file and tls_key_file, "
                             f"or listen on 127.0.0.1 / [::1])")
        names = [u.name for u in self.users]
        if len(names) != len(set(names)):
            raise ValueError("users: a name is given twice")
        if self.session_max_s < self.session_idle_s:
            raise ValueError("session_max_s must be at least session_idle_s")
        return self


class LogConfig(FrozenModel):
    level: LogLevel = LogLevel.INFO
    syslog: bool = False


# ---------------------------------------------------------------------------------------
# The whole file

_Row = TypeVar("_Row", ServiceConfig, AliasConfig)


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

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        # Imported here because rules.py imports this module's models.
        from haoscar_snmp.config import rules
        from haoscar_snmp.config.errors import format_loc

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
        if self.failover.lan_failure_is_head_failure and not self.nodes and not any(
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
        if t.heartbeat_interval_ms < TIMING_FLOOR_INTERVAL_MS or t.heartbeat_dead_time_ms < TIMING_FLOOR_DEAD_TIME_MS:
            out.append(f"timing: heartbeat {t.heartbeat_interval_ms} ms / dead time {t.heartbeat_dead_time_ms} ms "
                       f"is below the floor measured under SNMP load ({TIMING_FLOOR_INTERVAL_MS} ms / "
                       f"{TIMING_FLOOR_DEAD_TIME_MS} ms): a busy machine may declare a live peer dead")
        return out

    def inline_secret_keys(self) -> list[str]:
        """Keys of USM keys written inline in the file; the daemon warns about each."""
        keys = []
        for i, user in enumerate(self.snmp.users):
            if user.auth_key_inline is not None:
                keys.append(f"snmp.users[{i}].auth_key")
            if user.priv_key_inline is not None:
                keys.append(f"snmp.users[{i}].priv_key")
        return keys
