"""Heartbeat wire format: round trip, authentication (also under two keys), malformed input."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from fcaps.fault.heartbeat import proto as hbproto
from fcaps.fault.heartbeat.proto import Flag, Heartbeat

KEY = b"k" * 32


def beat(**kw: object) -> Heartbeat:
    fields = dict(sender="head1", lan=1, state=3, flags=Flag.PREFERRED_PRIMARY, epoch=7, seq=42,
                  nonce=0x1234, echo_nonce=0x5678, peer_epoch=3, generation=9,
                  sent_wall_ms=1_700_000_000_000, echo_seq=41, echo_hold_us=120,
                  aliases=("10.71.0.50",))
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    msg = beat(aliases=("10.71.0.50", "2001:db8::50"),
               flags=Flag.HANDOVER | Flag.QUORUM_OK | Flag.ISOLATED | Flag.PUBLIC_DOWN,
               nonce=2**64 - 1, generation=2**40)
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


def test_either_of_two_keys_verifies_during_a_rotation() -> None:
    old, new = b"o" * 32, b"n" * 32
    assert hbproto.decode(hbproto.encode(beat(), old), (new, old)) == beat()
    assert hbproto.decode(hbproto.encode(beat(), new), (new, old)) == beat()
    with pytest.raises(hbproto.AuthError):
        hbproto.decode(hbproto.encode(beat(), b"x" * 32), (new, old))


@pytest.mark.parametrize("data", [b"", b"HAOS", b"junk" * 40, bytes(200)])
def test_garbage_is_a_decode_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)


def test_authenticated_but_truncated_body_is_a_decode_error() -> None:
    body = hbproto.encode(beat(), KEY)[:-32][:-5]       # cut the alias list short
    data = body + hmac.new(KEY, body, hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)


def test_an_authenticated_older_version_is_refused() -> None:
    body = bytearray(hbproto.encode(beat(), KEY)[:-32])
    body[4] = 1
    data = bytes(body) + hmac.new(KEY, bytes(body), hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError, match="version 1"):
        hbproto.decode(data, KEY)


def test_version_3_carries_the_settings_advert() -> None:
    msg = beat(config_counter=12, config_head="head2", config_fp=2**64 - 3, version=3,
               caps=hbproto.CAP_READS_V3)
    back = hbproto.decode(hbproto.encode(msg, KEY), KEY)
    assert back == msg and back.version == 3 and back.reads_v3 and back.reads == 3


def test_version_4_carries_the_public_reach_and_version_3_leaves_it_out() -> None:
    msg = beat(config_counter=12, config_head="head2", config_fp=5, public_targets=32, public_reached=3,
               public_mask=0x8000_0003, flags=Flag.PUBLIC_LOST | Flag.QUORUM_OK)
    back = hbproto.decode(hbproto.encode(msg, KEY), KEY)
    assert back == msg and back.version == 4 and back.reads == 4
    three = hbproto.decode(hbproto.encode(beat(version=3, public_targets=2, public_reached=1, public_mask=1),
                                          KEY), KEY)
    assert (three.public_targets, three.public_reached, three.public_mask) == (0, 0, 0)
    assert three.reads == 4                       # its caps say it reads 4
    with pytest.raises(ValueError):
        hbproto.encode(beat(public_targets=1, public_reached=2), KEY)


def test_a_public_reach_that_does_not_add_up_is_a_decode_error() -> None:
    body = bytearray(hbproto.encode(beat(public_targets=2, public_reached=1), KEY)[:-32])
    body[-5] = 9                                  # reached 9 of 2
    data = bytes(body) + hmac.new(KEY, bytes(body), hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError, match="public"):
        hbproto.decode(data, KEY)


def test_version_2_leaves_the_advert_out_and_says_it_reads_3() -> None:
    """Sent to a peer of the release before: its parser (version 2, the caps byte
    ignored, nothing after the alias list) reads every byte of it."""
    msg = beat(version=2, config_counter=12, config_head="head2", config_fp=99)
    data = hbproto.encode(msg, KEY)
    assert data[4] == 2 and data[7] == hbproto.CAPS
    back = hbproto.decode(data, KEY)
    assert (back.version, back.config_counter, back.config_head, back.config_fp) == (2, 0, "", 0)
    assert back.reads_v3
    old_release = beat(version=2, caps=0)
    assert not hbproto.decode(hbproto.encode(old_release, KEY), KEY).reads_v3


@pytest.mark.parametrize("version", [1, 5, 255])
def test_unknown_versions_are_decode_errors(version: int) -> None:
    body = bytearray(hbproto.encode(beat(), KEY)[:-32])
    body[4] = version
    data = bytes(body) + hmac.new(KEY, bytes(body), hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)


def test_a_truncated_advert_is_a_decode_error() -> None:
    body = hbproto.encode(beat(config_head="head2"), KEY)[:-32][:-2]
    data = body + hmac.new(KEY, body, hashlib.sha256).digest()
    with pytest.raises(hbproto.DecodeError):
        hbproto.decode(data, KEY)
