"""The standalone SNMP agent: pysnmp engine, transports, security, and our responders.

Security by default: SNMPv1/v2c communities get read access only, unless the operator
sets `allow_v2c_write`; SNMPv3 users with write access must use authPriv (a write user
who sends authNoPriv gets read access only). Every VACM view is defined explicitly,
including an `excluded` view for "no access", and every group has an access entry for
each security model and level that can reach it: pysnmp's fuzzy access-entry look-up
can pick an entry of another model, so we never let it run.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as pconfig
from pysnmp.entity import engine as pengine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import error as perror
from pysnmp.proto import rfc1902, rfc1905

from haoscar_snmp import __version__
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.state import SecurityCounters

from .instrum import HaoscarInstrumController
from .mib import OID
from .responders import Committer, SetResponder
from .setter import SetHandler
from .view import MibView

log = logging.getLogger(__name__)

MIB2 = (1, 3, 6, 1, 2, 1)
SNMP_ENGINE_GROUP = (1, 3, 6, 1, 6, 3, 10, 2, 1)
EVERYTHING = (1, 3, 6)

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


def _engine_with_boots_in(state_dir: Path, engine_id: bytes) -> Any:
    """An SnmpEngine whose snmpEngineBoots file lives in our state directory.

    pysnmp keeps snmpEngineBoots (which USM needs to grow across restarts, or old
    messages could be replayed) under tempfile.gettempdir(); /tmp may be wiped at boot
    and is shared. It offers no setting, so point tempfile there for the constructor.
    """
    saved = tempfile.tempdir
    tempfile.tempdir = str(state_dir)
    try:
        return pengine.SnmpEngine(rfc1902.OctetString(engine_id))
    finally:
        tempfile.tempdir = saved


class _DistinctList(list):  # type: ignore[type-arg]
    """A list that keeps one copy of each item (a tick's list in pysnmp's USM timeline queue)."""

    def append(self, item: Any) -> None:
        if item not in self:
            super().append(item)


class _DistinctBuckets(dict):  # type: ignore[type-arg]
    """pysnmp's USM timeline queue, whose new lists keep one copy of each engine ID."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _DistinctList(value))

    def update(self, other: Any = (), **kw: Any) -> None:  # type: ignore[override]
        for key, value in dict(other, **kw).items():
            self[key] = value


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


