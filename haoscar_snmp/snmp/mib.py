"""HAOSCAR-MIB as data: every object's OID, base type, access, ranges, sizes and enums.

Loaded from the JSON that `mibgen` compiles from mibs/HAOSCAR-MIB.txt, so the agent's
types and constraints cannot drift from the MIB text. SET validation reads its rules
from here; nothing in the agent hard-codes a range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

OID = tuple[int, ...]

# Standard textual conventions the MIB imports, reduced to what validation needs.
_STD_TCS: dict[str, dict[str, Any]] = {
    "DisplayString": {"base": "OctetString", "sizes": [(0, 255)], "display": True},
    "DateAndTime": {"base": "OctetString", "sizes": [(8, 8), (11, 11)]},
    "TruthValue": {"base": "Integer32", "enums": {"true": 1, "false": 2}},
    "RowStatus": {"base": "Integer32", "enums": {
        "active": 1, "notInService": 2, "notReady": 3,
        "createAndGo": 4, "createAndWait": 5, "destroy": 6}},
}
_BASE = {
    "INTEGER": "Integer32", "Integer32": "Integer32", "Unsigned32": "Unsigned32",
    "Gauge32": "Gauge32", "Counter32": "Counter32", "Counter64": "Counter64",
    "TimeTicks": "TimeTicks", "OCTET STRING": "OctetString", "IpAddress": "IpAddress",
    "OBJECT IDENTIFIER": "ObjectIdentifier",
}


def parse_oid(text: str) -> OID:
    return tuple(int(part) for part in text.strip(".").split("."))


@dataclass(frozen=True)
class MibObject:
    """One OBJECT-TYPE (or NOTIFICATION-TYPE) of the MIB."""

    name: str
    oid: OID
    node: str            # scalar | table | row | column | notification
    base: str = ""       # Integer32, Unsigned32, OctetString, ... ("" for table/row)
    tc: str = ""         # textual convention name, if any
    access: str = ""     # read-only | read-write | read-create | not-accessible | accessible-for-notify
    ranges: tuple[tuple[int, int], ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    enums: dict[str, int] = field(default_factory=dict)
    display: bool = False  # DisplayString: printable text only
    default: Any = None
    indices: tuple[str, ...] = ()   # rows: index column names
    objects: tuple[str, ...] = ()   # notifications: var-bind object names
    units: str = ""
    description: str = ""   # the MIB's DESCRIPTION text (what the metrics' HELP lines show)

    @property
    def writable(self) -> bool:
        return self.access in ("read-write", "read-create")

    @property
    def readable(self) -> bool:
        return self.access in ("read-only", "read-write", "read-create")


class MibModel:
    """The whole module: objects by name and by OID."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.objects: dict[str, MibObject] = {}
        self.identities: dict[str, OID] = {}  # OBJECT-IDENTITY / OBJECT IDENTIFIER nodes
        self.root: OID = ()
        tcs = dict(_STD_TCS)
        for name, item in doc.items():
            if isinstance(item, dict) and item.get("class") == "textualconvention":
                tcs[name] = _syntax_rules(item.get("type", {}), tcs)
        for name, item in doc.items():
            if not isinstance(item, dict):
                continue
            cls = item.get("class")
            if cls == "moduleidentity":
                self.root = parse_oid(item["oid"])
            elif cls == "objectidentity":
                self.identities[name] = parse_oid(item["oid"])
            elif cls == "objecttype":
                self.objects[name] = _object(name, item, tcs)
            elif cls == "notificationtype":
                self.objects[name] = MibObject(
                    name=name, oid=parse_oid(item["oid"]), node="notification",
                    objects=tuple(o["object"] for o in item.get("objects", [])),
                )
        self.by_oid: dict[OID, MibObject] = {o.oid: o for o in self.objects.values()}

    def __getitem__(self, name: str) -> MibObject:
        return self.objects[name]

    def columns(self, row_name: str) -> list[MibObject]:
        row = self.objects[row_name]
        cols = [o for o in self.objects.values()
                if o.node == "column" and o.oid[:-1] == row.oid]
        return sorted(cols, key=lambda o: o.oid)

    def row_of(self, column: MibObject) -> MibObject:
        return self.by_oid[column.oid[:-1]]

    def notification(self, name: str) -> MibObject:
        obj = self.objects[name]
        if obj.node != "notification":
            raise KeyError(f"{name} is not a notification")
        return obj

    @classmethod
    def load(cls) -> "MibModel":
        text = resources.files("haoscar_snmp.snmp").joinpath("mibdata/HAOSCAR-MIB.json").read_text()
        return cls(json.loads(text))


def _syntax_rules(syntax: dict[str, Any], tcs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Reduce a pysmi syntax block to base type + constraints, resolving TCs."""
    type_name = syntax.get("type", "")
    rules: dict[str, Any] = dict(tcs.get(type_name, {}))
    if not rules:
        rules = {"base": _BASE.get(type_name, type_name)}
    else:
        rules["tc"] = type_name
    constraints = syntax.get("constraints", {})
    if "range" in constraints:
        rules["ranges"] = [(r["min"], r["max"]) for r in constraints["range"]]
    if "size" in constraints:
        rules["sizes"] = [(r["min"], r["max"]) for r in constraints["size"]]
    if "enumeration" in constraints:
        rules["enums"] = dict(constraints["enumeration"])
    return rules


def _object(name: str, item: dict[str, Any], tcs: dict[str, dict[str, Any]]) -> MibObject:
    node = item.get("nodetype", "scalar")
    rules = _syntax_rules(item["syntax"], tcs) if "syntax" in item and node in ("scalar", "column") else {}
    default = None
    if "default" in item:
        raw = item["default"].get("default", {})
        default = raw.get("value")
    return MibObject(
        name=name,
        oid=parse_oid(item["oid"]),
        node=node,
        base=rules.get("base", ""),
        tc=rules.get("tc", ""),
        access=item.get("maxaccess", ""),
        ranges=tuple(tuple(r) for r in rules.get("ranges", ())),
        sizes=tuple(tuple(s) for s in rules.get("sizes", ())),
        enums=rules.get("enums", {}),
        display=bool(rules.get("display")),
        default=default,
        indices=tuple(i["object"] for i in item.get("indices", [])),
        units=item.get("units", ""),
        description=" ".join(item.get("description", "").split()),
    )
