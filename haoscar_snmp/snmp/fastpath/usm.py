"""SNMPv3 reads on the fast path: the message around the PDU, USM (RFC 3414) included.

`UsmReader.open` takes a whole datagram and returns a `ReadRequest` (read by SNMPv2c's
rules, `request.decode_pdu`) whose `envelope` builds the response, for exactly the
happy path of an SNMPv3 GET, GETNEXT or GETBULK:

* msgVersion 3, msgSecurityModel 3 (USM), a msgID and msgMaxSize pysnmp's decoder takes,
  no msgFlags bits beyond auth, priv and reportable;
* msgAuthoritativeEngineID ours, a user of our engine (`Users.user`: one whose view at
  its level includes the MIB), the message's level that user's own (authPriv with a
  privacy key, else authNoPriv: the agent's rule, docs/security.md);
* msgAuthoritativeEngineBoots equal to ours, ours below 2147483647, the time within
  150 s of ours (RFC 3414 3.2.7a);
* the digest right (HMAC-SHA-1-96 or the SHA-2 HMACs of RFC 7860, compared with
  `hmac.compare_digest`), found where pysnmp looks for it (its first occurrence);
* with privacy, AES-CFB (RFC 3826; 192 and 256-bit keys as pysnmp localises them) that
  decrypts to a scoped PDU with our contextEngineID and the default context "".

Anything else returns None and the datagram goes to pysnmp unchanged, which decides
and counts as it always did (discovery reports, usmStats*, snmpUnknownContexts). Nothing
here changes any state while deciding: the salt counter moves only when a response is
sealed.

The response (`V3Envelope.seal`): our engine ID, boots and time (the values pysnmp's
USM reads for a response), the request's msgID and user name, our
snmpEngineMaxMessageSize as msgMaxSize, the request's level without the reportable
flag, the scoped PDU encrypted under a fresh salt, and the HMAC over the whole message
with the digest field zeroed, then filled in. `V3Envelope.size` gives the message's
length for a PDU's length (CFB adds no padding), so the reader fits the response into
min(snmpEngineMaxMessageSize, msgMaxSize).

The salt (RFC 3826 3.1.2.1): a 64-bit integer set to a random value at start and
incremented per message, wrapping to 0. It is the fast path's own counter, beside
pysnmp's (one per privacy protocol, also random at start): two independent random
starts in 2**64 put their sequences apart by far more messages than an agent sends.

Primitives come from the standard library (hmac, hashlib) and `cryptography` (AES),
the library pysnmp itself encrypts with; the localised keys are pysnmp's (`access.py`).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from . import ber
from .request import V2C, ReadRequest, decode_pdu

try:        # cryptography 43 moved CFB to the "decrepit" modes; pysnmp uses it from there
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:     # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[no-redef]

V3 = 3
USM = 3
AUTH_NO_PRIV, AUTH_PRIV = 2, 3
MAX_BOOTS = 2147483647
TIME_WINDOW = 150       # seconds, RFC 3414 3.2.7a
_INT31 = (0, 2147483647)
_MIN_MSG_SIZE = 484     # RFC 3412 msgMaxSize (484..2147483647)
_MAX_SALT = (1 << 64) - 1
_V3_VERSION = b"\x02\x01\x03"
_USM_MODEL = b"\x02\x01\x03"


@dataclass(frozen=True)
class UserKeys:
    """One USM user of our engine, as the fast path needs it."""

    name: bytes                 # usmUserName, as msgUserName carries it
    level: int                  # the one level it reads at: AUTH_PRIV with a privacy key
    mac: Any                    # an HMAC keyed with the localised auth key (copied per message)
    digest_len: int             # 12, 16, 24, 32 or 48 octets
    priv_key: bytes | None      # the localised AES key (16, 24 or 32 octets), or None


class Users(Protocol):
    """The users and the engine clock, read from pysnmp (`access.UserAccess`)."""

    def engine_id(self) -> bytes: ...

    def user(self, name: bytes) -> UserKeys | None:
        """The user `name` of our engine if its read view at its level includes the MIB."""

    def boots_and_time(self) -> tuple[int, int]:
        """snmpEngineBoots and snmpEngineTime now, as pysnmp's USM reads them."""


