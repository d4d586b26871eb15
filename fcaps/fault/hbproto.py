"""The heartbeat message: encoding, HMAC authentication, and the replay guard. Pure code.

Wire format (network byte order), then an HMAC-SHA256 over everything before it:

    magic "HAOS" | version u8 | flags u8 | lan u8 | state u8 |
    epoch u64 | seq u64 | sent_wall_ms u64 | echo_seq u64 | echo_hold_us u32 |
    name_len u8 | name | alias_count u8 | (alias_len u8 | alias)* | hmac[32]

* `epoch` is the sender's boot counter (persisted, +1 at every start) and `seq` counts
  messages within an epoch, so (epoch, seq) strictly increases for as long as a head
  lives, across restarts. A receiver accepts a message only if its (epoch, seq) is above
  the last one accepted from that sender, and its wall-clock stamp is within a window of
  the receiver's clock: a replayed message is either old (seq) or stale (time).
* `echo_seq` / `echo_hold_us` let the sender measure round-trip time without trusting
  the peer's clock: the peer echoes the last seq it received on this LAN and how long it
  held it before answering, as NTP does.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass, field

MAGIC = b"HAOS"
VERSION = 1
_HEAD = struct.Struct("!4sBBBBQQQQI")
_MAC_LEN = 32
MAX_NAME = 64
MAX_ALIASES = 32


class Flag(enum.IntFlag):
    PREFERRED_PRIMARY = 1  # the sender is the cluster's preferred primary
    WANTS_ACTIVE = 2       # the sender asks to become active (failback / switchover)
    HANDOVER = 4           # the sender is releasing so that the peer takes over
    QUORUM_OK = 8          # the sender's quorum check passes


class DecodeError(Exception):
    """A datagram that is not a well-formed heartbeat (counted as malformed)."""


class AuthError(Exception):
    """A well-formed heartbeat whose HMAC does not verify (counted as auth failure)."""


@dataclass(frozen=True)
class Heartbeat:
    sender: str
    lan: int            # core.state.Lan value of the LAN it was sent on
    state: int          # core.state.HeadStatus value of the sender
    flags: Flag
    epoch: int
    seq: int
    sent_wall_ms: int
    echo_seq: int = 0
    echo_hold_us: int = 0
    aliases: tuple[str, ...] = field(default_factory=tuple)


def encode(msg: Heartbeat, key: bytes) -> bytes:
    name = msg.sender.encode()
    if not 0 < len(name) <= MAX_NAME or len(msg.aliases) > MAX_ALIASES:
        raise ValueError("heartbeat sender name or alias list too long")
    body = bytearray(_HEAD.pack(MAGIC, VERSION, int(msg.flags), msg.lan, msg.state, msg.epoch,
                                msg.seq, msg.sent_wall_ms, msg.echo_seq,
                                min(msg.echo_hold_us, 0xFFFFFFFF)))
    body += bytes([len(name)]) + name + bytes([len(msg.aliases)])
    for alias in msg.aliases:
        raw = alias.encode()
        body += bytes([len(raw)]) + raw
    return bytes(body) + hmac.new(key, bytes(body), hashlib.sha256).digest()


def decode(data: bytes, key: bytes) -> Heartbeat:
    """Parse and authenticate; raises DecodeError or AuthError, never anything else."""
    if len(data) < _HEAD.size + 2 + _MAC_LEN or not data.startswith(MAGIC):
        raise DecodeError("not a heartbeat")
    body, mac = data[:-_MAC_LEN], data[-_MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise AuthError("bad HMAC")
    try:
        (_magic, version, flags, lan, state, epoch, seq, sent, echo_seq,
         echo_hold) = _HEAD.unpack_from(body)
        if version != VERSION:
            raise DecodeError(f"heartbeat version {version} not supported")
        pos = _HEAD.size
        name_len = body[pos]
        name = body[pos + 1: pos + 1 + name_len].decode()
        pos += 1 + name_len
        count = body[pos]
        pos += 1
        aliases = []
        for _ in range(count):
            n = body[pos]
            aliases.append(body[pos + 1: pos + 1 + n].decode())
            pos += 1 + n
        if pos != len(body) or not name:
            raise DecodeError("heartbeat length mismatch")
    except (IndexError, UnicodeDecodeError, struct.error) as exc:
        raise DecodeError(f"malformed heartbeat: {exc}") from None
    return Heartbeat(name, lan, state, Flag(flags), epoch, seq, sent, echo_seq, echo_hold,
                     tuple(aliases))


class Verdict(enum.Enum):
    OK = "ok"
    REPLAY = "replayed or out of order"
    STALE = "time stamp outside the acceptance window"
    UNKNOWN_SENDER = "unknown sender"


class ReplayGuard:
    """Accepts each sender's messages only in strictly increasing (epoch, seq) order.

    The order is tracked per sender and LAN: the two LANs are independent paths and a
    message may legitimately arrive on LAN B before an older one on LAN A.
    """

    def __init__(self, senders: set[str], window_ms: int) -> None:
        self.senders = senders
        self.window_ms = window_ms
        self._last: dict[tuple[str, int], tuple[int, int]] = {}

    def check(self, msg: Heartbeat, now_wall_ms: int) -> Verdict:
        if msg.sender not in self.senders:
            return Verdict.UNKNOWN_SENDER
        if abs(now_wall_ms - msg.sent_wall_ms) > self.window_ms:
            return Verdict.STALE
        key = (msg.sender, msg.lan)
        if (msg.epoch, msg.seq) <= self._last.get(key, (-1, -1)):
            return Verdict.REPLAY
        self._last[key] = (msg.epoch, msg.seq)
        return Verdict.OK