class Agent:
    """Owns the pysnmp engine. Built from the config, started inside the running loop."""

    def __init__(self, config: Config, view: MibView, set_handler: SetHandler,
                 committer: Committer, counters: SecurityCounters, clock: Clock | None = None) -> None:
        self.config = config
        # The daemon's clock: the monotonic times turned into ticks (haoscarAlarmLastChanged)
        # are read from it, so the start they are counted from must be read from it too.
        self.clock = clock or SystemClock()
        self.view = view
        self.engine = _engine_with_boots_in(Path(config.cluster.state_dir),
                                            config.effective_engine_id())
        self._set_handler = set_handler
        self._committer = committer
        self._counters = counters
        self._set_responder: SetResponder | None = None
        self.target_names: list[str] = []
        self._started_mono = self.clock.monotonic()

    # -- set-up ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the listeners and register the responders; call from the running loop."""
        self._transports()
        self._security()
        self._system_group()
        ctx = context.SnmpContext(self.engine)
        fallback = ctx.get_mib_instrum(b"")
        instrum = HaoscarInstrumController(self.view, fallback)
        ctx.unregister_context_name(b"")
        ctx.register_context_name(b"", instrum)
        cmdrsp.GetCommandResponder(self.engine, ctx)
        cmdrsp.NextCommandResponder(self.engine, ctx)
        cmdrsp.BulkCommandResponder(self.engine, ctx)
        self._set_responder = SetResponder(self.engine, ctx, self._set_handler, self._committer,
                                           self._counters, self.view.root)
        self._set_responder.start()
        self._guard_receive()
        self._drop_informs(ctx)
        self._bound_usm_timeline()
        self.engine.open_dispatcher()  # returns at once: the loop is already running

    async def stop(self) -> None:
        if self._set_responder:
            await self._set_responder.stop()
        self.engine.close_dispatcher()

    def _guard_receive(self) -> None:
        """Count undecodable datagrams that pysnmp lets escape as exceptions.

        Some garbage (e.g. b"not snmp at all") makes pysnmp's decoder raise TypeError out
        of its receive path: asyncio logs a traceback and snmpInASNParseErrs does not move.
        Such a datagram is malformed input, so count it there and drop it quietly. An
        exception raised from our own code in the same path is a bug and is logged so.
        """
        dispatcher = self.engine.message_dispatcher
        original = dispatcher.receive_message
        (parse_errors,) = self.engine.get_mib_builder().import_symbols(
            "__SNMPv2-MIB", "snmpInASNParseErrs")

        def receive_message(engine: Any, domain: Any, address: Any, message: bytes) -> Any:
            try:
                return original(engine, domain, address, message)
            except Exception as exc:
                frames = traceback.extract_tb(exc.__traceback__)[1:]  # [0] is this wrapper
                if any("haoscar_snmp" in f.filename or "fcaps" in f.filename for f in frames):
                    log.exception("request from %s failed; %s", address, BUG_MARKER)
                else:
                    parse_errors.syntax += 1
                    log.debug("dropped undecodable datagram from %s: %r", address, exc)
                return b""

        dispatcher.receive_message = receive_message

    def _drop_informs(self, ctx: Any) -> None:
        """Drop an InformRequest at once and release what pysnmp keeps for it.

        The agent takes no notifications, so no application is registered for informs;
        pysnmp then tries to answer with a Report, which v1 and v2c cannot carry, and
        gives up without releasing the request's security state: it stays in the
        community model's cache for good, some 800 bytes an inform (measured with
        bench_fuzz.py), so anyone with a read community could grow the agent without
        bound. Registered for informs, this handler releases the state at once and counts
        the datagram where pysnmp would have (snmpUnknownPDUHandlers).
        """
        (unknown,) = self.engine.get_mib_builder().import_symbols(
            "__SNMP-MPD-MIB", "snmpUnknownPDUHandlers")

        def drop(engine: Any, mp_model: Any, sec_model: Any, sec_name: Any, sec_level: Any,
                 ctx_engine_id: Any, ctx_name: Any, pdu_version: Any, pdu: Any,
                 max_size: Any, state_reference: Any) -> None:
            unknown.syntax += 1
            mp = engine.message_processing_subsystems.get(int(mp_model))
            try:
                info = mp._cache.pop_by_state_reference(state_reference)
            except (AttributeError, perror.ProtocolError):
                return
            sm = engine.security_models.get(int(info.get("securityModel", 0)))
            if sm is not None and info.get("securityStateReference") is not None:
                try:
                    sm.release_state_information(info["securityStateReference"])
                except perror.ProtocolError:
                    pass

        self.engine.message_dispatcher.register_context_engine_id(
            ctx.contextEngineId, (rfc1905.InformRequestPDU.tagSet,), drop)

    def _bound_usm_timeline(self) -> None:
        """Keep pysnmp's USM from holding a copy of the engine ID per message for 300 s.

        For every authenticated message the USM notes the sender's engine ID in a list
        due to expire 300 s later, one list per 0.1 s timer tick, the same ID appended
        once per message: measured with bench_fuzz.py, ~500 bytes a request held for five
        minutes (a replayed authPriv GET repeated 2,000 times a second would hold some
        300 MB). An ID that is already in a tick's list changes nothing when appended
        again (the expiry deletes the ID's timeline once), so each list keeps one copy.
        """
        usm = self.engine.security_models.get(3)
        name = "_SnmpUSMSecurityModel__timelineExpQueue"
        queue = getattr(usm, name, None)
        if not isinstance(queue, dict):
            log.warning("pysnmp's USM has no timeline queue to bound (pysnmp changed?)")
            return
        distinct = _DistinctBuckets()
        distinct.update(queue)
        setattr(usm, name, distinct)

    def _transports(self) -> None:
        """Bind every listener here, so that one that cannot be bound stops the start with
        the address named (pysnmp binds later, in a task, and only logs a failure: the
        agent would run on deaf)."""
        sockets = []
        try:
            for ep in self.config.snmp.listen:
                v6 = ":" in ep.host
                s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                if v6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s.bind((ep.host, ep.port))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on udp {ep}: {exc.strerror}") from None
                s.setblocking(False)
        except BaseException:
            for s in sockets:
                s.close()
            raise
        for n, (ep, s) in enumerate(zip(self.config.snmp.listen, sockets), start=1):
            if ":" in ep.host:
                transport = udp6.Udp6AsyncioTransport().open_server_mode(sock=s)
                pconfig.add_transport(self.engine, udp6.DOMAIN_NAME + (n,), transport)
            else:
                transport = udp.UdpAsyncioTransport().open_server_mode(sock=s)
                pconfig.add_transport(self.engine, udp.DOMAIN_NAME + (n,), transport)
            log.info("SNMP agent listening on udp %s port %d", ep.host, ep.port)

    def _security(self) -> None:
        e = self.engine
        root = self.view.root
        pconfig.add_vacm_view(e, "haoscarNone", "excluded", EVERYTHING, "")
        pconfig.add_vacm_view(e, "haoscarRead", "included", MIB2, "")
        pconfig.add_vacm_view(e, "haoscarRead", "included", SNMP_ENGINE_GROUP, "")
        pconfig.add_vacm_view(e, "haoscarRead", "included", root, "")
        pconfig.add_vacm_view(e, "haoscarWrite", "included", root, "")
        pconfig.add_vacm_view(e, "haoscarNotify", "included", EVERYTHING, "")

        pconfig.add_context(e, "")
        snmp = self.config.snmp
        self._community_names: dict[str, str] = {}
        for n, comm in enumerate(snmp.communities, start=1):
            write = _enum_value(comm.access) == "write" and snmp.allow_v2c_write
            group = "v2cWrite" if write else "v2cRead"
            sec_name = f"community{n}"  # never the secret itself: it lands in logs
            pconfig.add_v1_system(e, sec_name, comm.secret, securityName=sec_name)
            self._community_names[comm.secret] = sec_name
            for model in (1, 2):
                pconfig.add_vacm_group(e, group, model, sec_name)
        for group, read, write in (("v2cRead", "haoscarRead", "haoscarNone"),
                                   ("v2cWrite", "haoscarRead", "haoscarWrite"),
                                   ("v2cTrap", "haoscarNone", "haoscarNone")):
            for model in (1, 2):
                pconfig.add_vacm_access(e, group, "", model, NO_AUTH, "exact", read, write,
                                        "haoscarNotify")

        for user in snmp.users:
            priv = _enum_value(user.priv_protocol)
            pconfig.add_v3_user(
                e, user.name, AUTH[_enum_value(user.auth_protocol)], user.auth_key,
                PRIV[priv], user.priv_key if priv != "none" else None)
            write = _enum_value(user.access) == "write"
            group = f"v3:{user.name}"
            pconfig.add_vacm_group(e, group, 3, user.name)
            for level in (NO_AUTH, AUTH_NO_PRIV, AUTH_PRIV):
                if level == NO_AUTH or (level == AUTH_PRIV and priv == "none"):
                    read, wr = "haoscarNone", "haoscarNone"
                else:
                    read = "haoscarRead"
                    wr = "haoscarWrite" if write and level == AUTH_PRIV else "haoscarNone"
                pconfig.add_vacm_access(e, group, "", 3, level, "exact", read, wr,
                                        "haoscarNotify" if level != NO_AUTH else "haoscarNone")
        for key in self.config.inline_secret_keys():
            log.warning("%s is written inline in the config file: use a key file "
                        "(mode 0600) outside a demo", key)
        self._targets()

    def _targets(self) -> None:
        """One parameter set, address and notification entry per target, never shared."""
        e = self.engine
        for n, target in enumerate(self.config.snmp.targets, start=1):
            params, addr, tag, notif = (f"p{n}", f"a{n}", f"t{n}", f"n{n}")
            version = _enum_value(target.version)
            if version == "v3":
                user = next(u for u in self.config.snmp.users if u.name == target.user)
                level = "authPriv" if _enum_value(user.priv_protocol) != "none" else "authNoPriv"
                pconfig.add_target_parameters(e, params, user.name, level, 3)
            else:
                # A community is one entry in pysnmp's community table: a trap community
                # that is also a request community must reuse that entry, or the later
                # registration would hijack requests made with it.
                sec_name = self._community_names.get(target.community or "")
                if sec_name is None:
                    sec_name = f"trap{n}"
                    pconfig.add_v1_system(e, sec_name, target.community, securityName=sec_name)
                    self._community_names[target.community or ""] = sec_name
                    for model in (1, 2):
                        pconfig.add_vacm_group(e, "v2cTrap", model, sec_name)
                pconfig.add_target_parameters(e, params, sec_name, "noAuthNoPriv", 1)
            ep = target.address
            domain = (udp6.DOMAIN_NAME if ":" in ep.host else udp.DOMAIN_NAME)
            self._client_transport(domain)
            pconfig.add_target_address(
                e, addr, domain, (ep.host, ep.port), params,
                timeout=target.timeout_ms / 10.0,  # RFC 3413 TimeInterval: hundredths
                retryCount=target.retries, tagList=tag)
            pconfig.add_notification_target(e, notif, params, tag, _enum_value(target.kind))
            self.target_names.append(notif)

    def _client_transport(self, domain: OID) -> None:
        if pconfig.get_transport(self.engine, domain) is not None:
            return
        if domain == udp6.DOMAIN_NAME:
            pconfig.add_transport(self.engine, domain, udp6.Udp6AsyncioTransport().open_client_mode())
        else:
            pconfig.add_transport(self.engine, domain, udp.UdpAsyncioTransport().open_client_mode())

    def _system_group(self) -> None:
        builder = self.engine.get_mib_builder()
        c = self.config
        values = {
            "sysDescr": f"haoscar-snmp {__version__}: HA-OSCAR cluster head agent "
                        f"(cluster {c.cluster.name}, head {c.cluster.local_head})",
            "sysObjectID": self.view.mib.identities["haoscarAgentProduct"],
            "sysContact": c.snmp.sys_contact,
            "sysName": c.effective_sys_name(),
            "sysLocation": c.snmp.sys_location,
        }
        for name, value in values.items():
            (instance,) = builder.import_symbols("__SNMPv2-MIB", name)
            instance.syntax = instance.syntax.clone(value)
        # sysUpTime counts from this agent's start, not from when pysnmp was imported.
        (up,) = builder.import_symbols("__SNMPv2-MIB", "sysUpTime")
        up.syntax.createdAt = time.time()
        self._started_mono = self.clock.monotonic()

    # -- read-outs for the MIB ---------------------------------------------------------

    def uptime_ticks(self, monotonic: float) -> int:
        """sysUpTime, in hundredths of a second, at the given time of the agent's monotonic clock."""
        return max(int((monotonic - self._started_mono) * 100), 0) & 0xFFFFFFFF

    def uptime(self) -> int:
        """sysUpTime now, in hundredths of a second (AgentX responses carry it)."""
        return self.uptime_ticks(self.clock.monotonic())

    def auth_failures(self) -> int:
        """Requests refused for a bad community or bad USM credentials."""
        b = self.engine.get_mib_builder()
        total = 0
        for module, name in (("__SNMPv2-MIB", "snmpInBadCommunityNames"),
                             ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
                             ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
                             ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors")):
            (counter,) = b.import_symbols(module, name)
            total += int(counter.syntax)
        return total