class Salt:
    """RFC 3826's 64-bit salt integer: random at start, incremented per message."""

    def __init__(self) -> None:
        self._next = secrets.randbits(64)

    def take(self) -> bytes:
        value = self._next
        self._next = 0 if value == _MAX_SALT else value + 1
        return value.to_bytes(8, "big")


def _aes_cfb(key: bytes, iv: bytes) -> Cipher:  # type: ignore[type-arg]
    return Cipher(algorithms.AES(key), CFB(iv))


class UsmReader:
    """Opens the SNMPv3 reads the fast path serves; returns None for everything else."""

    def __init__(self, users: Users) -> None:
        self._users = users
        self._salt = Salt()

    def open(self, buf: bytes, max_size: int) -> ReadRequest | None:
        """The read in `buf` with its envelope, or None (pysnmp's to answer)."""
        try:
            return self._open(buf, max_size)
        except (ber.BerError, IndexError, ValueError):
            return None

    def _open(self, buf: bytes, max_size: int) -> ReadRequest | None:
        header, read_integer = ber.header, ber.read_integer
        end = len(buf)
        tag, start, stop = header(buf, 0, end)
        if tag != ber.SEQUENCE or stop != end or buf[start:start + 3] != _V3_VERSION:
            return None
        # msgGlobalData
        tag, gstart, gstop = header(buf, start + 3, stop)
        if tag != ber.SEQUENCE:
            return None
        fields = []
        pos = gstart
        for want in (ber.INTEGER, ber.INTEGER, ber.OCTET_STRING):
            tag, fstart, pos = header(buf, pos, gstop)
            if tag != want:
                return None
            fields.append((fstart, pos))
        if buf[pos:gstop] != _USM_MODEL:
            return None
        msg_id = read_integer(buf, *fields[0])
        msg_max = read_integer(buf, *fields[1])
        fstart, fstop = fields[2]
        if not (_INT31[0] <= msg_id <= _INT31[1] and _MIN_MSG_SIZE <= msg_max <= _INT31[1]
                and fstop - fstart == 1):
            return None
        flags = buf[fstart]
        level = {0x01: AUTH_NO_PRIV, 0x03: AUTH_PRIV}.get(flags & ~0x04)
        if level is None:
            return None
        # msgSecurityParameters: an OCTET STRING holding UsmSecurityParameters
        tag, ostart, ostop = header(buf, gstop, stop)
        if tag != ber.OCTET_STRING:
            return None
        tag, sstart, sstop = header(buf, ostart, ostop)
        if tag != ber.SEQUENCE or sstop != ostop:
            return None
        parts = []
        pos = sstart
        for want in (ber.OCTET_STRING, ber.INTEGER, ber.INTEGER, ber.OCTET_STRING, ber.OCTET_STRING,
                     ber.OCTET_STRING):
            tag, fstart, pos = header(buf, pos, sstop)
            if tag != want:
                return None
            parts.append((fstart, pos))
        if pos != sstop:
            return None
        users = self._users
        engine_id = users.engine_id()
        if buf[slice(*parts[0])] != engine_id:
            return None                 # discovery, another engine: pysnmp reports
        user = users.user(buf[slice(*parts[3])])
        if user is None or user.level != level:
            return None                 # unknown user, a level the user does not read at
        boots, msg_time = read_integer(buf, *parts[1]), read_integer(buf, *parts[2])
        our_boots, our_time = users.boots_and_time()
        if not (_INT31[0] <= boots <= _INT31[1] and _INT31[0] <= msg_time <= _INT31[1]):
            return None
        if our_boots == MAX_BOOTS or boots != our_boots or abs(our_time - msg_time) > TIME_WINDOW:
            return None                 # not in time window: pysnmp reports
        dstart, dstop = parts[4]
        if dstop - dstart != user.digest_len or buf.find(buf[dstart:dstop]) != dstart:
            return None
        salt = buf[slice(*parts[5])]
        if len(salt) != (8 if level == AUTH_PRIV else 0):
            return None
        # the digest, over the whole message with its own field zeroed (RFC 3414 6.3.2)
        mac = user.mac.copy()
        mac.update(buf[:dstart])
        mac.update(bytes(user.digest_len))
        mac.update(buf[dstop:])
        if not hmac.compare_digest(mac.digest()[:user.digest_len], buf[dstart:dstop]):
            return None
        # msgData: the scoped PDU, encrypted or not
        tag, dstart, dstop = header(buf, ostop, stop)
        if dstop != stop:
            return None
        if level == AUTH_PRIV:
            if tag != ber.OCTET_STRING or user.priv_key is None:
                return None
            iv = boots.to_bytes(4, "big") + msg_time.to_bytes(4, "big") + salt
            decryptor = _aes_cfb(user.priv_key, iv).decryptor()
            scoped = decryptor.update(buf[dstart:dstop]) + decryptor.finalize()
            tag, dstart, dstop = header(scoped, 0, len(scoped))   # trailing octets ignored, as pysnmp does
        else:
            scoped = buf
        if tag != ber.SEQUENCE:
            return None
        tag, estart, epos = header(scoped, dstart, dstop)
        if tag != ber.OCTET_STRING or scoped[estart:epos] != engine_id:
            return None                 # another context engine: pysnmp decides
        tag, nstart, npos = header(scoped, epos, dstop)
        if tag != ber.OCTET_STRING or npos != nstart:
            return None                 # a context other than "": pysnmp decides
        req = decode_pdu(scoped, npos, dstop, V2C)
        if req is None:
            return None
        req.envelope = V3Envelope(msg_id, min(max_size, msg_max), max_size, level, user, engine_id,
                                  our_boots, our_time, scoped[dstart:npos], self._salt)
        return req


