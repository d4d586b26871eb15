"""The standalone agent's read path from request octets straight to response octets.

pysnmp builds and BER-encodes a pyasn1 object for every field of every message, which
made it the agent's cost per var-bind. This package serves the reads that matter for
throughput without it: SNMPv1 GET and GETNEXT, SNMPv2c and SNMPv3 GET, GETNEXT and
GETBULK, over HAOSCAR-MIB, for a community or a USM user whose view includes the MIB.
Everything else goes to pysnmp unchanged, picked by the first octets: SET,
notifications, unknown communities, SNMPv3 messages off the happy path (discovery,
unknown users, wrong digests, stale times, other levels or contexts: `usm.py`), names
outside the MIB, malformed input. `FastPath.serve` is called at the agent's receive
seam (`Agent._guard_receive`) and returns whether it answered.

What it keeps exactly as pysnmp keeps it: the community-to-view and user-to-view
decisions (pysnmp's VACM, `access.py`), the users' localised keys (pysnmp's),
snmpInPkts, snmpOutTooBigs, snmpSilentDrops, the size bound (snmpEngineMaxMessageSize,
and in SNMPv3 the manager's msgMaxSize), and the var-binds of every answer
(tests/unit/test_fastpath_equivalence.py and test_fastpath_v3.py compare them).
Adding 1 to a pysnmp counter builds a new pyasn1 object (~9 us, a third of a fast GET),
so the packets this path serves are added to snmpInPkts in one step, before pysnmp
handles the next datagram: pysnmp is the only reader of its counters (they are outside
HAOSCAR-MIB), so every value it reads or sends is exact.
Where pysnmp departs from RFC 3416 the fast path follows the RFC; that test lists each
difference. docs/fastpath.md says why the codec is hand-written and what it caches.

Modules: `ber` (the codec), `request` (decoding a read), `wire` (state values to BER),
`reader` (the answers), `access` (community or user to view, users' keys), `usm`
(the SNMPv3 message and USM around a read), and this one (the seam).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from .access import CommunityAccess, UserAccess
from .reader import FastReader, HandOver
from .request import decode_read
from .usm import UsmReader

log = logging.getLogger(__name__)

Send = Callable[[bytes, Any, Any], Any]


class FastPath:
    """Serves the read requests it can at the receive seam; leaves the rest to pysnmp."""

    def __init__(self, reader: FastReader, access: CommunityAccess, builder: Any, send: Send,
                 usm: UsmReader | None = None) -> None:
        self._reader = reader
        self._access = access
        self._usm = usm
        self._send = send
        (self._in_pkts, self._parse_errs, self._silent_drops, self._too_bigs) = builder.import_symbols(
            "__SNMPv2-MIB", "snmpInPkts", "snmpInASNParseErrs", "snmpSilentDrops", "snmpOutTooBigs")
        (self._max_size,) = builder.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineMaxMessageSize")
        self.served = 0
        self.served_v3 = 0      # of which SNMPv3
        self._unflushed = 0     # packets served, not yet added to snmpInPkts
        self.failed = 0         # requests handed over because building the answer raised

    def serve(self, domain: Any, address: Any, message: bytes) -> bool:
        """Answer `message` if it is a read this path serves; True if it did (answered,
        or refused as junk, or dropped as too big), False to hand it to pysnmp."""
        if not message or message[0] != 0x30:
            # Not even a SEQUENCE: pysnmp's decoder refuses it at the version. Count it
            # where pysnmp does, without building its decoder's objects.
            self._unflushed += 1
            self._parse_errs.syntax += 1
            return True
        max_size = int(self._max_size.syntax)
        request = decode_read(message)
        if request is None:
            request = self._usm.open(message, max_size) if self._usm is not None else None
            if request is None:
                return self._hand_over()
            max_size = request.envelope.limit       # type: ignore[union-attr]
        elif not self._access.readable(request.version, request.community):
            return self._hand_over()
        try:
            response, too_big = self._reader.answer(request, max_size)
        except HandOver:
            return self._hand_over()
        except Exception as exc:
            # A getter that raises, or a value pysnmp refuses (an Integer32 out of range):
            # pysnmp's path meets the same and reports it; said here once.
            self.failed += 1
            if self.failed == 1:
                log.warning("fast path handed a request to pysnmp after %s: %s",
                            type(exc).__name__, exc)
            return self._hand_over()
        self._unflushed += 1
        self.served += 1
        if request.envelope is not None:
            self.served_v3 += 1
        if response is None:
            self._silent_drops.syntax += 1
            return True
        if too_big:
            self._too_bigs.syntax += 1
        self._send(response, domain, address)
        return True

    def flush(self) -> None:
        """Add the packets served since the last flush to snmpInPkts."""
        if self._unflushed:
            self._in_pkts.syntax += self._unflushed
            self._unflushed = 0

    def _hand_over(self) -> bool:
        self.flush()
        return False


__all__ = ["CommunityAccess", "FastPath", "FastReader", "HandOver", "UserAccess", "UsmReader", "decode_read"]
