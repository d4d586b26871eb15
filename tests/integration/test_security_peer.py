"""Forged heartbeats against real heartbeat processes on loopback: refused, counted with
the LAN and the reason, reported by the security area as one peerAuthFailure event, and
the peer still heard. Reuses the heartbeat-process pair of test_hbprocess."""

from __future__ import annotations

import socket

import pytest

from fcaps.fault.alarms import Alarms
from fcaps.fault.heartbeat import proto
from fcaps.security.authfail import AuthFailures
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType

from .test_hbprocess import Head, run_pair, until

pytestmark = pytest.mark.integration


def test_forged_heartbeats_are_reported_with_their_lan_and_reason(tmp_path) -> None:
    async def body(head1: Head, head2: Head) -> None:
        bus, events = EventBus(), []
        bus.subscribe("test", events.append)
        failures = AuthFailures(head2.state, bus, Alarms(head2.state, bus, SystemClock()), SystemClock())
        forged = proto.encode(proto.Heartbeat("head1", 1, 2, proto.Flag(0), epoch=1, seq=1), b"w" * 32)
        port = head2.config.heartbeat.port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(20):                                  # a burst under a wrong key
                s.sendto(forged, ("127.0.1.2", port))
        await until(lambda: head2.state.security.hb_auth_failures >= 20, 3, "the forged heartbeats to be counted")
        assert head2.state.security.hb_last_refused == "lanA: authentication failed"
        assert head2.heard()                                     # the real peer is still believed
        sentence = await failures.run_cycle()
        (event,) = [e for e in events if isinstance(e, Event)]
        assert event.type == EventType.PEER_AUTH_FAILURE
        assert "heartbeat authentication failures" in sentence
        assert sentence.endswith("(the latest heartbeat: lanA: authentication failed)")

    run_pair(tmp_path, body)
