"""Malformed AgentX input, many times over, with a fixed seed: random bytes, truncated and
bit-flipped valid PDUs, absurd lengths, well-framed nonsense. Whatever comes in, only
ParseError comes out; the stream decoder makes bounded progress (counted in calls, not
seconds); the traced heap stays small and does not grow from one round to the next."""

from __future__ import annotations

import gc
import ipaddress
import random
import struct
import tracemalloc
from collections.abc import Callable

from haoscar_snmp.snmp.agentx.decoder import ParseError, decode, decode_header
from haoscar_snmp.snmp.agentx.encoder import encode
from haoscar_snmp.snmp.agentx.pdu import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    CleanupSet,
    Close,
    GetBulk,
    GetNext,
    IndexAllocate,
    Notify,
    Open,
    Pdu,
    Register,
    Response,
    SearchRange,
    TestSet,
    ValueType,
    VarBind,
)
from haoscar_snmp.snmp.agentx.stream import StreamDecoder

SEED = 2741
PER_KIND = 2_000                     # seven kinds: 14,000 malformed inputs
ENTERPRISE = (1, 3, 6, 1, 4, 1, 9999)

SEEDS: list[Pdu] = [
    Open(timeout=5, id=ENTERPRISE, descr=b"haoscar-snmp"),
    Close(reason=5, session_id=9),
    Register(subtree=ENTERPRISE + (1, 1), range_subid=9, upper_bound=20, context=b"ctx"),
    GetNext(ranges=(SearchRange(ENTERPRISE, ENTERPRISE + (9,), True),
                    SearchRange((1, 3, 6, 1, 2, 1, 1, 3, 0)))),
    GetBulk(non_repeaters=1, max_repetitions=10, ranges=(SearchRange(ENTERPRISE),)),
    TestSet(varbinds=(VarBind(ENTERPRISE + (1, 0), ValueType.INTEGER, 3),
                      VarBind(ENTERPRISE + (2, 0), ValueType.OCTET_STRING, b"abcde"),
                      VarBind(ENTERPRISE + (3, 0), ValueType.IP_ADDRESS,
                              ipaddress.IPv4Address("10.0.0.1")))),
    Notify(varbinds=(VarBind((1, 3, 6, 1, 2, 1, 1, 3, 0), ValueType.TIME_TICKS, 99),
                     VarBind((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), ValueType.OBJECT_IDENTIFIER,
                             ENTERPRISE + (0, 1)))),
    IndexAllocate(varbinds=(VarBind(ENTERPRISE, ValueType.COUNTER64, 2**40),), new_index=True),
    CleanupSet(),
    Response(sys_uptime=1, error=17, index=1, varbinds=(
        VarBind(ENTERPRISE, ValueType.OPAQUE, b"\x9f\x78"),
        VarBind(ENTERPRISE, ValueType.END_OF_MIB_VIEW))),
]


def header(rng: random.Random, pdu_type: int, length: int) -> bytes:
    flags = rng.randrange(256)
    order = ">" if flags & 0x10 else "<"
    return struct.pack(order + "BBBxIIII", 1, pdu_type, flags, rng.getrandbits(32),
                       rng.getrandbits(32), rng.getrandbits(32), length)


def random_bytes(rng: random.Random) -> bytes:
    data = rng.randbytes(rng.randrange(0, 120))
    if data and rng.random() < 0.5:
        data = b"\x01" + data[1:]                    # get past the version check
    return data


def truncated(rng: random.Random) -> bytes:
    data = encode(rng.choice(SEEDS), network_byte_order=rng.random() < 0.5)
    return data[:rng.randrange(0, len(data))]


def flipped(rng: random.Random) -> bytes:
    data = bytearray(encode(rng.choice(SEEDS), network_byte_order=rng.random() < 0.5))
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def absurd_length(rng: random.Random) -> bytes:
    length = rng.choice([0xFFFFFFFC, 0x80000000, MAX_PAYLOAD + 4, MAX_PAYLOAD * 2,
                         rng.getrandbits(32), rng.randrange(1, 64) * 4 + rng.randrange(1, 4)])
    return header(rng, rng.randrange(1, 19), length) + rng.randbytes(rng.randrange(0, 64))


def nonsense_item(rng: random.Random) -> bytes:
    """An OID head, an octet string length or a varbind head with wild numbers."""
    kind = rng.randrange(4)
    if kind == 0:                                    # OID: n_subid, prefix, include
        return bytes((rng.randrange(256), rng.randrange(256), rng.randrange(256), 0))
    if kind == 1:                                    # octet string length
        return struct.pack(">I", rng.choice([0xFFFFFFFF, rng.getrandbits(32),
                                             rng.randrange(16)]))
    if kind == 2:                                    # varbind head, any type
        return struct.pack(">HH", rng.choice([2, 4, 5, 6, 64, 65, 66, 67, 68, 70, 128,
                                              129, 130, rng.getrandbits(16)]), 0)
    return rng.randbytes(4)


