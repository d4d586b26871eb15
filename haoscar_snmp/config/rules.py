"""Cross-field rules: everything that relates two or more configuration values.

Each rule names the key it concerns. The rules run on `Sections`, where a section that
failed its own validation is None and so is a table row that failed; a rule skips what
it cannot see, and whole-table rules skip partial tables. That way one run reports
every independent problem without inventing follow-up ones (a head with a bad address
does not also make `local_head` look dangling). The loader,
`Config` itself and `apply_overrides` all call `check()`, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any, Callable, Hashable, Iterable, Iterator, Protocol, Sequence

from haoscar_snmp.config import lanrows
from haoscar_snmp.config.errors import Issue, Loc, format_loc
from haoscar_snmp.config.schema_cluster import (
    AliasConfig,
    ClusterConfig,
    HeadConfig,
    InterfaceConfig,
    NodeConfig,
    Recovery,
    Role,
    ServiceConfig,
)
from haoscar_snmp.config.schema_membership import Backend, MembershipConfig
from haoscar_snmp.config.schema_policy import (
    AccountingConfig,
    FailoverConfig,
    HeartbeatConfig,
    TimingConfig,
)
from haoscar_snmp.config.schema_snmp import (
    Access,
    CommunityConfig,
    EmailConfig,
    NotifyConfig,
    PrivProtocol,
    SmtpSecurity,
    SnmpConfig,
    SnmpVersion,
    TargetConfig,
    UserConfig,
)
from haoscar_snmp.config.values import Endpoint

class Whole(Protocol):
    """What `Sections.of` reads of a whole configuration. `Config` is one; it is not
    named here because `Config` runs these rules (schema.py imports this module)."""

    @property
    def cluster(self) -> ClusterConfig: ...
    @property
    def heads(self) -> Sequence[HeadConfig]: ...
    @property
    def interfaces(self) -> Sequence[InterfaceConfig]: ...
    @property
    def nodes(self) -> Sequence[NodeConfig]: ...
    @property
    def aliases(self) -> Sequence[AliasConfig]: ...
    @property
    def services(self) -> Sequence[ServiceConfig]: ...
    @property
    def timing(self) -> TimingConfig: ...
    @property
    def heartbeat(self) -> HeartbeatConfig: ...
    @property
    def snmp(self) -> SnmpConfig: ...
    @property
    def notify(self) -> NotifyConfig: ...
    @property
    def failover(self) -> FailoverConfig: ...
    @property
    def accounting(self) -> AccountingConfig: ...
    @property
    def membership(self) -> MembershipConfig: ...


# A table whose rows validated one by one: None marks a row that failed on its own,
# so positions still match the file and whole-table rules know to stay quiet.
Rows = tuple[Any, ...]


@dataclass(frozen=True)
class Sections:
    """What validated on its own: None for a failed section, None rows in a partial table."""

    cluster: ClusterConfig | None = None
    heads: tuple[HeadConfig | None, ...] | None = None
    interfaces: tuple[InterfaceConfig | None, ...] | None = None
    nodes: tuple[NodeConfig | None, ...] | None = None
    aliases: tuple[AliasConfig | None, ...] | None = None
    services: tuple[ServiceConfig | None, ...] | None = None
    timing: TimingConfig | None = None
    heartbeat: HeartbeatConfig | None = None
    listen: tuple[Endpoint | None, ...] | None = None
    allow_v2c_write: bool | None = None
    communities: tuple[CommunityConfig | None, ...] | None = None
    users: tuple[UserConfig | None, ...] | None = None
    targets: tuple[TargetConfig | None, ...] | None = None
    email: EmailConfig | None = None
    failover: FailoverConfig | None = None
    accounting: AccountingConfig | None = None
    membership: MembershipConfig | None = None

    @classmethod
    def of(cls, config: Whole) -> Sections:
        return cls(
            cluster=config.cluster, heads=config.heads, interfaces=config.interfaces,
            nodes=config.nodes, aliases=config.aliases, services=config.services, timing=config.timing,
            heartbeat=config.heartbeat, listen=config.snmp.listen,
            allow_v2c_write=config.snmp.allow_v2c_write, communities=config.snmp.communities,
            users=config.snmp.users, targets=config.snmp.targets, email=config.notify.email,
            failover=config.failover, accounting=config.accounting, membership=config.membership,
        )

    @property
    def corosync(self) -> bool:
        """Whether Corosync and Pacemaker run the cluster (no heartbeat of our own)."""
        return self.membership is not None and self.membership.backend is Backend.COROSYNC


def _whole(rows: Rows | None) -> bool:
    return rows is not None and all(row is not None for row in rows)


def _valid(rows: Rows | None) -> Iterator[tuple[int, Any]]:
    """(position, row) for the rows that validated."""
    return ((i, row) for i, row in enumerate(rows or ()) if row is not None)


def check(sections: Sections) -> list[Issue]:
    """Every cross-field problem in `sections`, in file order of the sections."""
    issues: list[Issue] = []
    for rule in _RULES:
        issues.extend(rule(sections))
    return issues


def _duplicates(table: Loc, rows: Rows | None, field: str | None, key: Callable[[Any], Hashable | None],
                what: str) -> Iterator[Issue]:
    """Report each row whose key an earlier row already used (keys that are None are skipped)."""
    first: dict[Hashable, int] = {}
    for i, row in _valid(rows):
        value = key(row)
        if value is None:
            continue
        if value in first:
            loc = table + ((i, field) if field else (i,))
            yield (loc, f"duplicate {what} {value!s} (also {format_loc(table + (first[value],))})")
        else:
            first[value] = i


def _cluster_and_heads(s: Sections) -> Iterator[Issue]:
    yield from _duplicates(("heads",), s.heads, "name", lambda h: h.name, "head name")
    if s.heads is None:
        return
    if s.cluster is not None and _whole(s.heads) and all(h.name != s.cluster.local_head for h in s.heads):
        names = ", ".join(h.name for h in s.heads)
        yield (("cluster", "local_head"), f"{s.cluster.local_head!r} is not a [[heads]] name ({names})")
    if len(s.heads) != 2 or s.corosync:
        return      # (with Corosync, no heartbeat of ours runs over the LANs)
    if _whole(s.heads):
        primaries = [i for i, h in enumerate(s.heads) if h.preferred_role is Role.PRIMARY]
        if not primaries:
            yield (("heads",), 'with two heads exactly one needs preferred_role = "primary" (found none)')
        for i in primaries[1:]:
            yield (("heads", i, "preferred_role"),
                   f'with two heads exactly one may be "primary" (heads[{primaries[0]}] already is)')
    for i, head in _valid(s.heads):
        for lan in ("lan_a", "lan_b"):
            if getattr(head, lan) is None:
                yield (("heads", i, lan),
                       "required with two heads (the heartbeat runs over both private LANs)")
    if s.heartbeat is not None and s.heartbeat.key_file is None:
        yield (("heartbeat", "key_file"), "required with two heads (heartbeats are authenticated)")


def _timing(s: Sections) -> Iterator[Issue]:
    t = s.timing
    if t is None:
        return
    if t.heartbeat_dead_time_ms < 3 * t.heartbeat_interval_ms:
        yield (("timing", "heartbeat_dead_time_ms"),
               f"must be >= 3 x heartbeat_interval_ms = {3 * t.heartbeat_interval_ms} "
               f"(got {t.heartbeat_dead_time_ms}); fewer than three missed beats would declare a head dead")
    if t.initdead_ms < t.heartbeat_dead_time_ms:
        yield (("timing", "initdead_ms"),
               f"must be >= heartbeat_dead_time_ms = {t.heartbeat_dead_time_ms} (got {t.initdead_ms})")
    if t.lan_down_after_ms < 2 * t.lan_poll_interval_ms:
        yield (("timing", "lan_down_after_ms"),
               f"must be >= 2 x lan_poll_interval_ms = {2 * t.lan_poll_interval_ms} "
               f"(got {t.lan_down_after_ms})")


def _tables(s: Sections) -> Iterator[Issue]:
    yield from _duplicates(("interfaces",), s.interfaces, "name", lambda i: f"{i.node}/{i.name}", "interface")
    yield from _duplicates(("services",), s.services, "name", lambda r: r.name, "service name")
    # Index 0 = not given yet (a partial table gets no automatic indexes).
    yield from _duplicates(("services",), s.services, "index", lambda r: r.index or None, "index")
    yield from _duplicates(("aliases",), s.aliases, "address", lambda a: a.address, "alias address")
    yield from _duplicates(("aliases",), s.aliases, "index", lambda a: a.index or None, "index")
    for i, alias in _valid(s.aliases):
        bits = 32 if isinstance(alias.address, IPv4Address) else 128
        if alias.prefix_length > bits:
            yield (("aliases", i, "prefix_length"),
                   f"{alias.prefix_length} does not fit IPv{alias.address.version} (1..{bits})")


def _watched_interfaces(s: Sections) -> Iterator[Issue]:
    """One row per node and LAN across [[heads]], [[interfaces]] and [[nodes]]; no address twice."""
    # Missing parts only hide conflicts, never invent them, so this runs on what there is.
    _, issues = lanrows.expand(s.heads or (), s.interfaces or (), s.nodes or ())
    yield from issues


def _services(s: Sections) -> Iterator[Issue]:
    for i, svc in _valid(s.services):
        problem = svc.spec_problem()
        if problem is not None:
            yield (("services", i, problem.key), str(problem))
        if s.timing is not None and svc.timeout_ms:
            interval = svc.interval_ms or s.timing.service_check_interval_ms
            if svc.timeout_ms >= interval:
                where = "interval_ms" if svc.interval_ms else "[timing] service_check_interval_ms"
                yield (("services", i, "timeout_ms"),
                       f"must be shorter than the check interval ({where} = {interval}; got {svc.timeout_ms})")


def _membership(s: Sections) -> Iterator[Issue]:
    m = s.membership
    if m is None:
        return
    if m.crm_mon_timeout_s >= m.refresh_s:
        yield (("membership", "crm_mon_timeout_s"),
               f"must be shorter than refresh_s = {m.refresh_s} (got {m.crm_mon_timeout_s})")
    if not s.corosync:
        return
    for i, svc in _valid(s.services):
        if svc.recovery is Recovery.RESTART_THEN_FAILOVER:
            yield (("services", i, "recovery"),
                   'restart-then-failover (the default) cannot be used with membership.backend = "corosync": '
                   "Pacemaker places the resources and this daemon moves none; set restart-then-notify or "
                   "notify-only, and give Pacemaker a monitor operation on the resource to move it")


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _email(s: Sections) -> Iterator[Issue]:
    e = s.email
    if e is None:
        return
    if (e.username is None) != (e.password_file is None):
        missing = "password_file" if e.password_file is None else "username"
        yield (("notify", "email", missing), "username and password_file go together")
    if e.username is not None and e.security is SmtpSecurity.NONE and not _is_loopback(e.smtp_host):
        yield (("notify", "email", "security"),
               f'"none" would send the SMTP password in clear text to {e.smtp_host}: '
               f'use "starttls" or "tls"')


def _exactly_one(loc: Loc, inline_key: str, inline: object, file: object, required: bool = True
                 ) -> Iterator[Issue]:
    if inline is not None and file is not None:
        yield (loc + (inline_key,), f"give either {inline_key} or {inline_key}_file, not both")
    elif required and inline is None and file is None:
        yield (loc + (inline_key,), f"required (inline, or as {inline_key}_file)")


def _communities_and_users(s: Sections) -> Iterator[Issue]:
    yield from _duplicates(("snmp", "listen"), s.listen, None, str, "listen endpoint")
    for i, community in _valid(s.communities):
        loc: Loc = ("snmp", "communities", i)
        yield from _exactly_one(loc, "name", community.name_inline, community.name_file)
        if community.access is Access.WRITE and s.allow_v2c_write is False:
            yield (loc + ("access",),
                   '"write" sends secrets in clear text; set [snmp] allow_v2c_write = true to allow it')
    yield from _duplicates(("snmp", "users"), s.users, "name", lambda u: u.name, "user name")
    for i, user in _valid(s.users):
        loc = ("snmp", "users", i)
        yield from _exactly_one(loc, "auth_key", user.auth_key_inline, user.auth_key_file)
        has_priv = user.priv_protocol is not PrivProtocol.NONE
        if has_priv:
            yield from _exactly_one(loc, "priv_key", user.priv_key_inline, user.priv_key_file)
        elif user.priv_key_inline is not None or user.priv_key_file is not None:
            yield (loc + ("priv_key",), 'set but priv_protocol is "none"')
        if user.access is Access.WRITE and not has_priv:
            yield (loc + ("access",), '"write" needs privacy (authPriv): set priv_protocol')


def _targets(s: Sections) -> Iterator[Issue]:
    yield from _duplicates(("snmp", "targets"), s.targets, "name", lambda t: t.name, "target name")
    users = {user.name for _, user in _valid(s.users)}
    for i, target in _valid(s.targets):
        loc: Loc = ("snmp", "targets", i)
        if target.version is SnmpVersion.V3:
            if target.user is None:
                yield (loc + ("user",), "required for a v3 target")
            elif target.user not in users and _whole(s.users):
                yield (loc + ("user",), f"{target.user!r} is not a [[snmp.users]] name")
            if target.community_inline is not None or target.community_file is not None:
                yield (loc + ("community",), "only for v2c targets")
        else:
            yield from _exactly_one(loc, "community", target.community_inline, target.community_file)
            if target.user is not None:
                yield (loc + ("user",), "only for v3 targets")


def _public_targets(s: Sections) -> Iterator[Issue]:
    """Public targets: each once, and none of the cluster's own addresses (a head answering
    says nothing about whether clients can reach the other head, nor does an alias)."""
    f = s.failover
    if f is None:
        return
    first: dict[object, int] = {}
    for i, target in enumerate(f.public_targets):
        if target in first:
            yield (("failover", "public_targets", i),
                   f"duplicate public target {target} (also failover.public_targets[{first[target]}])")
        first.setdefault(target, i)
    own: dict[object, str] = {}
    for i, head in _valid(s.heads):
        for key in ("lan_a", "lan_b", "public"):
            if getattr(head, key) is not None:
                own[getattr(head, key)] = f"heads[{i}].{key}, an address of head {head.name}"
    for i, alias in _valid(s.aliases):
        own[alias.address] = f"aliases[{i}].address, an alias"
    for i, target in enumerate(f.public_targets):
        if target in own:
            yield (("failover", "public_targets", i), f"{target} is {own[target]}: a public target must be "
                                                      f"another host on the public LAN (the gateway, a router, "
                                                      f"a client)")
    if f.public_targets and s.heads is not None and len(s.heads) == 2 and _whole(s.heads) and any(
            h.public is None for h in s.heads):
        yield (("failover", "public_targets"), "needs a public address on both [[heads]]: the heads compare "
                                               "what each reaches on the public LAN")


# The shortest accounting window (an hour says little about availability below it) and
# the longest retention.
ACCT_WINDOW_MIN_S = 3600
ACCT_RETENTION_MAX_S = 3660 * 86400


def _accounting(s: Sections) -> Iterator[Issue]:
    a = s.accounting
    if a is None:
        return
    seconds = a.window_seconds
    for i, (text, length) in enumerate(zip(a.windows, seconds)):
        if length < ACCT_WINDOW_MIN_S:
            yield (("accounting", "windows", i), f"{text} is shorter than an hour")
        elif length in seconds[:i]:
            yield (("accounting", "windows", i), f"{text} is as long as windows[{seconds.index(length)}]")
    if a.retention_seconds > ACCT_RETENTION_MAX_S:
        yield (("accounting", "retention"), f"{a.retention} is longer than 3660d")
    elif a.retention_seconds < max(seconds):
        longest = a.windows[seconds.index(max(seconds))]
        yield (("accounting", "retention"), f"{a.retention} is shorter than the longest window ({longest}): "
                                            f"that window could not be computed from whole data")


_RULES: tuple[Callable[[Sections], Iterable[Issue]], ...] = (
    _cluster_and_heads, _timing, _tables, _watched_interfaces, _services, _membership, _communities_and_users,
    _targets, _email, _public_targets, _accounting,
)
