"""Cuts the byte stream of an AgentX connection into PDUs.

    decoder = StreamDecoder()
    decoder.feed(chunk)                  # whatever the socket gave, split anywhere
    while True:
        try:
            pdu = decoder.next_pdu()     # None: wait for more bytes
        except ParseError as err:
            if not err.resumable:        # framing lost: close the session
                ...
            continue                     # the bad PDU was skipped whole; answer
                                         # parseError to err.header, go on
        if pdu is None:
            break
        ...

A header is judged as soon as its 20 octets are in, before any payload is awaited: a
version other than 1, or a payload length over the limit or not a multiple of 4, leaves
nothing to resynchronise on (AgentX has no frame marker), so the decoder stops for good
and drops what it holds. A PDU whose header frames it but whose payload is wrong is
skipped whole and the next one decoded normally.

Memory: the decoder holds at most one incomplete PDU (20 octets + the payload limit)
plus whatever was fed since the caller last drained it.
"""

from __future__ import annotations

from collections.abc import Iterator

from .decoder import ParseError, decode_header, decode_payload
from .pdu import HEADER_SIZE, MAX_PAYLOAD, Header, Pdu

# Consumed octets are cut off the front of the buffer once this many have piled up (or
# when the buffer runs dry), so a burst of small PDUs is not quadratic to drain.
_COMPACT_AT = 64 * 1024


class StreamDecoder:
    """Feed bytes as they arrive; take complete PDUs out."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0
        self._failed: ParseError | None = None
        # The header of the PDU `next_pdu()` returned last: the session answers in the
        # byte order the request came in, which the PDU itself does not carry.
        self.last_header: Header | None = None

    @property
    def failed(self) -> ParseError | None:
        """What lost the framing, once it has; from then on nothing decodes."""
        return self._failed

    @property
    def buffered(self) -> int:
        """Octets received and not yet decoded."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._failed is None:
            self._buf += data

    def next_pdu(self) -> Pdu | None:
        """The next complete PDU, or None until more bytes arrive.

        Raises ParseError: resumable when the bad PDU was skipped whole (call again for
        the next), not resumable when the stream lost its framing (and again on every
        later call)."""
        if self._failed is not None:
            raise ParseError(self._failed.reason, self._failed.header)
        if self.buffered < HEADER_SIZE:
            self._compact()
            return None
        start = self._pos
        try:
            header = decode_header(bytes(self._buf[start:start + HEADER_SIZE]),
                                   self.max_payload)
        except ParseError as err:
            # A copy that was never raised: the raised one's traceback holds this
            # frame, hence self, and keeping it would make a reference cycle.
            self._failed = ParseError(err.reason, err.header)
            self._buf = bytearray()
            self._pos = 0
            raise
        end = start + HEADER_SIZE + header.payload_length
        if end > len(self._buf):
            self._compact()
            return None
        payload = bytes(self._buf[start + HEADER_SIZE:end])
        self._pos = end
        if self._pos >= _COMPACT_AT:
            self._compact()
        try:
            pdu = decode_payload(header, payload)
        except ParseError as err:
            err.resumable = True
            raise
        self.last_header = header
        return pdu

    def __iter__(self) -> Iterator[Pdu]:
        """The complete PDUs buffered so far; a ParseError propagates as from next_pdu."""
        while (pdu := self.next_pdu()) is not None:
            yield pdu

    def _compact(self) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
