"""Bounds on what pysnmp keeps per message: junk must not grow the agent.

pysnmp holds some state per received message in caches that it empties only on the
paths it expects. Two of them grow with input an attacker controls, and each is bounded
here at the narrowest place, without changing what pysnmp answers:

* The USM's timeline queue (`bound_usm_timeline`): for every authenticated message the
  USM notes the sender's engine ID in a list due to expire 300 s later, one list per
  0.1 s timer tick, the same ID appended once per message: ~500 bytes a request held for
  five minutes (a replayed authPriv GET repeated 2,000 times a second would hold some
  300 MB). An ID already in a tick's list changes nothing when appended again (the
  expiry deletes the ID's timeline once), so each list keeps one copy.

* The USM's security-state cache (`UsmStateSweeper`): for an SNMPv3 message the USM
  stores the user's name (and, once the user is found, its keys) under a state
  reference, to be taken back when the response or report is made. On several refusals
  nothing takes it back: an undecodable user name, an unknown engine ID when discovery
  is off, a report that cannot be sent (the message was not reportable), a request the
  responders drop. The entry stays for good, a few hundred bytes of pyasn1 objects each:
  measured with bench/bench_fuzz.py, garbage USM parameters left one entry per ~30
  datagrams, and the agent grew steadily (+3 % in 24,000 such datagrams). Once a
  datagram has been handled, the only entries with a future are those of requests still
  waiting for their response (a SET being persisted): the message processing model
  keeps each such request's security state reference. Every other entry is released
  after each datagram.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_USM = 3                # the security model and the message processing model of SNMPv3
_USM_ENTRIES = "_Cache__cache_entries"
_MP_PENDING = "_Cache__stateReferenceIndex"
_TIMELINE_QUEUE = "_SnmpUSMSecurityModel__timelineExpQueue"


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


def bound_usm_timeline(engine: Any) -> bool:
    """Make the USM's timeline queue keep one copy of an engine ID per tick; False (and
    a warning) if pysnmp keeps it elsewhere now."""
    usm = engine.security_models.get(_USM)
    queue = getattr(usm, _TIMELINE_QUEUE, None)
    if not isinstance(queue, dict):
        log.warning("pysnmp's USM has no timeline queue to bound (pysnmp changed?)")
        return False
    distinct = _DistinctBuckets()
    distinct.update(queue)
    setattr(usm, _TIMELINE_QUEUE, distinct)
    return True


class UsmStateSweeper:
    """Releases, after each datagram, the USM security state that no request waits for."""

    def __init__(self, engine: Any) -> None:
        usm = engine.security_models.get(_USM)
        mp = engine.message_processing_subsystems.get(_USM)
        entries = getattr(getattr(usm, "_cache", None), _USM_ENTRIES, None)
        pending = getattr(getattr(mp, "_cache", None), _MP_PENDING, None)
        if not isinstance(entries, dict) or not isinstance(pending, dict):
            log.warning("pysnmp's SNMPv3 caches have changed: refused SNMPv3 messages may "
                        "leave state behind (pysnmp changed?)")
            entries = pending = None
        self._entries: dict[Any, Any] | None = entries
        self._pending: dict[Any, Any] | None = pending
        self.released = 0

    def sweep(self) -> None:
        """Call once pysnmp has handled a datagram. Costs one truth test when the cache
        is empty, as it is after every request answered at once."""
        entries = self._entries
        if not entries:
            return
        waiting = {info.get("securityStateReference") for info, _expiry in self._pending.values()}  # type: ignore[union-attr]
        stale = [ref for ref in entries if ref not in waiting]
        for ref in stale:
            del entries[ref]
        self.released += len(stale)
