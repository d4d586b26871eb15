"""Messages between the daemon and its heartbeat process survive the trip whole."""

from __future__ import annotations

from fcaps.fault.heartbeat.peer import HbSettings, LocalView, Notice
from fcaps.fault.heartbeat import wire as hbwire
from fcaps.fault.heartbeat.proto import Flag
from haoscar_snmp.core.state import (
    HbPathRow,
    HeadStatus,
    Lan,
    LinkStatus,
    LinkView,
    PeerView,
)


def trip(kind: str, **fields: object) -> dict:
    msg = hbwire.unpack(hbwire.pack(kind, **fields))
    assert msg["t"] == kind
    return msg


def test_views_notices_and_rows_round_trip() -> None:
    peer = PeerView("head1", True, heard=True, paths_up=frozenset({1, 3}), status=HeadStatus.ACTIVE,
                    flags=int(Flag.QUORUM_OK | Flag.PREFERRED_PRIMARY), generation=7,
                    aliases=("10.71.0.50", "fd71::50"), heard_since=12.5, silent_since=3.25, ever_heard=True)
    links = LinkView("lana", "lanb", "pub", (("lana", False), ("pub", True)))
    notices = [Notice("path-down", Lan.LAN_B, "no valid heartbeat on lanB for 401 ms", 401),
               Notice("clock-offset", None, "an hour", 3_600_000, True)]
    row = HbPathRow(LinkStatus.UP, 10, 9, 1, 250, 1_700_000_000.5, 2, 120_000)
    msg = trip("snap", peer=hbwire.peer_to_wire(peer), links=hbwire.links_to_wire(links),
               notices=[hbwire.notice_to_wire(n) for n in notices], row=hbwire.row_to_wire(row))
    assert hbwire.peer_from_wire(msg["peer"]) == peer
    assert hbwire.links_from_wire(msg["links"]) == links
    assert [hbwire.notice_from_wire(n) for n in msg["notices"]] == notices
    copy = HbPathRow()
    hbwire.row_from_wire(msg["row"], copy)
    assert copy == row and isinstance(copy.status, LinkStatus)


def test_what_to_advertise_and_the_settings_round_trip() -> None:
    local = LocalView(HeadStatus.ACTIVE, Flag.HANDOVER | Flag.QUORUM_OK, 4, ("10.71.0.50",))
    held = [("10.71.0.50", 24, "pub")]
    assert hbwire.local_from_wire(trip("local", **hbwire.local_to_wire(local, held))) == (local, held)
    settings = HbSettings("head2", "head1", True, 20, 60, 1000)
    assert hbwire.settings_from_wire(trip("settings", settings=hbwire.settings_to_wire(settings))["settings"]) \
        == settings
