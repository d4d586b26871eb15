"""Heartbeat wire format: round trip, authentication, malformed input, replay guard."""

from __future__ import annotations

import pytest

from fcaps.fault import hbproto
from fcaps.fault.hbproto import Flag, Heartbeat, ReplayGuard, Verdict

KEY = b"k" * 32


def beat(**kw: object) -> Heartbeat:
    fields = dict(sender="head1", lan=1, state=3, flags=Flag.PREFERRED_PRIMARY, epoch=7, seq=42,
                  sent_wall_ms=1_700_000_000_000, echo_seq=41, echo_hold_us=120,
                  aliases=("10.71.0.50",))
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    msg = beat(aliases=("10.71.0.50", "2001:db8::50"), flags=Flag.HANDOVER | Flag.QUORUM_OK)
    assert hbproto.decode(hbproto.encode(msg, KEY), KEY) == msg


def test_wrong_key_or_any_flipped_bit_fails_authentication() -> None:
    data = hbproto.encode(beat(), KEY)
    with pytest.raises(hbproto.AuthError):
        hbproto.decode(data, b"x" * 32)
    for i in range(4, len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        with pytest.raises((hbproto.AuthError, hbproto.DecodeError)):
            hbproto.decode(bytes(tampered), KEY)


@pytest.mark.parametrize("data", [b"", b"HAOS", b"junk" * 40, bytes(200)])
def test_garbage_is_a_decode_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)


def test_authenticated_but_truncated_body_is_a_decode_error() -> None:
    import hashlib
    import hmac
    body = hbproto.encode(beat(), KEY)[:-32][:-5]       # cut the alias list short
    data = body + hmac.new(KEY, body, hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)


def test_replay_guard_accepts_only_increasing_sequence_per_lan() -> None:
    guard = ReplayGuard({"head1"}, window_ms=60_000)
    now = 1_700_000_000_000
    assert guard.check(beat(seq=1), now) is Verdict.OK
    assert guard.check(beat(seq=1), now) is Verdict.REPLAY           # same message again
    assert guard.check(beat(seq=2), now) is Verdict.OK
    assert guard.check(beat(seq=1, lan=2), now) is Verdict.OK        # LAN B has its own order
    assert guard.check(beat(seq=3, epoch=6), now) is Verdict.REPLAY  # older boot of the sender
    assert guard.check(beat(seq=1, epoch=8), now) is Verdict.OK      # the sender restarted


def test_replay_guard_rejects_stale_and_unknown() -> None:
    guard = ReplayGuard({"head1"}, window_ms=60_000)
    now = 1_700_000_000_000
    assert guard.check(beat(sent_wall_ms=now - 61_000), now) is Verdict.STALE
    assert guard.check(beat(sender="intruder"), now) is Verdict.UNKNOWN_SENDER
