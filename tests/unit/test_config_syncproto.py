"""The settings exchange's datagrams: round trip, authentication, malformed input, the
answered-request window."""

from __future__ import annotations

import hashlib
import hmac
import random
import zlib

import pytest

from fcaps.configuration import syncproto
from fcaps.configuration.syncproto import Answered, Kind, Message

KEY = b"k" * 32


def message(**kw: object) -> Message:
    fields = dict(kind=Kind.PROPOSE, sender_nonce=2**64 - 1, echo_nonce=7, msg_id=3, reply_to=0,
                  body={"from": "head1", "version": [4, "head2"], "settings": {"timing": {"garp_count": 3}}})
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


def sign(body: bytes, key: bytes = KEY) -> bytes:
    return body + hmac.new(key, body, hashlib.sha256).digest()


@pytest.mark.parametrize("kind", list(Kind))
def test_round_trip_keeps_every_field(kind: Kind) -> None:
    msg = message(kind=kind, reply_to=99)
    back = syncproto.decode(syncproto.encode(msg, KEY), KEY)
    assert back == msg and back.sender == "head1"
    assert back.kind.is_request == (kind in (Kind.FETCH, Kind.PROPOSE))


def test_only_the_key_holders_are_heard_and_any_flipped_bit_is_refused() -> None:
    data = syncproto.encode(message(), KEY)
    with pytest.raises(syncproto.AuthError):
        syncproto.decode(data, b"x" * 32)
    assert syncproto.decode(data, (b"x" * 32, KEY)) == message()       # during a key rotation
    for i in range(4, len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x40
        with pytest.raises((syncproto.AuthError, syncproto.DecodeError)):
            syncproto.decode(bytes(tampered), KEY)


def test_settings_too_large_for_one_datagram_are_refused_before_sending() -> None:
    noise = random.Random(1).randbytes(40_000).hex()           # does not compress
    with pytest.raises(syncproto.TooLarge, match="one exchange datagram holds"):
        syncproto.encode(message(body={"from": "head1", "settings": {"x": noise}}), KEY)


@pytest.mark.parametrize("data", [b"", b"HAOC", b"HAOS" + bytes(80), bytes(100), b"HAOC" * 20000])
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(syncproto.DecodeError):
        syncproto.decode(data, KEY)


def _head(version: int = 1, kind: int = 3) -> bytes:
    return syncproto._HEAD.pack(b"HAOC", version, kind, 0, 1, 2, 3, 0)


@pytest.mark.parametrize("body", [
    _head(version=2) + zlib.compress(b'{"from":"head1"}'),              # another version
    _head(kind=9) + zlib.compress(b'{"from":"head1"}'),                 # unknown kind
    _head() + b"not zlib",
    _head() + zlib.compress(b"not json"),
    _head() + zlib.compress(b"[1, 2]"),                                 # not an object
    _head() + zlib.compress(b'{"to":"head1"}'),                         # no sender
    _head() + zlib.compress(b'{"from":"head1"}')[:-3],                  # truncated
    _head() + zlib.compress(b"[" * 100_000 + b"]" * 100_000),           # deep nesting
    _head() + zlib.compress(b" " * (syncproto.MAX_BODY + 10)),          # a zlib bomb
])
def test_authenticated_but_malformed_bodies_are_decode_errors(body: bytes) -> None:
    with pytest.raises(syncproto.DecodeError):
        syncproto.decode(sign(body), KEY)


def test_ten_thousand_random_datagrams_never_raise_anything_else() -> None:
    rng = random.Random(7)
    good = syncproto.encode(message(), KEY)
    for _ in range(10_000):
        data = bytearray(good if rng.random() < 0.5 else rng.randbytes(rng.randrange(0, 300)))
        for _ in range(rng.randrange(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        body = bytes(data[:-32]) if len(data) > 32 else bytes(data)
        for candidate in (bytes(data), sign(body)):
            try:
                syncproto.decode(candidate, KEY)
            except (syncproto.DecodeError, syncproto.AuthError):
                pass


def test_a_request_is_taken_once_and_its_copies_get_the_same_answer() -> None:
    seen = Answered(size=4)
    assert seen.lookup(nonce=10, msg_id=1) == (False, None)
    seen.taking(1)
    assert seen.lookup(10, 1) == (True, None)              # the other LAN's copy, while being done
    seen.answered(1, b"ack")
    assert seen.lookup(10, 1) == (True, b"ack")            # a retransmission: the same answer again
    for msg_id in range(2, 8):
        assert seen.lookup(10, msg_id) == (False, None)
        seen.taking(msg_id)
    assert seen.lookup(10, 1) == (True, None)               # forgotten, and too old to be taken again
    assert seen.lookup(10, 3) == (True, None)
    assert seen.lookup(11, 1) == (False, None)              # the peer's next run counts from 1 again