def framed_nonsense(rng: random.Random) -> bytes:
    """A well-framed header over a payload of plausible-looking parts in wild numbers."""
    payload = b"".join(nonsense_item(rng) for _ in range(rng.randrange(0, 40)))
    return header(rng, rng.randrange(0, 21), len(payload)) + payload


def spliced(rng: random.Random) -> bytes:
    """A valid PDU with a word of its payload replaced, or one inserted, and its header's
    length made to agree: well framed, wrong deep inside."""
    data = bytearray(encode(rng.choice(SEEDS), network_byte_order=rng.random() < 0.5))
    payload = data[HEADER_SIZE:]
    at = rng.randrange(0, len(payload) // 4 + 1) * 4
    cut = 4 if rng.random() < 0.5 and at < len(payload) else 0
    payload[at:at + cut] = nonsense_item(rng)
    order = ">" if data[2] & 0x10 else "<"
    return bytes(data[:16]) + struct.pack(order + "I", len(payload)) + bytes(payload)


KINDS: list[Callable[[random.Random], bytes]] = [
    random_bytes, truncated, flipped, absurd_length, nonsense_item, framed_nonsense, spliced]


def check_decode(data: bytes) -> bool:
    """decode() gives a PDU or ParseError, nothing else; what it accepts re-encodes."""
    try:
        pdu = decode(data)
    except ParseError:
        return False
    again = encode(pdu, network_byte_order=decode_header(data).network_byte_order)
    assert decode(again) == pdu
    return True


def check_stream(rng: random.Random, data: bytes) -> int:
    """Feed `data` in random chunks and drain after each; return next_pdu calls made."""
    decoder = StreamDecoder()
    calls = chunks = consumed_pdus = 0
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 64)
        decoder.feed(data[pos:pos + step])
        pos += step
        chunks += 1
        while True:
            calls += 1
            try:
                pdu = decoder.next_pdu()
            except ParseError as err:
                if not err.resumable:
                    assert decoder.failed.reason == err.reason and decoder.buffered == 0
                    return calls
                consumed_pdus += 1
                continue
            if pdu is None:
                break
            consumed_pdus += 1
        # what is held is never more than one incomplete PDU
        assert decoder.buffered < HEADER_SIZE + MAX_PAYLOAD
    # every call either waited for bytes (once per chunk) or consumed a whole PDU,
    # at least 20 octets
    assert consumed_pdus <= len(data) // HEADER_SIZE
    assert calls <= chunks + consumed_pdus
    return calls


def fuzz_round(rng: random.Random, per_kind: int) -> tuple[int, int, int]:
    samples = accepted = calls = 0
    for kind in KINDS:
        for _ in range(per_kind):
            data = kind(rng)
            accepted += check_decode(data)
            calls += check_stream(rng, data)
            samples += 1
    return samples, accepted, calls


def test_malformed_input_yields_only_parse_errors_in_bounded_work() -> None:
    samples, accepted, calls = fuzz_round(random.Random(SEED), PER_KIND)
    assert samples >= 10_000
    # some bit flips leave a valid PDU: those decode, and re-encode to the same PDU
    assert 0 < accepted < samples // 2
    # generous: on average fewer than 10 decoder calls per input
    assert calls < 10 * samples


def test_malformed_input_leaves_the_heap_small_and_not_growing() -> None:
    """Traced rounds are shorter: tracemalloc makes each input several times slower."""
    rng = random.Random(SEED + 2)
    tracemalloc.start()
    try:
        fuzz_round(rng, PER_KIND // 4)
        gc.collect()
        after_first, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fuzz_round(rng, PER_KIND // 4)
        gc.collect()
        after_second, second_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # no input makes the codec reserve what a length field announces (up to 4 GiB)
    assert max(peak, second_peak) < 4 * 1024 * 1024
    # and a second round leaves nothing behind
    assert after_second - after_first < 16 * 1024


def test_a_long_stream_of_good_and_framed_bad_pdus() -> None:
    """One decoder over thousands of PDUs, a third of them framed garbage: every good
    one comes out, in order, and every bad one is reported resumable with its header."""
    rng = random.Random(SEED + 1)
    good: list[Pdu] = []
    stream = bytearray()
    bad = 0
    for _ in range(3_000):
        if rng.random() < 0.33:
            payload = bytes((0, 3, 0, 0)) + bytes(4)     # a varbind of unknown type 3
            stream += header(rng, 12, len(payload)) + payload
            bad += 1
        else:
            pdu = rng.choice(SEEDS)
            good.append(pdu)
            stream += encode(pdu, network_byte_order=rng.random() < 0.5)
    decoder = StreamDecoder()
    got: list[Pdu] = []
    errors = 0
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 4096)
        decoder.feed(stream[pos:pos + step])
        pos += step
        while True:
            try:
                pdu = decoder.next_pdu()
            except ParseError as err:
                assert err.resumable and err.header is not None and err.header.type == 12
                errors += 1
                continue
            if pdu is None:
                break
            got.append(pdu)
    assert got == good and errors == bad and decoder.buffered == 0
