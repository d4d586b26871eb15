"""The alias guard: which ARP frames are claims on our aliases, and which are not."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from fakes import FakeAliases, FakeClock

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import Alarms
from fcaps.fault.role.aliasguard import AliasGuard, parse_arp
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import AliasStatus, HeadStatus, State

CONFIG = """
[cluster]
name = "t"
local_head = "head1"
state_dir = "state"
[[heads]]
name = "head1"
preferred_role = "primary"
[[aliases]]
address = "10.71.0.50"
prefix_length = 24
interface = "pub"
[snmp]
listen = ["127.0.0.1:1161"]
"""
OURS, OTHER = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def frame(mac: bytes, sender: str, target: str, op: int = 1) -> bytes:
    ether = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    return ether + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + socket.inet_aton(sender) \
        + b"\x00" * 6 + socket.inet_aton(target)


def guard(tmp_path: Path) -> tuple[AliasGuard, State, list[int]]:
    cfg = parse_config(CONFIG, label="t", base_dir=tmp_path, environ={})
    state = State()
    apply_to_state(cfg, state)
    woken: list[int] = []
    clock = FakeClock()
    g = AliasGuard(state, lambda: cfg, FakeAliases(), Alarms(state, EventBus(), clock), clock,
                   lambda: woken.append(1))
    g._macs["pub"] = OURS
    return g, state, woken


def hold(state: State) -> None:
    """head1 active and holding the alias."""
    state.heads[(1,)].status = HeadStatus.ACTIVE
    state.aliases[(1,)].status = AliasStatus.HELD


def test_an_announcement_of_our_alias_by_another_mac_is_a_claim(tmp_path: Path) -> None:
    g, state, woken = guard(tmp_path)
    g.seen("pub", frame(OTHER, "10.71.0.50", "10.71.0.50"))
    assert state.alias_claims["10.71.0.50"].mac == "02:00:00:00:00:02"
    assert woken == [1]
    first = state.alias_claims["10.71.0.50"].first
    g.seen("pub", frame(OTHER, "10.71.0.50", "10.71.0.50"))   # the same claim goes on
    assert woken == [1, 1] and state.alias_claims["10.71.0.50"].first == first


def test_our_own_frames_other_addresses_and_mere_use_are_no_claim(tmp_path: Path) -> None:
    g, state, woken = guard(tmp_path)
    g.seen("pub", frame(OURS, "10.71.0.50", "10.71.0.50"))            # our own announcement
    g.seen("pub", frame(OTHER, "10.71.0.9", "10.71.0.9"))             # somebody else's address
    hold(state)
    g.seen("pub", frame(OTHER, "10.71.0.50", "10.71.0.100", op=2))    # a reply: in use, not claimed
    assert state.alias_claims == {} and woken == []
    assert "10.71.0.50" in g._uses


def test_use_seen_while_this_head_does_not_hold_the_alias_is_no_conflict_later(tmp_path: Path) -> None:
    """The peer's kernel resolving a client from the alias it held, seen while this head
    was standby: once this head takes the alias over, that is no conflict (it raised a
    false aliasConflict warning after every failover and failback)."""
    g, state, _ = guard(tmp_path)
    g.seen("pub", frame(OTHER, "10.71.0.50", "10.71.0.100"))
    assert g._uses == {}
    hold(state)
    g.seen("pub", frame(OTHER, "10.71.0.50", "10.71.0.100"))
    assert "10.71.0.50" in g._uses                                   # now it is in use elsewhere


def test_junk_is_not_parsed() -> None:
    assert parse_arp(b"") is None
    assert parse_arp(b"\x00" * 60) is None
    assert parse_arp(frame(OTHER, "10.71.0.50", "10.71.0.50")) == (1, OTHER, "10.71.0.50", "10.71.0.50")
