"""Messages between the daemon and its heartbeat process: JSON, one per datagram.

The two processes share a SOCK_SEQPACKET socket pair, so every message arrives whole.
Daemon -> heartbeat process: `init` (once), `local` (what to advertise; sent at every
role cycle, which is also the daemon's sign of life), `settings`, `key` (after a reload),
`reset`, `stop`. Heartbeat process -> daemon: `ready` or `error` (once), `snap` (the views, the
notices and the counters; at every change and twice a second), `beat` (at every
heartbeat sent when nothing else went to the daemon: the daemon watches for silence).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from haoscar_snmp.core.state import HbPathRow, HeadStatus, Lan, LinkView, PeerView

from .proto import Flag
from .peer import HbSettings, LocalView, Notice

MAX_MESSAGE = 65536
ROW_FIELDS = ("status", "sent", "received", "lost", "rtt_us", "last_heard", "rejected", "max_gap_us")


def pack(kind: str, **fields: Any) -> bytes:
    return json.dumps({"t": kind, **fields}, separators=(",", ":")).encode()


def unpack(data: bytes) -> dict[str, Any]:
    return json.loads(data)


def peer_to_wire(view: PeerView) -> dict[str, Any]:
    d = asdict(view)
    d["paths_up"] = sorted(view.paths_up)
    d["status"] = int(view.status)
    return d


def peer_from_wire(d: dict[str, Any]) -> PeerView:
    config = d.get("config")
    public = d.get("public")
    return PeerView(**dict(d, paths_up=frozenset(d["paths_up"]), status=HeadStatus(d["status"]),
                           aliases=tuple(d["aliases"]),
                           config=(int(config[0]), str(config[1]), int(config[2])) if config else None,
                           public=(int(public[0]), int(public[1]), int(public[2])) if public else None))


def links_to_wire(view: LinkView) -> dict[str, Any]:
    return {"lan_a": view.lan_a, "lan_b": view.lan_b, "public": view.public,
            "carrier": [list(c) for c in view.carrier]}


def links_from_wire(d: dict[str, Any]) -> LinkView:
    return LinkView(lan_a=d["lan_a"], lan_b=d["lan_b"], public=d["public"],
                    carrier=tuple((str(n), bool(up)) for n, up in d["carrier"]))


def notice_to_wire(n: Notice) -> dict[str, Any]:
    return {"kind": n.kind, "lan": int(n.lan) if n.lan is not None else None, "text": n.text,
            "value": n.value, "flag": n.flag}


def notice_from_wire(d: dict[str, Any]) -> Notice:
    return Notice(d["kind"], Lan(d["lan"]) if d["lan"] is not None else None, d["text"], d["value"], d["flag"])


def row_to_wire(row: HbPathRow) -> list[Any]:
    return [int(row.status) if f == "status" else getattr(row, f) for f in ROW_FIELDS]


def row_from_wire(values: list[Any], row: HbPathRow) -> None:
    for name, value in zip(ROW_FIELDS, values):
        setattr(row, name, type(getattr(row, name))(value))


def local_to_wire(local: LocalView, aliases: list[tuple[str, int, str]]) -> dict[str, Any]:
    """What to advertise, plus (address, prefix length, interface) of every alias held:
    what the heartbeat process removes if the daemon stops answering."""
    return {"status": int(local.status), "flags": int(local.flags), "generation": local.generation,
            "aliases": list(local.aliases), "held": [list(a) for a in aliases], "config": list(local.config),
            "public": list(local.public)}


def local_from_wire(d: dict[str, Any]) -> tuple[LocalView, list[tuple[str, int, str]]]:
    config = d.get("config") or (0, "", 0)
    public = d.get("public") or (0, 0, 0)
    return (LocalView(HeadStatus(d["status"]), Flag(d["flags"]), d["generation"], tuple(d["aliases"]),
                      (int(config[0]), str(config[1]), int(config[2])), (int(public[0]), int(public[1]),
                                                                         int(public[2]))),
            [(str(a), int(p), str(i)) for a, p, i in d["held"]])


def settings_to_wire(s: HbSettings) -> dict[str, Any]:
    return asdict(s)


def settings_from_wire(d: dict[str, Any]) -> HbSettings:
    return HbSettings(**d)
