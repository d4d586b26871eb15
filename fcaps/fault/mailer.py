"""Operator e-mail: one mail when something needs a human, one when it is over.

SNMP notifications already report every event to the NMS; e-mail is for paging the
operator, so it must not page for every event. Events are grouped into incidents keyed by
(kind, subject): a service whose recovery ladder escalated or gave up, a head declared
down, a failover, a split brain. An incident produces one "problem" mail when it opens and
one "recovered" mail when it closes; events in between are listed in the second mail. The
problem mail waits a short settle delay, so that the burst of events of one failover
arrives in one mail, and a problem that is over within that delay gives a single
"resolved" mail instead of two.

None of this may delay the HA work: `on_event` is a synchronous event-bus subscriber
that only records and schedules; mails go through a bounded queue to one sender task,
which retries with a growing delay. A mail that cannot be queued (queue full, more than
`max_per_hour` in the last hour) is dropped and counted; nothing waits for the SMTP
server. Every timer and wait (the settle delay, the delay between attempts) runs on the
mailer's clock, timed by its monotonic clock, so a wall-clock step neither fires nor holds
back a mail.

The configuration is read when it is used: an operator's SET of the recipients applies to
the next mail, and a disabled mailer forgets what it was tracking.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import importlib
import logging
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Awaitable, Callable

from haoscar_snmp.config.schema import Config, EmailConfig, SmtpSecurity
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, Timer
from haoscar_snmp.core.events import Event, EventType, is_counter_reset
from haoscar_snmp.core.state import State
from haoscar_snmp.core.text import printable

log = logging.getLogger(__name__)

SETTLE_S = 2.0                # a new incident's events gather this long before the problem mail
MAX_RETRY_DELAY_S = 600.0     # the doubling retry delay stops growing here
HOUR_S = 3600.0               # the rate limit's sliding window, and how often a drop is logged
MAX_LISTED = 50               # events listed in one mail; more are counted, not listed
ERROR_LIMIT = 255             # state.email.last_error, as the MIB's DisplayString allows

Transport = Callable[[EmailMessage, EmailConfig], Awaitable[None]]


class Kind(enum.StrEnum):
    SERVICE = "service"
    HEAD = "head"
    FAILOVER = "failover"
    SPLIT_BRAIN = "split-brain"
    LAN = "LAN"                  # a private LAN failed as a whole
    INTERFACE = "interface"      # one watched interface (node/LAN) down
    # The cluster past two heads (fcaps/fault/cluster): what Corosync and Pacemaker say.
    CLUSTER_NODE = "cluster node"    # a node left the membership
    QUORUM = "quorum"                # the partition lost quorum
    MEMBERSHIP = "membership"        # Corosync or Pacemaker cannot be read
    RESOURCE = "resource"            # a Pacemaker resource failed
    STALE_ADDRESS = "stale address"  # an address left on this head


class Part(enum.Enum):
    OPEN = "open"     # opens an incident, or joins the open one
    CLOSE = "close"   # closes the open incident; without one, nothing happens


# Event types that take part in an incident; every other type sends no mail.
RULES: dict[EventType, tuple[Kind, Part]] = {
    EventType.SERVICE_ESCALATED: (Kind.SERVICE, Part.OPEN),
    EventType.SERVICE_RECOVERY_EXHAUSTED: (Kind.SERVICE, Part.OPEN),
    EventType.SERVICE_RECOVERED: (Kind.SERVICE, Part.CLOSE),
    EventType.SERVICE_LADDER_RESET: (Kind.SERVICE, Part.CLOSE),
    EventType.HEAD_DOWN: (Kind.HEAD, Part.OPEN),
    EventType.HEAD_UP: (Kind.HEAD, Part.CLOSE),
    EventType.FAILOVER_STARTED: (Kind.FAILOVER, Part.OPEN),
    # Joins the failover under way and keeps it open; a takeover without FAILOVER_STARTED
    # (a switchover) that fails opens one.
    EventType.FAILOVER_FAILED: (Kind.FAILOVER, Part.OPEN),
    EventType.FAILOVER_COMPLETED: (Kind.FAILOVER, Part.CLOSE),
    EventType.SPLIT_BRAIN_DETECTED: (Kind.SPLIT_BRAIN, Part.OPEN),
    EventType.SPLIT_BRAIN_RESOLVED: (Kind.SPLIT_BRAIN, Part.CLOSE),
    # The LAN poller tells these after its hold-down, and only on the reporting head.
    EventType.LAN_FAILED: (Kind.LAN, Part.OPEN),
    EventType.LAN_RECOVERED: (Kind.LAN, Part.CLOSE),
    EventType.LAN_IF_DOWN: (Kind.INTERFACE, Part.OPEN),
    EventType.LAN_IF_UP: (Kind.INTERFACE, Part.CLOSE),
    EventType.CLUSTER_NODE_LEFT: (Kind.CLUSTER_NODE, Part.OPEN),
    EventType.CLUSTER_NODE_JOINED: (Kind.CLUSTER_NODE, Part.CLOSE),
    EventType.QUORUM_LOST: (Kind.QUORUM, Part.OPEN),
    EventType.QUORUM_REGAINED: (Kind.QUORUM, Part.CLOSE),
    EventType.MEMBERSHIP_UNKNOWN: (Kind.MEMBERSHIP, Part.OPEN),
    EventType.MEMBERSHIP_RECOVERED: (Kind.MEMBERSHIP, Part.CLOSE),
    EventType.RESOURCE_FAILED: (Kind.RESOURCE, Part.OPEN),
    EventType.RESOURCE_RECOVERED: (Kind.RESOURCE, Part.CLOSE),
    EventType.ADDRESS_STALE: (Kind.STALE_ADDRESS, Part.OPEN),
    EventType.ADDRESS_STALE_CLEARED: (Kind.STALE_ADDRESS, Part.CLOSE),
}
# Cluster-wide incidents are keyed by the cluster's name, not by the head that reported them.
CLUSTER_WIDE = (Kind.FAILOVER, Kind.SPLIT_BRAIN, Kind.QUORUM)
DATA_KEYS = ("reason", "rung", "action")


def one_line(value: object, limit: int = 120) -> str:
    """Text safe in a header or a body line: control characters (CR, LF) escaped, length cut."""
    return printable(value, limit).replace("\r", " ").replace("\n", " ")


def utc(when: float) -> str:
    """ISO 8601, UTC, milliseconds."""
    stamp = datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass
class Incident:
    kind: Kind
    subject: str
    events: list[Event] = field(default_factory=list)
    unlisted: int = 0                          # events beyond MAX_LISTED
    mailed: bool = False                       # the problem mail has been composed
    timer: Timer | None = None   # the settle delay, while it runs

    def add(self, event: Event, last: bool = False) -> None:
        """Remember an event; the one that closes the incident (`last`) is always listed."""
        if len(self.events) < MAX_LISTED or last:
            self.events.append(event)
        else:
            self.unlisted += 1


@dataclass(frozen=True)
class Draft:
    """A mail waiting in the queue; headers that name the recipients are set when it is sent."""

    subject: str
    body: str
    time: float   # wall clock when composed (the Date header)


class Throttle:
    """Lets one log line per key through per hour (monotonic), so a flood logs once."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        now = self.clock.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < HOUR_S:
            return False
        self._last[key] = now
        return True


