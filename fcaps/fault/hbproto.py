"""The heartbeat message: encoding and HMAC authentication. Pure code.

Wire format (network byte order), then an HMAC-SHA256 over everything before it:

    magic "HAOS" | version u8 (2) | lan u8 | state u8 | reserved u8 | flags u16 |
    epoch u64 | seq u64 | nonce u64 | echo_nonce u64 | peer_epoch u64 | generation u64 |
    sent_wall_ms u64 | echo_seq u64 | echo_hold_us u32 | key_id u32 |
    name_len u8 | name | alias_count u8 | (alias_len u8 | alias)* | hmac[32]

* `epoch` is the sender's boot counter and `seq` counts its messages within a boot.
* `nonce` is a random number the sender draws at every start; `echo_nonce` is the
  receiver's nonce as the sender last learned it. A message that echoes the receiver's
  own nonce was made after the receiver started, so it cannot be a recording: this is
  what protects against replays, without trusting either head's wall clock
  (see `hbsession.py`).
* `peer_epoch` is the highest epoch of the receiver that the sender has accepted, so a
  head that lost its boot counter learns where to continue.
* `generation` is the sender's takeover generation: raised above everything it has seen
  each time it takes over, so "who took over last" is known after a partition heals.
* `sent_wall_ms` is informational only: it lets the receiver report a clock difference.
* `key_id` names the sender's newest key (a 32-bit fingerprint, `key_id()`), so that two
  heads rotating their key switch to the new one only once both have it.
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
from typing import Sequence

MAGIC = b"HAOS"
VERSION = 2
_HEAD = struct.Struct("!4sBBBBHQQQQQQQQII")
_MAC_LEN = 32
MAX_NAME = 64
MAX_ALIASES = 32


class Flag(enum.IntFlag):
    PREFERRED_PRIMARY = 1  # the sender is the cluster's preferred primary
    WANTS_ACTIVE = 2       # the sender asks to become active (failback / switchover)
    HANDOVER = 4           # the sender released so that the peer takes over
    QUORUM_OK = 8          # the sender's quorum check passes (or none is configured)
    ISOLATED = 16          # the sender sees no carrier on any of its private heartbeat links
    PUBLIC_DOWN = 32       # the sender sees no carrier on an interface that carries an alias
    SERVICE_FAILED = 64    # a service's recovery ladder failed on the sender: do not make it active
    PEER_LANS_DOWN = 128   # the sender's LAN poller finds every private interface of the receiver
                           # down while its own are up (only with lan_failure_is_head_failure)


class DecodeError(Exception):
    """A datagram that is not a well-formed heartbeat (counted as malformed)."""


class AuthError(Exception):
    """A well-formed heartbeat whose HMAC does not verify (counted as auth failure)."""


@dataclass(frozen=True)
class Heartbeat:
    sender: str
    lan: int            # core.state.Lan value of the path it was sent on
    state: int          # core.state.HeadStatus value of the sender
    flags: Flag
    epoch: int
    seq: int
    nonce: int = 0
    echo_nonce: int = 0
    peer_epoch: int = 0
    generation: int = 0
    sent_wall_ms: int = 0
    echo_seq: int = 0
    echo_hold_us: int = 0
    aliases: tuple[str, ...] = field(default_factory=tuple)
    key_id: int = 0


def key_id(key: bytes) -> int:
    """A key's 32-bit fingerprint, as heartbeats carry it (not the key: a keyed hash)."""
    return int.from_bytes(hmac.new(key, b"haoscar heartbeat key id", hashlib.sha256).digest()[:4], "big")


def encode(msg: Heartbeat, key: bytes) -> bytes:
    name = msg.sender.encode()
    if not 0 < len(name) <= MAX_NAME or len(msg.aliases) > MAX_ALIASES:
        raise ValueError("heartbeat sender name or alias list too long")
    body = bytearray(_HEAD.pack(MAGIC, VERSION, msg.lan, msg.state, 0, int(msg.flags), msg.epoch,
                                msg.seq, msg.nonce, msg.echo_nonce, msg.peer_epoch, msg.generation,
                                max(msg.sent_wall_ms, 0), msg.echo_seq,
                                min(msg.echo_hold_us, 0xFFFFFFFF), msg.key_id))
    body += bytes([len(name)]) + name + bytes([len(msg.aliases)])
    for alias in msg.aliases:
        raw = alias.encode()
        body += bytes([len(raw)]) + raw
    return bytes(body) + hmac.new(key, bytes(body), hashlib.sha256).digest()


def decode(data: bytes, keys: bytes | Sequence[bytes]) -> Heartbeat:
    """Parse and authenticate under any of `keys` (two during a key rotation).

    Raises DecodeError or AuthError, never anything else."""
    if len(data) < _HEAD.size + 2 + _MAC_LEN or not data.startswith(MAGIC):
        raise DecodeError("not a heartbeat")
    body, mac = data[:-_MAC_LEN], data[-_MAC_LEN:]
    candidates = (keys,) if isinstance(keys, bytes) else tuple(keys)
    if not any(hmac.compare_digest(mac, hmac.new(k, body, hashlib.sha256).digest()) for k in candidates):
        raise AuthError("bad HMAC")
    return _parse(body)


def _parse(body: bytes) -> Heartbeat:
    try:
        (_magic, version, lan, state, _reserved, flags, epoch, seq, nonce, echo_nonce, peer_epoch,
         generation, sent, echo_seq, echo_hold, kid) = _HEAD.unpack_from(body)
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
        if pos != len(body) or not name or len(name.encode()) != name_len:
            raise DecodeError("heartbeat length mismatch")
    except (IndexError, UnicodeDecodeError, struct.error) as exc:
        raise DecodeError(f"malformed heartbeat: {exc}") from None
    return Heartbeat(name, lan, state, Flag(flags), epoch, seq, nonce, echo_nonce, peer_epoch,
                     generation, sent, echo_seq, echo_hold, tuple(aliases), kid)
