"""The standalone SNMP agent: pysnmp engine, transports, security, and our responders.

Security by default: SNMPv1/v2c communities get read access only, unless the operator
sets `allow_v2c_write`; an SNMPv3 user works at exactly the level its keys define (one
with a privacy key uses authPriv for reads and writes alike; docs/security.md says why).
Every VACM view is defined explicitly, including an `excluded` view for "no access", and every group has an access entry for
each security model and level that can reach it: pysnmp's fuzzy access-entry look-up
can pick an entry of another model, so we never let it run. The communities, users and
targets are registered by `credentials.py`; a reload that changes them replaces them in
the running engine (`reconfigure`).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as pconfig
from pysnmp.entity import engine as pengine
from pysnmp.entity.rfc3413 import context
from pysnmp.proto import error as perror
from pysnmp.proto import rfc1902, rfc1905

from haoscar_snmp import __version__
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.measure import Measurements
from haoscar_snmp.core.state import SecurityCounters

from .bounds import UsmStateSweeper, bound_usm_timeline
from .credentials import NO_AUTH, Registered, credentials_of, register, unregister
from .fastpath import CommunityAccess, FastPath, FastReader, UserAccess, UsmReader
from .fit import ResponseFitter, accept_negative_bulk_counts
from .instrum import HaoscarInstrumController
from .resync import NotifyTarget
from .responders import BulkResponder, Committer, GetResponder, NextResponder, SetResponder
from .setter import SetHandler
from .view import MibView

log = logging.getLogger(__name__)

MIB2 = (1, 3, 6, 1, 2, 1)
SNMP_ENGINE_GROUP = (1, 3, 6, 1, 6, 3, 10, 2, 1)
EVERYTHING = (1, 3, 6)
# Benchmarks only: "0" sends every request through pysnmp, to compare the two read paths.
FASTPATH_SWITCH = "HAOSCAR_SNMP_FASTPATH"

# The counters that grow when a request is refused for its credentials, and what each means.
AUTH_FAILURE_COUNTERS = (
    ("__SNMPv2-MIB", "snmpInBadCommunityNames", "unknown community"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames", "unknown SNMPv3 user"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests", "wrong authentication key (bad digest)"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors", "wrong privacy key (decryption error)"),
)

AuthFailureSink = Callable[[str, str], None]


def _ignore_auth_failure(who: str, why: str) -> None:
    """The sink when nobody listens (tests that build an agent alone)."""


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


class Agent:
    """Owns the pysnmp engine. Built from the config, started inside the running loop."""

    def __init__(self, config: Config, view: MibView, set_handler: SetHandler,
                 committer: Committer, counters: SecurityCounters, clock: Clock | None = None,
                 on_auth_failure: AuthFailureSink | None = None,
                 channel: Measurements | None = None) -> None:
        self.config = config
        # The daemon's clock: the monotonic times turned into ticks (haoscarAlarmLastChanged)
        # are read from it, so the start they are counted from must be read from it too.
        self.clock = clock or SystemClock()
        self.view = view
        self.engine = _engine_with_boots_in(Path(config.cluster.state_dir),
                                            config.effective_engine_id())
        self.usm_sweeper = UsmStateSweeper(self.engine)
        self._set_handler = set_handler
        self._committer = committer
        self._counters = counters
        self._set_responder: SetResponder | None = None
        self._credentials = Registered()
        self._started_mono = self.clock.monotonic()
        # Told of each request refused for its credentials: who and why (never the secret).
        self._on_auth_failure: AuthFailureSink = on_auth_failure or _ignore_auth_failure
        # Requests served and dropped, and how long each took, counted here at the source
        # and taken once a second by the performance area.
        self._meter = (channel or Measurements()).meter("snmp.standalone")
        self.fastpath: FastPath | None = None

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
        # RFC 3416's sizes and error rules where pysnmp's differ (fit.py, responders.py).
        fitter = ResponseFitter(self.engine)
        fitter.install()
        accept_negative_bulk_counts(self.engine)
        GetResponder(self.engine, ctx)
        NextResponder(self.engine, ctx)
        BulkResponder(self.engine, ctx, fitter)
        self._set_responder = SetResponder(self.engine, ctx, self._set_handler, self._committer,
                                           self._counters, self.view.root)
        self._set_responder.start()
        self._guard_receive()
        self._drop_informs(ctx)
        bound_usm_timeline(self.engine)
        self.engine.open_dispatcher()  # returns at once: the loop is already running

    async def stop(self) -> None:
        if self._set_responder:
            await self._set_responder.stop()
        self.engine.close_dispatcher()
        if self.fastpath is not None:
            log.info("fast read path: %d requests answered, %d of them SNMPv3",
                     self.fastpath.served, self.fastpath.served_v3)

    def _guard_receive(self) -> None:
        """Time every request, and count undecodable datagrams that pysnmp lets escape as
        exceptions.

        A datagram that came in on a listener is *served* if the engine sent an answer
        while handling it (a response, or an SNMPv3 report: to an engine discovery, to
        wrong credentials) or queued it as a SET to answer once persisted; otherwise it
        is *dropped* (undecodable, an unknown community: nothing answers it). Its
        handling time runs from the moment the engine is handed the datagram to the
        moment it returns, the answer encoded and handed to the kernel (a SET: queued).
        What comes in on the client transport (the answers to our informs) is not a
        request and is not counted. The meter is a few attribute updates per request
        (bench/bench_request_meter.py prices it).

        Some garbage (e.g. b"not snmp at all") makes pysnmp's decoder raise TypeError out
        of its receive path: asyncio logs a traceback and snmpInASNParseErrs does not move.
        Such a datagram is malformed input, so count it there and drop it quietly. An
        exception raised from our own code in the same path is a bug and is logged so.

        A datagram from a listener goes first to the fast read path (`fastpath`), which
        answers the v1/v2c/v3 reads of HAOSCAR-MIB and hands everything else on here.
        """
        dispatcher = self.engine.message_dispatcher
        original = dispatcher.receive_message
        builder = self.engine.get_mib_builder()
        (parse_errors,) = builder.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs")
        failures = [(builder.import_symbols(module, name)[0], why) for module, name, why in AUTH_FAILURE_COUNTERS]
        transports = self.engine.transport_dispatcher
        original_send = transports.send_message
        sweeper = self.usm_sweeper
        sent = [0]                      # datagrams handed to the kernel, ever
        meter, monotonic = self._meter, self.clock.monotonic
        listeners = {udp.DOMAIN_NAME + (n,) for n in range(1, len(self.config.snmp.listen) + 1)} | \
            {udp6.DOMAIN_NAME + (n,) for n in range(1, len(self.config.snmp.listen) + 1)}
        responder = self._set_responder
        if os.environ.get(FASTPATH_SWITCH, "1") != "0":
            registered = lambda: self._credentials    # noqa: E731 - replaced by a reload
            self.fastpath = FastPath(FastReader(self.view),
                                     CommunityAccess(self.engine, registered, self.view.root),
                                     builder, lambda data, d, a: transports.send_message(data, d, a),
                                     UsmReader(UserAccess(self.engine, registered, self.view.root)))
        fast = self.fastpath.serve if self.fastpath else None

        def send_message(*args: Any, **kwargs: Any) -> Any:
            sent[0] += 1
            return original_send(*args, **kwargs)

        def receive_message(engine: Any, domain: Any, address: Any, message: bytes) -> Any:
            if domain not in listeners:
                return handle(engine, domain, address, message)
            before, queued, start = sent[0], responder.queued if responder else 0, monotonic()
            try:
                if fast is not None and fast(domain, address, message):
                    return b""
                return handle(engine, domain, address, message)
            finally:
                if sent[0] != before or (responder is not None and responder.queued != queued):
                    meter.add(int((monotonic() - start) * 1_000_000))
                else:
                    meter.drop()

        def handle(engine: Any, domain: Any, address: Any, message: bytes) -> Any:
            # Which counter a datagram moved says why it was refused; its source, who sent it.
            before = [int(counter.syntax) for counter, _why in failures]
            try:
                return original(engine, domain, address, message)
            except Exception as exc:
                # The files of the frames below this wrapper, read from the code objects:
                # extract_tb would load every source file into linecache (~1 MB kept).
                files = [f.f_code.co_filename for f, _ in traceback.walk_tb(exc.__traceback__)][1:]
                if any("haoscar_snmp" in name or "fcaps" in name for name in files):
                    log.exception("request from %s failed; %s", address, BUG_MARKER)
                else:
                    parse_errors.syntax += 1
                    log.debug("dropped undecodable datagram from %s: %r", address, exc)
                return b""
            finally:
                sweeper.sweep()
                for (counter, why), was in zip(failures, before):
                    if int(counter.syntax) != was:
                        self._refused(address, why)

        transports.send_message = send_message
        dispatcher.receive_message = receive_message

    def _refused(self, address: Any, why: str) -> None:
        try:
            host, port = address[0], address[1]
            who = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        except (TypeError, IndexError):
            who = str(address)
        try:
            self._on_auth_failure(who, why)
        except Exception:
            log.exception("authentication failure from %s not recorded; %s", who, BUG_MARKER)

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
        for group, read, write in (("v2cRead", "haoscarRead", "haoscarNone"),
                                   ("v2cWrite", "haoscarRead", "haoscarWrite"),
                                   ("v2cTrap", "haoscarNone", "haoscarNone")):
            for model in (1, 2):
                pconfig.add_vacm_access(e, group, "", model, NO_AUTH, "exact", read, write,
                                        "haoscarNotify")
        self._credentials = register(e, self.config.snmp)
        self._auth_traps(self.config.snmp)
        for key in self.config.inline_secret_keys():
            log.warning("%s is written inline in the config file: use a key file "
                        "(mode 0600) outside a demo", key)

    # -- credentials: added at start, replaced by a reload -----------------------------

    def reconfigure(self, config: Config) -> bool:
        """Apply a reloaded configuration's credentials to the running engine: communities,
        USM users with their VACM groups and access entries, notification targets, and
        snmpEnableAuthenTraps. The old entries are removed and the new ones added in one
        step of the loop, so no request is ever checked against a mixture, and an old
        community or key is refused from the next request on. The listeners, the engine
        ID and the system group stay as they were started (restart-only). Returns whether
        anything changed."""
        old, new = self.config.snmp, config.snmp
        self.config = config
        self._auth_traps(new)
        if credentials_of(old) == credentials_of(new):
            return False
        try:
            unregister(self.engine, self._credentials)
            self._credentials = register(self.engine, new)
        except Exception:   # a valid configuration always registers: a bug, not a reason to stop
            log.exception("SNMP credentials could not be replaced; %s", BUG_MARKER)
            # Fail closed: the old entries may be gone from the engine, and the fast read
            # path takes its communities from here.
            self._credentials = Registered()
            return False
        log.info("SNMP credentials replaced in the running engine: %d communities, %d users, "
                 "%d notification targets", len(new.communities), len(new.users), len(new.targets))
        return True

    def _auth_traps(self, snmp: Any) -> None:
        """snmpEnableAuthenTraps (RFC 3418) shows and decides whether authentication
        failures are notified: enabled(1) or disabled(2), from `auth_failure_traps`."""
        (flag,) = self.engine.get_mib_builder().import_symbols("__SNMPv2-MIB", "snmpEnableAuthenTraps")
        flag.syntax = flag.syntax.clone(1 if snmp.auth_failure_traps else 2)

    @property
    def targets(self) -> list[NotifyTarget]:
        """The configured notification targets, as registered now (the notifier sends to
        each; a reload may replace them)."""
        return self._credentials.notify_targets

    def auth_traps_enabled(self) -> bool:
        (flag,) = self.engine.get_mib_builder().import_symbols("__SNMPv2-MIB", "snmpEnableAuthenTraps")
        return int(flag.syntax) == 1

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
        for module, name, _why in AUTH_FAILURE_COUNTERS:
            (counter,) = b.import_symbols(module, name)
            total += int(counter.syntax)
        return total

