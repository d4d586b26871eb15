"""The agent's credentials in the pysnmp engine: communities, USM users with their VACM
groups and access entries, notification targets. Registered at start and, on a reload
that changes them, removed and registered again in the running engine (`Agent.reconfigure`).

Security by default: SNMPv1/v2c communities get read access only, unless the operator
sets `allow_v2c_write`; an SNMPv3 user works at exactly the level its keys define (one
with a privacy key uses authPriv for reads and writes alike; docs/security.md says why).
Every group has an access entry for each security model and level that can reach it
(pysnmp's fuzzy access-entry look-up can pick an entry of another model, so it must
never run). Communities are registered under
`community<n>` security names, never under the secret, which would reach the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as pconfig

from haoscar_snmp.config.schema import SnmpConfig

from .mib import OID
from .resync import NotifyTarget

AUTH = {
    "sha": pconfig.USM_AUTH_HMAC96_SHA,
    "sha224": pconfig.USM_AUTH_HMAC128_SHA224,
    "sha256": pconfig.USM_AUTH_HMAC192_SHA256,
    "sha384": pconfig.USM_AUTH_HMAC256_SHA384,
    "sha512": pconfig.USM_AUTH_HMAC384_SHA512,
}
PRIV = {
    "none": pconfig.USM_PRIV_NONE,
    "aes128": pconfig.USM_PRIV_CFB128_AES,
    "aes192": pconfig.USM_PRIV_CFB192_AES,
    "aes256": pconfig.USM_PRIV_CFB256_AES,
}
NO_AUTH, AUTH_NO_PRIV, AUTH_PRIV = 1, 2, 3
LEVEL_NAMES = {NO_AUTH: "noAuthNoPriv", AUTH_NO_PRIV: "authNoPriv", AUTH_PRIV: "authPriv"}


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


@dataclass
class Registered:
    """What `register` added to the engine, so that a reload can remove exactly it."""

    communities: list[str] = field(default_factory=list)   # security names (never secrets)
    users: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, str]] = field(default_factory=list)  # notification, params, address
    notify_targets: list[NotifyTarget] = field(default_factory=list)   # the notifier's view of them
    inform_entries: list[str] = field(default_factory=list)  # v2c inform acknowledgement entries
    # community -> security name: a trap community that is also a request community
    # reuses the request community's entry.
    community_names: dict[str, str] = field(default_factory=dict)


def credentials_of(snmp: SnmpConfig) -> tuple[Any, ...]:
    """The part of [snmp] that `register` turns into engine entries, with the secrets'
    values (a key file's new content under the same file name is a change)."""
    return (snmp.allow_v2c_write,
            tuple((c.secret, c) for c in snmp.communities),
            tuple((u.auth_key, u.priv_key, u) for u in snmp.users),
            tuple((t.community, t) for t in snmp.targets))


def register(e: Any, snmp: SnmpConfig) -> Registered:
    """Add the communities, users (with their VACM groups and access entries) and targets
    of `snmp` to the engine; return what was added, for `unregister`."""
    added = Registered()
    for n, comm in enumerate(snmp.communities, start=1):
        write = _enum_value(comm.access) == "write" and snmp.allow_v2c_write
        group = "v2cWrite" if write else "v2cRead"
        sec_name = f"community{n}"  # never the secret itself: it lands in logs
        pconfig.add_v1_system(e, sec_name, comm.secret, securityName=sec_name)
        added.community_names[comm.secret] = sec_name
        added.communities.append(sec_name)
        for model in (1, 2):
            pconfig.add_vacm_group(e, group, model, sec_name)

    for user in snmp.users:
        priv = _enum_value(user.priv_protocol)
        pconfig.add_v3_user(
            e, user.name, AUTH[_enum_value(user.auth_protocol)], user.auth_key,
            PRIV[priv], user.priv_key if priv != "none" else None)
        added.users.append(user.name)
        write = _enum_value(user.access) == "write"
        group = f"v3:{user.name}"
        pconfig.add_vacm_group(e, group, 3, user.name)
        for level in (NO_AUTH, AUTH_NO_PRIV, AUTH_PRIV):
            # Only the level the user's keys define gets a view: pysnmp's USM refuses the
            # others (unsupportedSecurityLevel), and should it ever let one through, VACM
            # would show it nothing.
            if level != (AUTH_PRIV if priv != "none" else AUTH_NO_PRIV):
                read, wr = "haoscarNone", "haoscarNone"
            else:
                read = "haoscarRead"
                wr = "haoscarWrite" if write and level == AUTH_PRIV else "haoscarNone"
            pconfig.add_vacm_access(e, group, "", 3, level, "exact", read, wr,
                                    "haoscarNotify" if level != NO_AUTH else "haoscarNone")
    _targets(e, snmp, added)
    return added


def unregister(e: Any, added: Registered) -> None:
    """Remove from the engine exactly what `register` added."""
    for notif, params, addr in added.targets:
        pconfig.delete_notification_target(e, notif, params)
        pconfig.delete_target_address(e, addr)
        pconfig.delete_target_parameters(e, params)
    for name in added.users:
        for level in (NO_AUTH, AUTH_NO_PRIV, AUTH_PRIV):
            pconfig.delete_vacm_access(e, f"v3:{name}", "", 3, level)
        pconfig.delete_vacm_group(e, 3, name)
        pconfig.delete_v3_user(e, name)
    for sec_name in added.communities:
        for model in (1, 2):
            pconfig.delete_vacm_group(e, model, sec_name)
        pconfig.delete_v1_system(e, sec_name)
    for entry in added.inform_entries:
        pconfig.delete_v1_system(e, entry)


def _targets(e: Any, snmp: SnmpConfig, added: Registered) -> None:
    """One parameter set, address and notification entry per target, never shared."""
    for n, target in enumerate(snmp.targets, start=1):
        params, addr, tag, notif = (f"p{n}", f"a{n}", f"t{n}", f"n{n}")
        version = _enum_value(target.version)
        if version == "v3":
            user = next(u for u in snmp.users if u.name == target.user)
            level = "authPriv" if _enum_value(user.priv_protocol) != "none" else "authNoPriv"
            pconfig.add_target_parameters(e, params, user.name, level, 3)
        else:
            # A community is one entry in pysnmp's community table: a trap community
            # that is also a request community must reuse that entry, or the later
            # registration would hijack requests made with it.
            sec_name = added.community_names.get(target.community or "")
            if sec_name is None:
                sec_name = f"trap{n}"
                pconfig.add_v1_system(e, sec_name, target.community, securityName=sec_name)
                added.community_names[target.community or ""] = sec_name
                added.communities.append(sec_name)
                for model in (1, 2):
                    pconfig.add_vacm_group(e, "v2cTrap", model, sec_name)
            pconfig.add_target_parameters(e, params, sec_name, "noAuthNoPriv", 1)
            if _enum_value(target.kind) == "inform":
                # The answer to a v2c inform comes from the target's address, which pysnmp
                # maps to the target's tag; it accepts the community there only if an entry
                # of the community carries that tag (an empty tag, "any transport", is not
                # tried for a known target address), and otherwise drops every
                # acknowledgement as an unknown community. This entry matches only messages
                # from the target, so it hijacks no request.
                pconfig.add_v1_system(e, f"{sec_name}@{tag}", target.community,
                                      transportTag=tag, securityName=sec_name)
                added.inform_entries.append(f"{sec_name}@{tag}")
        ep = target.address
        domain = (udp6.DOMAIN_NAME if ":" in ep.host else udp.DOMAIN_NAME)
        _client_transport(e, domain)
        pconfig.add_target_address(
            e, addr, domain, (ep.host, ep.port), params,
            timeout=target.timeout_ms / 10.0,  # RFC 3413 TimeInterval: hundredths
            retryCount=target.retries, tagList=tag)
        pconfig.add_notification_target(e, notif, params, tag, _enum_value(target.kind))
        added.targets.append((notif, params, addr))
        added.notify_targets.append(NotifyTarget(n, notif, target.name, _enum_value(target.kind) == "inform"))


def _client_transport(e: Any, domain: OID) -> None:
    if pconfig.get_transport(e, domain) is not None:
        return
    if domain == udp6.DOMAIN_NAME:
        pconfig.add_transport(e, domain, udp6.Udp6AsyncioTransport().open_client_mode())
    else:
        pconfig.add_transport(e, domain, udp.UdpAsyncioTransport().open_client_mode())