class RateLimit:
    """At most `limit` mails in any sliding hour of the monotonic clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._times: deque[float] = deque()

    def take(self, limit: int) -> bool:
        now = self.clock.monotonic()
        while self._times and now - self._times[0] >= HOUR_S:
            self._times.popleft()
        if len(self._times) >= limit:
            return False
        self._times.append(now)
        return True


async def smtp_transport(message: EmailMessage, email: EmailConfig) -> None:
    """Send one message with aiosmtplib as `[notify.email]` says; raises on failure.

    aiosmtplib is loaded at the first mail, in a thread (an import blocks): a daemon that
    never mails does not hold it (bench/bench_memory.py)."""
    aiosmtplib = await asyncio.to_thread(importlib.import_module, "aiosmtplib")
    tls_context = None
    if email.security is not SmtpSecurity.NONE and email.ca_file is not None:
        # Reading the CA file is disk I/O: off the loop.
        tls_context = await asyncio.to_thread(ssl.create_default_context, cafile=str(email.ca_file))
    credentials = email.username is not None and email.password is not None
    _, response = await aiosmtplib.send(
        message,
        hostname=email.smtp_host,
        port=email.smtp_port,
        username=email.username if credentials else None,
        password=email.password if credentials else None,
        use_tls=email.security is SmtpSecurity.TLS,
        start_tls=email.security is SmtpSecurity.STARTTLS,
        timeout=email.timeout_ms / 1000.0,
        tls_context=tls_context,
        validate_certs=True,
    )
    log.debug("SMTP server %s:%d accepted the mail: %s", email.smtp_host, email.smtp_port, one_line(response))


class Mailer:
    """Event-bus consumer that mails the operator; sole writer of `state.email`."""

    def __init__(self, state: State, config: Callable[[], Config], clock: Clock,
                 transport: Transport | None = None, *, settle_s: float = SETTLE_S,
                 retry_delay_s: float | None = None) -> None:
        """`retry_delay_s` replaces `retry_delay_ms` of the configuration (tests)."""
        self.state = state
        self.config = config
        self.clock = clock
        self.transport = transport or smtp_transport
        self.settle_s = settle_s
        self.retry_delay_s = retry_delay_s
        self._incidents: dict[tuple[Kind, str], Incident] = {}
        self._queue: deque[Draft] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: Draft | None = None
        self._rate = RateLimit(clock)
        self._throttle = Throttle(clock)

    # -- the event side: synchronous, quick, never raises ---------------------------------

    def on_event(self, event: Event) -> None:
        try:
            if is_counter_reset(event):
                self._reset_counters()
            email = self.config().notify.email
            if not (email.enabled and email.to):
                self._forget()
                return
            rule = RULES.get(event.type)
            if rule is not None:
                self._track(event, *rule)
        except Exception:  # a mail is never worth a failure elsewhere
            log.exception("the mailer failed on %s; %s", event.type.name, BUG_MARKER)

    def _reset_counters(self) -> None:
        stats = self.state.email
        stats.sent = stats.failed = stats.dropped = 0

    def _forget(self) -> None:
        """Disabled (or nobody to mail): what was being tracked would never be mailed."""
        for incident in self._incidents.values():
            if incident.timer is not None:
                incident.timer.cancel()
        self._incidents.clear()

    def _track(self, event: Event, kind: Kind, part: Part) -> None:
        subject = self.config().cluster.name if kind in CLUSTER_WIDE else event.subject
        key = (kind, subject)
        incident = self._incidents.get(key)
        if part is Part.CLOSE:
            if incident is None:
                return
            incident.add(event, last=True)
            del self._incidents[key]
            if incident.mailed:
                self._submit(self._compose(incident, "RECOVERED"))
            else:  # over within the settle delay: one mail says both
                if incident.timer is not None:
                    incident.timer.cancel()
                self._submit(self._compose(incident, "RESOLVED"))
            return
        if incident is not None:
            incident.add(event)   # in the problem mail if it is still settling, else in the recovery mail
            return
        incident = self._incidents[key] = Incident(kind, subject)
        incident.add(event)
        try:
            incident.timer = self.clock.call_later(self.settle_s, self._settled, key)
        except RuntimeError:   # no running loop: nothing to wait on
            self._settled(key)

    def _settled(self, key: tuple[Kind, str]) -> None:
        try:
            incident = self._incidents.get(key)
            if incident is None or incident.mailed:
                return
            incident.timer = None
            email = self.config().notify.email
            if not (email.enabled and email.to):
                self._forget()
                return
            incident.mailed = True
            first = incident.events[0]
            self._submit(self._compose(incident, "PROBLEM", headline=first.text))
            # The recovery mail lists the first event again, then what happened after this mail.
            incident.events, incident.unlisted = [first], 0
        except Exception:
            log.exception("the mailer failed to compose a mail; %s", BUG_MARKER)

    # -- composing ----------------------------------------------------------------------

    def _compose(self, incident: Incident, status: str, headline: str = "") -> Draft:
        cfg = self.config()
        cluster, head = one_line(cfg.cluster.name, 64), one_line(cfg.cluster.local_head, 64)
        what = f"{incident.kind.value} {one_line(incident.subject, 128)}"
        subject = f"[haoscar {cluster}/{head}] {status} {what}"
        if headline:
            subject += f": {one_line(headline)}"
        first = incident.events[0]
        last = incident.events[-1]
        lines = [
            f"Cluster:  {cluster}",
            f"Head:     {head} (this mail's sender)",
            f"Incident: {what}",
            f"Status:   {self._status_text(status)}",
            f"Since:    {utc(first.time)}",
        ]
        if status != "PROBLEM":
            lines.append(f"Until:    {utc(last.time)} ({max(last.time - first.time, 0.0):.1f} s)")
        lines += ["", "Events:" if status != "RECOVERED" else "Events (the first one opened the incident):"]
        for event in incident.events:
            lines.append(f"  {utc(event.time)} {event.type.name} {event.severity.name}: "
                         f"{one_line(event.text, 255)}")
            for name in DATA_KEYS:
                if name in event.data:
                    lines.append(f"      {name}: {self._value(event.data[name])}")
        if incident.unlisted:
            lines.append(f"  ... and {incident.unlisted} more event(s), not listed")
        lines += ["", "Every event is also in the agent's event history (haoscarEventTable)."]
        return Draft(subject, "\n".join(lines) + "\n", self.clock.time())

    @staticmethod
    def _status_text(status: str) -> str:
        return {"PROBLEM": "open: needs attention",
                "RESOLVED": "over within a few seconds; no further mail",
                "RECOVERED": "over"}.get(status, status)

    @staticmethod
    def _value(value: object) -> str:
        return one_line(value.name.lower() if isinstance(value, enum.Enum) else value, 255)

    def _message(self, draft: Draft, email: EmailConfig) -> EmailMessage:
        message = EmailMessage()
        message["From"] = email.sender
        message["To"] = ", ".join(email.to)
        message["Date"] = formatdate(draft.time, usegmt=True)
        host = re.sub(r"[^A-Za-z0-9.-]", "", self.config().cluster.local_head) or "haoscar"
        message["Message-ID"] = make_msgid("haoscar", domain=host)  # with domain: no DNS lookup
        message["Subject"] = draft.subject
        message.set_content(draft.body)
        return message

    # -- the queue -------------------------------------------------------------------------

    def _submit(self, draft: Draft) -> None:
        email = self.config().notify.email
        if len(self._queue) >= email.queue_size:
            self._drop("queue", f"e-mail queue full ({email.queue_size}): mail dropped: {draft.subject}")
            return
        if not self._rate.take(email.max_per_hour):
            self._drop("rate", f"more than {email.max_per_hour} e-mails in an hour: mail dropped "
                               f"(and others for the next hour, logged once): {draft.subject}")
            return
        self._queue.append(draft)
        self.state.email.queued = len(self._queue)
        if self._wakeup is not None:
            self._wakeup.set()

    def _drop(self, reason: str, text: str) -> None:
        self.state.email.dropped += 1
        if self._throttle.ready(reason):
            log.warning("%s", text)

    # -- the sender task ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mailer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lost = len(self._queue) + (self._sending is not None)
        lost += sum(1 for incident in self._incidents.values() if not incident.mailed)
        self._forget()
        self._queue.clear()
        self._sending = None
        stats = self.state.email
        stats.queued = 0
        if lost:
            stats.dropped += lost
            log.warning("mailer stopping: %d e-mail(s) not sent, dropped", lost)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            draft = self._queue.popleft()
            self.state.email.queued = len(self._queue)
            self._sending = draft
            try:
                await self._deliver(draft)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the mailer failed to send; %s", BUG_MARKER)
            self._sending = None

    async def _deliver(self, draft: Draft) -> None:
        email = self.config().notify.email
        if not (email.enabled and email.to):
            self._drop("disabled", f"e-mail disabled or no recipients: mail dropped: {draft.subject}")
            return
        message = self._message(draft, email)   # one Message-ID for every attempt
        delay = self.retry_delay_s if self.retry_delay_s is not None else email.retry_delay_ms / 1000.0
        attempts = email.retries + 1
        stats = self.state.email
        for attempt in range(1, attempts + 1):
            email = self.config().notify.email   # a server changed meanwhile applies to the next attempt
            try:
                await self.transport(message, email)
            except Exception as error:  # any failure of the server, the network or TLS
                stats.last_error = self._error_text(error)
                if attempt == attempts:
                    stats.failed += 1
                    log.warning("e-mail to the operator not sent: SMTP server %s:%d failed %d time(s), "
                                "last: %s", email.smtp_host, email.smtp_port, attempts, stats.last_error)
                    return
                log.info("e-mail attempt %d of %d failed (%s); next in %.1f s",
                         attempt, attempts, stats.last_error, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
            else:
                stats.sent += 1
                stats.last_sent = self.clock.time()
                log.info("e-mail sent to %s: %s", ", ".join(email.to), draft.subject)
                return

    @staticmethod
    def _error_text(error: Exception) -> str:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return printable(text, ERROR_LIMIT - 40)[:ERROR_LIMIT]
