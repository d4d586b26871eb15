"""The netlink messages of the alias operations (fault/takeover.py): the requests are
byte for byte what pyroute2's `ifaddrmsg` made of them (the reference hex below was
produced by it), and an address dump is read right, refusals and truncation included.
The kernel's side is exercised by the failover scenarios (tests/scenarios)."""

from __future__ import annotations

import socket
import struct

import pytest

from fcaps.fault.takeover import RTM_NEWADDR, Alias, address_request, addresses_in

REFERENCE = [   # command, alias, the request as pyroute2 0.9.7 encoded it (interface index 7, sequence 42)
    ("add", Alias("10.0.0.5", 24, "eth0", 3),
     "34000000140005062a000000000000000218000007000000080002000a000005080001000a0000050b000300"
     "657468303a330000"),
    ("add", Alias("2001:db8::7", 64, "veth-long-name1", 12),
     "2c000000140005062a000000000000000a400200070000001400010020010db8000000000000000000000007"),
    ("add", Alias("192.168.1.1", 16, "averyverylongif", 65535),
     "3c000000140005062a00000000000000021000000700000008000200c0a8010108000100c0a80101140003006176"
     "657279766572796c6f6e67696600"),
    ("del", Alias("10.0.0.5", 24, "eth0", 3),
     "28000000150005002a000000000000000218000007000000080002000a000005080001000a000005"),
    ("del", Alias("2001:db8::7", 64, "veth-long-name1", 12),
     "2c000000150005002a000000000000000a400000070000001400010020010db8000000000000000000000007"),
]


@pytest.mark.parametrize("command, alias, expected", REFERENCE)
def test_requests_are_what_pyroute2_made(command: str, alias: Alias, expected: str) -> None:
    assert address_request(command, 7, alias, 42).hex() == expected


def newaddr(seq: int, index: int, address: bytes, family: int = socket.AF_INET) -> bytes:
    attrs = struct.pack("=HH", 8, 2) + address[:4] + struct.pack("=HH", 4 + len(address), 1) + address
    body = struct.pack("=BBBBI", family, 24, 0, 0, index) + attrs
    return struct.pack("=IHHII", 16 + len(body), RTM_NEWADDR, 2, seq, 0) + body


def test_a_dump_is_read_to_its_end() -> None:
    a, b = socket.inet_aton("10.0.0.5"), socket.inet_aton("10.0.0.6")
    part = newaddr(9, 3, a) + newaddr(9, 4, b) + newaddr(8, 5, a)   # the last answers another request
    assert addresses_in(part, 9) == ([(3, a), (4, b)], False)
    done = struct.pack("=IHHII", 20, 3, 2, 9, 0) + b"\0" * 4
    assert addresses_in(done, 9) == ([], True)


def test_a_refused_or_truncated_dump_raises() -> None:
    refused = struct.pack("=IHHII", 36, 2, 0, 9, 0) + struct.pack("=i", -1) + b"\0" * 16
    with pytest.raises(OSError, match="Operation not permitted"):
        addresses_in(refused, 9)
    with pytest.raises(OSError, match="truncated"):
        addresses_in(newaddr(9, 3, socket.inet_aton("10.0.0.5"))[:-4], 9)

