"""The settings exchange between the two heads: its datagrams. Pure code.

The heads exchange their cluster-wide settings (`haoscar_snmp/config/cluster.py`) over
the heartbeat port on the private LANs, so the exchange needs no port of its own; the
heartbeat process hands these datagrams to the daemon by their magic (`heartbeat/child.py`).
Wire format (network byte order), then an HMAC-SHA256 under the heartbeat key over
everything before it:

    magic "HAOC" | version u8 (1) | kind u8 | reserved u16 |
    sender_nonce u64 | echo_nonce u64 | msg_id u64 | reply_to u64 |
    body: zlib-compressed JSON object | hmac[32]

* Requests (FETCH, PROPOSE) carry the heartbeat nonces of both heads' current runs
  (`fcaps/fault/heartbeat/session.py`): `sender_nonce` must be the one the receiver's heartbeat
  session accepts from the peer and `echo_nonce` the receiver's own, so a request
  recorded in an earlier run of either head is refused, and `msg_id` is taken once per
  run (the same datagram goes out on both LANs, and is sent again until answered).
* Answers (SETTINGS, ACK, NAK) echo the requester's nonce and name the request in
  `reply_to`; only an answer to a request still waiting is taken.
* The body always holds `from` (the sender's head name); the rest depends on the kind:
  `version` ([counter, head]), `digest`, `settings`, `problems`.

Why not JSON over a library's secure channel: the heads already share an authenticated,
replay-protected path (the heartbeat); this reuses its key and nonces instead of adding
a port, a certificate and a second notion of which head is alive.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import struct
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"HAOC"
VERSION = 1
_HEAD = struct.Struct("!4sBBHQQQQ")
_MAC_LEN = 32
# The largest datagram: it must fit the heartbeat process's relay (base64 in a 64 KiB
# message). Settings of a thousand services (524 KB of JSON) compress to 18 KB.
MAX_DATAGRAM = 46_000
MAX_BODY = 4 * 1024 * 1024      # decompressed; a larger body is refused (a zlib bomb)


class Kind(enum.IntEnum):
    FETCH = 1       # send me your settings
    SETTINGS = 2    # answer to FETCH: version, digest, settings
    PROPOSE = 3     # take these settings (a SET or a push): validate, persist, apply, answer
    ACK = 4         # answer to PROPOSE: taken (version and digest now held)
    NAK = 5         # answer to PROPOSE: refused, with the problems

    @property
    def is_request(self) -> bool:
        return self in (Kind.FETCH, Kind.PROPOSE)


class DecodeError(Exception):
    """Not a well-formed exchange datagram."""


class AuthError(Exception):
    """Well-formed, but its HMAC does not verify under any key held."""


class TooLarge(ValueError):
    """The settings do not fit one datagram."""


@dataclass(frozen=True)
class Message:
    kind: Kind
    sender_nonce: int
    echo_nonce: int
    msg_id: int
    reply_to: int = 0
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def sender(self) -> str:
        value = self.body.get("from")
        return value if isinstance(value, str) else ""


def encode(msg: Message, key: bytes) -> bytes:
    raw = json.dumps(msg.body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    packed = zlib.compress(raw, 6)
    head = _HEAD.pack(MAGIC, VERSION, int(msg.kind), 0, msg.sender_nonce, msg.echo_nonce, msg.msg_id,
                      msg.reply_to)
    size = len(head) + len(packed) + _MAC_LEN
    if size > MAX_DATAGRAM:
        raise TooLarge(f"the settings take {size:,} bytes compressed; one exchange datagram holds "
                       f"{MAX_DATAGRAM:,}")
    body = head + packed
    return body + hmac.new(key, body, hashlib.sha256).digest()


def decode(data: bytes, keys: bytes | Sequence[bytes]) -> Message:
    """Parse and authenticate; raises DecodeError or AuthError, never anything else."""
    if len(data) < _HEAD.size + _MAC_LEN or not data.startswith(MAGIC) or len(data) > MAX_DATAGRAM:
        raise DecodeError("not a settings-exchange datagram")
    body, mac = data[:-_MAC_LEN], data[-_MAC_LEN:]
    candidates = (keys,) if isinstance(keys, bytes) else tuple(keys)
    if not any(hmac.compare_digest(mac, hmac.new(k, body, hashlib.sha256).digest()) for k in candidates):
        raise AuthError("bad HMAC")
    _magic, version, kind, _reserved, sender, echo, msg_id, reply_to = _HEAD.unpack_from(body)
    if version != VERSION:
        raise DecodeError(f"settings-exchange version {version} not supported")
    try:
        what = Kind(kind)
    except ValueError:
        raise DecodeError(f"unknown settings-exchange kind {kind}") from None
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(body[_HEAD.size:], MAX_BODY)
        if inflater.unconsumed_tail or not inflater.eof:
            raise DecodeError("settings-exchange body too large or truncated")
        value = json.loads(raw)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise DecodeError(f"malformed settings-exchange body: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("from"), str):
        raise DecodeError("settings-exchange body is not an object naming its sender")
    return Message(what, sender, echo, msg_id, reply_to, value)


class Answered:
    """The requests of the peer's current run already taken, with the answer given, so
    that the copy from the other LAN and the retransmissions get the same answer and
    nothing is done twice. Bounded: the oldest are forgotten, and an id at or below the
    oldest forgotten one is refused (it can only be a recording)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.nonce = 0
        self.floor = 0                    # ids at or below this are too old
        self._answers: OrderedDict[int, bytes | None] = OrderedDict()

    def lookup(self, nonce: int, msg_id: int) -> tuple[bool, bytes | None]:
        """(seen, answer): seen with answer None means the request is still being done,
        or too old to be taken; not seen means take it (then `taking`)."""
        if nonce != self.nonce:           # the peer's new run: its ids start again
            self.nonce, self.floor = nonce, 0
            self._answers.clear()
        if msg_id <= self.floor:
            return True, None
        if msg_id in self._answers:
            return True, self._answers[msg_id]
        return False, None

    def taking(self, msg_id: int) -> None:
        self._answers[msg_id] = None
        while len(self._answers) > self.size:
            old, _ = self._answers.popitem(last=False)
            self.floor = max(self.floor, old)

    def answered(self, msg_id: int, answer: bytes) -> None:
        if msg_id in self._answers:
            self._answers[msg_id] = answer