class V3Envelope:
    """The SNMPv3 response message around a response PDU (see the module's docstring)."""

    def __init__(self, msg_id: int, limit: int, own_max: int, level: int, user: UserKeys,
                 engine_id: bytes, boots: int, engine_time: int, context: bytes, salt: Salt) -> None:
        self.limit = limit              # min(snmpEngineMaxMessageSize, msgMaxSize)
        self._user = user
        self._context = context         # contextEngineID and contextName TLVs, as asked
        self._salt = salt
        flags = b"\x03" if level == AUTH_PRIV else b"\x01"
        self._global = ber.tlv(ber.SEQUENCE, ber.integer(msg_id) + ber.integer(own_max)
                               + ber.tlv(ber.OCTET_STRING, flags) + _USM_MODEL)
        self._boots_time = boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big")
        # UsmSecurityParameters up to the digest's contents octets
        self._before = (ber.tlv(ber.OCTET_STRING, engine_id) + ber.integer(boots) + ber.integer(engine_time)
                        + ber.tlv(ber.OCTET_STRING, user.name) + bytes((ber.OCTET_STRING, user.digest_len)))
        salt_len = 2 + (8 if user.priv_key is not None else 0)
        params = len(self._before) + user.digest_len + salt_len
        params = 1 + _lenlen(params) + params
        self._fixed = 3 + len(self._global) + 1 + _lenlen(params) + params   # version, global, params

    def size(self, pdu: int) -> int:
        scoped = len(self._context) + pdu
        data = 1 + _lenlen(scoped) + scoped
        if self._user.priv_key is not None:
            data += 1 + _lenlen(data)
        body = self._fixed + data
        return 1 + _lenlen(body) + body

    def seal(self, pdu: bytes) -> bytes:
        user = self._user
        data = ber.tlv(ber.SEQUENCE, self._context + pdu)
        if user.priv_key is not None:
            salt = self._salt.take()
            encryptor = _aes_cfb(user.priv_key, self._boots_time + salt).encryptor()
            data = ber.tlv(ber.OCTET_STRING, encryptor.update(data) + encryptor.finalize())
            after = b"\x04\x08" + salt
        else:
            after = b"\x04\x00"
        n = user.digest_len
        params = ber.tlv(ber.SEQUENCE, self._before + bytes(n) + after)
        params = ber.tlv(ber.OCTET_STRING, params)
        body = _V3_VERSION + self._global + params + data
        message = ber.tlv(ber.SEQUENCE, body)
        at = len(message) - len(body) + 3 + len(self._global) + len(params) - len(after) - n
        mac = user.mac.copy()
        mac.update(message)
        return message[:at] + mac.digest()[:n] + message[at + n:]


def _lenlen(n: int) -> int:
    return 1 if n < 0x80 else 1 + (n.bit_length() + 7) // 8
