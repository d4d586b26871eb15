"""The heartbeat message: encoding and HMAC authentication. Pure code.

Wire format (network byte order), then an HMAC-SHA256 over everything before it:

    magic "HAOS" | version u8 (2 to 4) | lan u8 | state u8 | caps u8 | flags u16 |
    epoch u64 | seq u64 | nonce u64 | echo_nonce u64 | peer_epoch u64 | generation u64 |
    sent_wall_ms u64 | echo_seq u64 | echo_hold_us u32 | key_id u32 |
    name_len u8 | name | alias_count u8 | (alias_len u8 | alias)* |
    [version 3 and up: config_counter u64 | config_fp u64 | config_head_len u8 | config_head] |
    [version 4: public_targets u8 | public_reached u8 | public_mask u32] |
    hmac[32]

* `epoch` is the sender's boot counter and `seq` counts its messages within a boot.
* `nonce` is a random number the sender draws at every start; `echo_nonce` is the
  receiver's nonce as the sender last learned it. A message that echoes the receiver's
  own nonce was made after the receiver started, so it cannot be a recording: this is
  what protects against replays, without trusting either head's wall clock
  (see `heartbeat/session.py`).
* `peer_epoch` is the highest epoch of the receiver that the sender has accepted, so a
  head that lost its boot counter learns where to continue.
* `generation` is the sender's takeover generation: raised above everything it has seen
  each time it takes over, so "who took over last" is known after a partition heals.
* `sent_wall_ms` is informational only: it lets the receiver report a clock difference.
* `key_id` names the sender's newest key (a 32-bit fingerprint, `key_id()`), so that two
  heads rotating their key switch to the new one only once both have it.
* `config_counter`, `config_head` and `config_fp` (version 3) advertise the version of
  the sender's cluster-wide settings and the first 64 bits of their digest
  (`haoscar_snmp/config/cluster.py`): a difference is how the heads notice they must
  exchange settings.
* `public_targets`, `public_reached` and `public_mask` (version 4) say how many public
  targets the sender watches, how many it reaches, and which (bit i: the i-th of
  `[failover] public_targets`, a cluster-wide list): the heads compare them to decide
  whether the active one should hand over (fcaps/fault/role/publicreach.py).
* `caps` bit 0 says "I read version 3", bit 1 "I read version 4". A head writes the
  newest version its peer's last authenticated message said it reads (or was written
  in), so a head of an earlier release, which ignores that byte and whatever follows
  what it knows, goes on hearing this one during a rolling upgrade.
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
VERSION = 4             # the newest format this head writes and reads
OLDEST_VERSION = 2      # still read, and written to a peer that reads nothing newer
CAP_READS_V3 = 1        # caps bit: the sender reads version 3
CAP_READS_V4 = 2        # caps bit: the sender reads version 4
CAPS = CAP_READS_V3 | CAP_READS_V4
_HEAD = struct.Struct("!4sBBBBHQQQQQQQQII")
_CONFIG = struct.Struct("!QQ")
_PUBLIC = struct.Struct("!BBI")
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
    PUBLIC_LOST = 256      # the sender reaches none of its public targets (or regained them
                           # less than the hold-down ago): clients may not reach it


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
    # The sender's cluster-wide settings: version counter, the head that made that
    # change ("" = the files as loaded), digest fingerprint. Version 3 only: a version 2
    # message decodes with `version` 2 and these unset.
    config_counter: int = 0
    config_head: str = ""
    config_fp: int = 0
    # The sender's public targets (version 4 only): how many it watches, how many it
    # reaches, and which (bit i = the i-th target).
    public_targets: int = 0
    public_reached: int = 0
    public_mask: int = 0
    version: int = VERSION
    caps: int = CAPS

    @property
    def reads_v3(self) -> bool:
        return self.reads >= 3

    @property
    def reads(self) -> int:
        """The newest format the sender reads: what to write to it."""
        if self.version >= 4 or self.caps & CAP_READS_V4:
            return 4
        return 3 if self.version >= 3 or self.caps & CAP_READS_V3 else 2


def encode(msg: Heartbeat, key: bytes) -> bytes:
    """The datagram, in format `msg.version` (2 leaves the settings advert out)."""
    name = msg.sender.encode()
    if not 0 < len(name) <= MAX_NAME or len(msg.aliases) > MAX_ALIASES:
        raise ValueError("heartbeat sender name or alias list too long")
    if not OLDEST_VERSION <= msg.version <= VERSION:
        raise ValueError(f"heartbeat version {msg.version} cannot be written")
    if msg.version >= 4 and not (0 <= msg.public_reached <= msg.public_targets <= 255
                                 and 0 <= msg.public_mask < 1 << 32):
        raise ValueError("heartbeat public targets out of range")
    body = bytearray(_HEAD.pack(MAGIC, msg.version, msg.lan, msg.state, msg.caps, int(msg.flags), msg.epoch,
                                msg.seq, msg.nonce, msg.echo_nonce, msg.peer_epoch, msg.generation,
                                max(msg.sent_wall_ms, 0), msg.echo_seq,
                                min(msg.echo_hold_us, 0xFFFFFFFF), msg.key_id))
    body += bytes([len(name)]) + name + bytes([len(msg.aliases)])
    for alias in msg.aliases:
        raw = alias.encode()
        body += bytes([len(raw)]) + raw
    if msg.version >= 3:
        head = msg.config_head.encode()
        if len(head) > MAX_NAME:
            raise ValueError("heartbeat config head name too long")
        body += _CONFIG.pack(msg.config_counter, msg.config_fp) + bytes([len(head)]) + head
    if msg.version >= 4:
        body += _PUBLIC.pack(msg.public_targets, msg.public_reached, msg.public_mask)
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
        (_magic, version, lan, state, caps, flags, epoch, seq, nonce, echo_nonce, peer_epoch,
         generation, sent, echo_seq, echo_hold, kid) = _HEAD.unpack_from(body)
        if not OLDEST_VERSION <= version <= VERSION:
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
        counter = fp = 0
        config_head = ""
        if version >= 3:
            counter, fp = _CONFIG.unpack_from(body, pos)
            pos += _CONFIG.size
            head_len = body[pos]
            config_head = body[pos + 1: pos + 1 + head_len].decode()
            pos += 1 + head_len
            if len(config_head.encode()) != head_len:
                raise DecodeError("heartbeat config head length mismatch")
        targets = reached = mask = 0
        if version >= 4:
            targets, reached, mask = _PUBLIC.unpack_from(body, pos)
            pos += _PUBLIC.size
            if reached > targets:
                raise DecodeError("heartbeat public targets mismatch")
        if pos != len(body) or not name or len(name.encode()) != name_len:
            raise DecodeError("heartbeat length mismatch")
    except (IndexError, UnicodeDecodeError, struct.error) as exc:
        raise DecodeError(f"malformed heartbeat: {exc}") from None
    return Heartbeat(name, lan, state, Flag(flags), epoch, seq, nonce, echo_nonce, peer_epoch,
                     generation, sent, echo_seq, echo_hold, tuple(aliases), kid, counter, config_head, fp,
                     targets, reached, mask, version, caps)
