"""Authentication failures made visible: SNMP requests refused for their credentials,
heartbeats and settings-exchange datagrams refused for their HMAC or as replays.

Whoever sends forged packets sets their pace, so each kind goes through its own
`RateLimiter`: the first few become events at once (history, and a notification),
then one per period at most, each saying how many were held back since the last. The
counters (haoscarSnmpAuthFailures, haoscarHbAuthFailures, haoscarHbReplays, ...) still
count every single one.

SNMP failures arrive one by one from the agent's receive path (`snmp_refused`, which
only records); the heartbeat's and the exchange's are counted by the heartbeat process
and the sync job, and the `security` job reads their growth once a second.

Refusals on the heartbeat port that go on (RAISE_AFTER cycles in a row) also raise an
authenticationFailure(9) alarm, cleared after CLEAR_AFTER_S without any: the heads'
keys differ (which makes each believe the other dead) or someone forges heartbeats.
A refused SNMP request raises no alarm: a misconfigured poller or a guesser would keep
one raised, and notifying them is the operator's choice (snmpEnableAuthenTraps).
"""

from __future__ import annotations

from dataclasses import dataclass

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity, is_counter_reset
from haoscar_snmp.core.ratelimit import RateLimiter
from haoscar_snmp.core.state import State
from haoscar_snmp.core.text import printable

BURST = 5            # events let through at once at the start of a burst
PERIOD_S = 60.0      # then one per minute, per kind
POLL_S = 1.0         # the security job's interval
TEXT_LIMIT = 255     # haoscarEventText is a DisplayString
RAISE_AFTER = 3      # cycles in a row with refused heartbeat traffic: not one stray packet
CLEAR_AFTER_S = 60.0 # without any refused, the alarm is cleared
ALARM_SUBJECT = "heartbeat"


@dataclass
class _Latest:
    """The most recent refusal held back, for the summary."""

    who: str = ""
    why: str = ""


class AuthFailures:
    """The `security` job: a periodic job (lateness is harmless), and the sink of the
    agent's refused requests. Writes no state of its own; publishes SNMP_AUTH_FAILURE and
    PEER_AUTH_FAILURE events and raises and clears the authenticationFailure(9) alarm
    (through the alarm table's owner)."""

    name = "security"

    def __init__(self, state: State, bus: EventBus, alarms: Alarms, clock: Clock) -> None:
        self.state = state
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self._streak = 0                       # cycles in a row with refusals
        self._last_refused: float | None = None  # monotonic time of the last such cycle
        self._snmp = RateLimiter(clock, BURST, PERIOD_S)
        self._snmp_latest = _Latest()
        self._peer = RateLimiter(clock, BURST, PERIOD_S)
        self._peer_held: dict[str, int] = {}
        self._seen = self._peer_counters()

    def interval(self) -> float:
        return POLL_S

    @property
    def snmp_held(self) -> int:
        """Refused SNMP requests held back since the last event, for the next summary."""
        return self._snmp.suppressed

    # -- SNMP: one call per refused request, from the agent's receive path --------------

    def snmp_refused(self, address: str, reason: str) -> None:
        """A request from `address` was refused for `reason` (e.g. "unknown community name").
        Records and publishes only: called while pysnmp handles the datagram."""
        if not self._snmp.allow():
            self._snmp_latest = _Latest(address, reason)
            return
        held = self._snmp.take_suppressed()
        text = f"SNMP request from {address} refused: {reason}"
        if held:
            text += f" ({held} more refused since the last report)"
        self._publish(EventType.SNMP_AUTH_FAILURE, address, text,
                      {"reason": reason, "address": address, "suppressed": held})

    # -- heartbeat and settings exchange: counted elsewhere, read here ------------------

    def _peer_counters(self) -> dict[str, int]:
        sec = self.state.security
        return {"heartbeat authentication failures": sec.hb_auth_failures,
                "heartbeat replays": sec.hb_replays,
                "malformed heartbeat packets": sec.malformed_packets,
                "settings-exchange datagrams refused": self.state.config_sync.bad_messages}

    def on_event(self, event: Event) -> None:
        """resetCounters zeroes the counters read here: start again from their new values."""
        if is_counter_reset(event):
            self._seen = self._peer_counters()

    async def run_cycle(self) -> str:
        now = self._peer_counters()
        grew = False
        for key, value in now.items():
            # A counter smaller than last time was reset (a new heartbeat process, resetCounters).
            grown = value - self._seen[key] if value >= self._seen[key] else value
            if grown:
                self._peer_held[key] = self._peer_held.get(key, 0) + grown
                grew = True
        self._seen = now
        sentences = self._alarm(grew)
        if self._peer_held and self._peer.allow():
            parts = [f"{count} {key}" for key, count in self._peer_held.items()]
            text = "refused on the heartbeat port since the last report: " + ", ".join(parts)
            latest = self.state.security.hb_last_refused
            if latest and any(key.startswith(("heartbeat", "malformed")) for key in self._peer_held):
                text += f" (the latest heartbeat: {latest})"
            self._publish(EventType.PEER_AUTH_FAILURE, "heartbeat", text,
                          {"reason": text, "counts": dict(self._peer_held)})
            self._peer_held = {}
            sentences.append(text)
        if self._snmp.suppressed and self._snmp.ready():
            # Held-back SNMP refusals are reported once the limiter allows, even if the
            # guessing has stopped: the account is never left open.
            self._snmp.allow()
            held = self._snmp.take_suppressed()
            latest = self._snmp_latest
            text = (f"{held} more SNMP requests refused since the last report "
                    f"(the latest from {latest.who}: {latest.why})")
            self._publish(EventType.SNMP_AUTH_FAILURE, latest.who, text,
                          {"reason": latest.why, "address": latest.who, "suppressed": held})
            sentences.append(text)
        return "; ".join(sentences) or "no authentication failures to report"

    def _alarm(self, grew: bool) -> list[str]:
        """Raise authenticationFailure(9) on refusals that go on; clear it after a quiet spell."""
        now = self.clock.monotonic()
        self._streak = self._streak + 1 if grew else 0
        if grew:
            self._last_refused = now
        active = self.alarms.active(ProbableCause.AUTHENTICATION_FAILURE, ALARM_SUBJECT)
        if not active and self._streak >= RAISE_AFTER:
            latest = self.state.security.hb_last_refused
            text = (f"heartbeat traffic refused for {self._streak} s in a row"
                    + (f" (the latest: {latest})" if latest else "")
                    + ": the heads' keys differ, or someone forges heartbeats")
            self.alarms.raise_alarm(ProbableCause.AUTHENTICATION_FAILURE, ALARM_SUBJECT, Severity.MAJOR,
                                    AlarmType.COMMUNICATIONS, printable(text, TEXT_LIMIT))
            return [text]
        if active and self._last_refused is not None and now - self._last_refused >= CLEAR_AFTER_S:
            text = f"no heartbeat traffic refused for {CLEAR_AFTER_S:.0f} s"
            self.alarms.clear(ProbableCause.AUTHENTICATION_FAILURE, ALARM_SUBJECT, text)
            return [text]
        return []

    # The event history logs every event it records: no log line of our own.
    def _publish(self, kind: EventType, subject: str, text: str, data: dict[str, object]) -> None:
        self.bus.publish(Event(kind, printable(subject), Severity.WARNING, printable(text, TEXT_LIMIT),
                               self.clock.time(), data))
