"""The benchmark client's SNMPv3 side: one USM user at authPriv, HMAC-SHA-256-192
(RFC 7860) and AES-128-CFB (RFC 3826), around the SNMPv2c PDUs bench_snmp.py builds.

`Usm.discover` asks the agent its engine ID, boots and time (RFC 3414 4, a
noAuthNoPriv request with an empty engine ID: the report carries all three);
`Usm.wrap` turns a PDU into an authenticated, encrypted message; `Usm.unwrap` checks a
response's digest, decrypts it and returns its PDU's octets. The keys come from the
passphrases by RFC 3414's password-to-key and localisation, computed with pysnmp's own
functions (the client may import pysnmp: it is not what is measured); the primitives
are `hmac`/`hashlib` and `cryptography`'s AES.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:     # older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB  # type: ignore[no-redef]

DIGEST = 24             # HMAC-SHA-256-192
REPORT = 0xA8


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    head = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + head + body


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))


def _tl(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at `pos`."""
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def _fields(buf: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    out = []
    while start < stop:
        tag, s, e = _tl(buf, start)
        out.append((tag, s, e))
        start = e
    return out


def localised_keys(auth_pass: str, priv_pass: str, engine_id: bytes) -> tuple[bytes, bytes]:
    from pysnmp.proto.secmod.rfc3414 import localkey
    from pyasn1.type import univ
    eid = univ.OctetString(engine_id)
    auth = localkey.localize_key(localkey.hash_passphrase(auth_pass, hashlib.sha256), eid, hashlib.sha256)
    priv = localkey.localize_key(localkey.hash_passphrase(priv_pass, hashlib.sha256), eid, hashlib.sha256)
    return bytes(auth), bytes(priv)[:16]


class Usm:
    """One user's session with one agent."""

    def __init__(self, user: str, auth_pass: str, priv_pass: str) -> None:
        self.user = user.encode()
        self._passes = (auth_pass, priv_pass)
        self.engine_id = b""
        self._boots = 0
        self._time0 = 0
        self._at = 0.0
        self._auth = b""
        self._priv = b""
        self._salt = secrets.randbits(64)
        self._msg_id = secrets.randbelow(1 << 30)

    def discovery(self) -> bytes:
        """The message that asks for the engine ID (a GET with no var-binds)."""
        pdu = _tlv(0xA0, _int(1) + _int(0) + _int(0) + _tlv(0x30, b""))
        params = _tlv(0x30, _tlv(0x04, b"") + _int(0) + _int(0) + _tlv(0x04, b"") + _tlv(0x04, b"")
                      + _tlv(0x04, b""))
        return self._message(b"\x04", params, _tlv(0x30, _tlv(0x04, b"") + _tlv(0x04, b"") + pdu))

    def learn(self, report: bytes) -> None:
        """Take the engine ID, boots and time from a report (to a discovery, or a
        notInTimeWindow report)."""
        msg = _fields(report, *_tl(report, 0)[1:])
        _, ps, pe = msg[2]
        params = _fields(report, *_tl(report, ps)[1:])
        engine_id, boots, now = (report[params[i][1]:params[i][2]] for i in (0, 1, 2))
        self.set_engine(engine_id, int.from_bytes(boots, "big"), int.from_bytes(now, "big"))

    def set_engine(self, engine_id: bytes, boots: int, engine_time: int) -> None:
        """The agent's engine ID, boots and time now (as a report gives them)."""
        if engine_id != self.engine_id:
            self._auth, self._priv = localised_keys(*self._passes, engine_id)
        self.engine_id, self._boots, self._time0, self._at = engine_id, boots, engine_time, time.monotonic()

    def wrap(self, pdu: bytes) -> bytes:
        """An authPriv message carrying `pdu`."""
        now = self._time0 + int(time.monotonic() - self._at)
        self._salt = (self._salt + 1) & ((1 << 64) - 1)
        salt = self._salt.to_bytes(8, "big")
        scoped = _tlv(0x30, _tlv(0x04, self.engine_id) + _tlv(0x04, b"") + pdu)
        enc = Cipher(algorithms.AES(self._priv), CFB(self._boots.to_bytes(4, "big") + now.to_bytes(4, "big")
                                                    + salt)).encryptor()
        data = _tlv(0x04, enc.update(scoped) + enc.finalize())
        params = _tlv(0x30, _tlv(0x04, self.engine_id) + _int(self._boots) + _int(now) + _tlv(0x04, self.user)
                      + _tlv(0x04, bytes(DIGEST)) + _tlv(0x04, salt))
        whole = self._message(b"\x07", params, data)
        at = whole.index(bytes(DIGEST))
        mac = hmac.new(self._auth, whole, hashlib.sha256).digest()[:DIGEST]
        return whole[:at] + mac + whole[at + DIGEST:]

    def unwrap(self, data: bytes) -> bytes:
        """The PDU (its TLV) of a response or report; raises ValueError if the digest
        is wrong."""
        msg = _fields(data, *_tl(data, 0)[1:])
        flags = data[_fields(data, msg[1][1], msg[1][2])[2][1]]
        params = _fields(data, *_tl(data, msg[2][1])[1:])
        if flags & 1:
            _, ds, de = params[4]
            whole = data[:ds] + bytes(de - ds) + data[de:]
            if not hmac.compare_digest(hmac.new(self._auth, whole, hashlib.sha256).digest()[:DIGEST], data[ds:de]):
                raise ValueError("wrong digest in a response")
        _, s, e = msg[3]
        if flags & 2:
            boots, now = (int.from_bytes(data[params[i][1]:params[i][2]], "big") for i in (1, 2))
            iv = boots.to_bytes(4, "big") + now.to_bytes(4, "big") + data[params[5][1]:params[5][2]]
            dec = Cipher(algorithms.AES(self._priv), CFB(iv)).decryptor()
            scoped = dec.update(data[s:e]) + dec.finalize()
            s, e = _tl(scoped, 0)[1:]
        else:
            scoped = data
        parts = _fields(scoped, s, e)
        return scoped[parts[1][2]:parts[2][2]]     # from the end of contextName: the PDU's TLV

    def _message(self, flags: bytes, params: bytes, data: bytes) -> bytes:
        self._msg_id = (self._msg_id + 1) & 0x7FFFFFFF
        head = _tlv(0x30, _int(self._msg_id) + _int(65507) + _tlv(0x04, flags) + _int(3))
        return _tlv(0x30, _int(3) + head + _tlv(0x04, params) + data)
