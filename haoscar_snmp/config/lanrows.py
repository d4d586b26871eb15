"""The LAN interfaces the poller watches, as rows: [[interfaces]], [[nodes]] and the heads.

Three places name a watched interface, and each row is one (node, LAN) pair:

* `[[interfaces]]` rows, one each, with their Linux interface name;
* `[[nodes]]` entries, one row per address given (`lan_a`, `lan_b`), without an interface
  name (the poller pings the address), so a 500-node cluster is 500 short entries;
* the heads: each head's `lan_a` / `lan_b` address from `[[heads]]` is a row of node =
  the head's name. An `[[interfaces]]` row for the same head and LAN is the same
  interface: it lends its name, and must not give a different address.

`expand` turns the three into rows and says what conflicts (one place too many for a
(node, LAN) pair, an address used twice), each problem at the key that caused it; the
cross-field rules report them and `watched_interfaces(config)` gives the rows.

`reindex` keeps haoscarLanIfTable's row indexes stable across reloads: a row that stays
keeps its index, a new row gets a fresh one, and an index is not given twice in a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Iterable, Mapping, Protocol, Sequence

from haoscar_snmp.config.errors import Issue, Loc, format_loc
from haoscar_snmp.config.schema_cluster import HeadConfig, InterfaceConfig, NodeConfig
from haoscar_snmp.core.state import Lan

IfKey = tuple[str, Lan]          # (node, LAN): one watched interface, one haoscarLanIfTable row
PRIVATE = (Lan.LAN_A, Lan.LAN_B)
MAX_ROWS = 65535                 # haoscarLanIfIndex is 1..65535


class Tables(Protocol):
    """The tables `watched_interfaces` reads. `Config` has them; it is not named here
    because the rules that `Config` runs use this module (schema.py imports rules.py)."""

    @property
    def heads(self) -> Sequence[HeadConfig]: ...
    @property
    def interfaces(self) -> Sequence[InterfaceConfig]: ...
    @property
    def nodes(self) -> Sequence[NodeConfig]: ...


@dataclass(frozen=True)
class WatchedInterface:
    """One interface the LAN poller watches; `loc` is the key it comes from."""

    node: str
    lan: Lan
    address: IPv4Address | IPv6Address | None
    name: str                    # Linux interface name; "" when not given ([[nodes]], heads)
    loc: Loc

    @property
    def key(self) -> IfKey:
        return (self.node, self.lan)


def watched_interfaces(config: Tables) -> list[WatchedInterface]:
    """Every interface the LAN poller watches: the heads' lan_a / lan_b, [[interfaces]]
    and [[nodes]], one row per node and LAN, of a configuration the rules accepted."""
    rows, issues = expand(config.heads, config.interfaces, config.nodes)
    assert not issues, "rules.check refuses a configuration whose rows conflict"
    return rows


def expand(heads: Sequence[HeadConfig | None], interfaces: Sequence[InterfaceConfig | None],
           nodes: Sequence[NodeConfig | None]) -> tuple[list[WatchedInterface], list[Issue]]:
    """The watched rows (heads, then [[interfaces]], then [[nodes]], in file order) and the
    conflicts between them. Rows that failed their own validation are None and skipped."""
    issues: list[Issue] = []
    rows: dict[IfKey, WatchedInterface] = {}
    head_names = {head.name for head in heads if head is not None}

    for i, head in enumerate(heads):
        for lan in PRIVATE if head is not None else ():
            address = getattr(head, lan.key)
            if address is not None:
                rows[(head.name, lan)] = WatchedInterface(head.name, lan, address, "", ("heads", i, lan.key))

    for i, iface in enumerate(interfaces):
        if iface is None:
            continue
        key = (iface.node, iface.lan)
        earlier = rows.get(key)
        if earlier is None:
            rows[key] = WatchedInterface(iface.node, iface.lan, iface.address, iface.name, ("interfaces", i))
        elif earlier.loc[0] == "heads":
            # The head's own interface on that LAN, named here.
            if iface.address is not None and iface.address != earlier.address:
                issues.append((("interfaces", i, "address"),
                               f"{iface.address} is not {format_loc(earlier.loc)} ({earlier.address}): "
                               f"a head's private interface is pinged at its [[heads]] address"))
            rows[key] = WatchedInterface(iface.node, iface.lan, earlier.address, iface.name, ("interfaces", i))
        else:
            issues.append((("interfaces", i, "lan"),
                           f"{iface.node} already has a {iface.lan.key} interface ({format_loc(earlier.loc)}); "
                           f"the poller watches one per node and LAN"))

    first_node: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node is None:
            continue
        if node.name in head_names:
            issues.append((("nodes", i, "name"), f"{node.name} is a [[heads]] name: a head's lan_a and lan_b "
                                                 f"are watched from [[heads]]"))
            continue
        if node.name in first_node:
            issues.append((("nodes", i, "name"),
                           f"duplicate node name {node.name} (also nodes[{first_node[node.name]}])"))
            continue
        first_node[node.name] = i
        for lan in PRIVATE:
            address = getattr(node, lan.key)
            if address is None:
                continue
            earlier = rows.get((node.name, lan))
            if earlier is not None:
                issues.append((("nodes", i, lan.key),
                               f"{node.name} on {lan.key} is also {format_loc(earlier.loc)}: "
                               f"give each interface once, in [[nodes]] or in [[interfaces]]"))
                continue
            rows[(node.name, lan)] = WatchedInterface(node.name, lan, address, "", ("nodes", i, lan.key))

    issues += _shared_addresses(rows.values())
    if len(rows) > MAX_ROWS:
        issues.append((("nodes",), f"{len(rows)} LAN interfaces to watch; haoscarLanIfTable holds "
                                   f"at most {MAX_ROWS}"))
    return list(rows.values()), issues


def _shared_addresses(rows: Iterable[WatchedInterface]) -> list[Issue]:
    """An address watched twice is almost always a copy-and-paste slip in a long list."""
    issues: list[Issue] = []
    first: dict[IPv4Address | IPv6Address, WatchedInterface] = {}
    for row in rows:
        if row.address is None:
            continue
        earlier = first.setdefault(row.address, row)
        if earlier is not row:
            loc = row.loc if row.loc[0] != "interfaces" else row.loc + ("address",)
            issues.append((loc, f"address {row.address} is also {format_loc(earlier.loc)} "
                                f"({earlier.node} on {earlier.lan.key})"))
    return issues


# ---------------------------------------------------------------------------------------
# Row indexes


@dataclass(frozen=True)
class RowIndexes:
    """Which haoscarLanIfTable row each watched interface is, and the next fresh index.

    Kept by whoever mirrors the configuration into the MIB, from one reload to the next.
    """

    rows: Mapping[IfKey, int] = field(default_factory=dict)
    next_index: int = 1


def reindex(previous: RowIndexes, keys: Iterable[IfKey]) -> RowIndexes:
    """Indexes for `keys` (the new configuration's rows, in order).

    A row that was there keeps its index; a new row gets the next fresh one, in order, so
    an NMS never sees an index that meant another interface earlier in the run. Only
    after all 65,535 indexes were handed out in one run is one reused (the smallest not
    in use: the configuration holds at most 65,535 rows, so there always is one).
    """
    wanted = list(dict.fromkeys(keys))
    rows = {key: previous.rows[key] for key in wanted if key in previous.rows}
    next_index = max(previous.next_index, max(previous.rows.values(), default=0) + 1)
    taken = set(rows.values())
    spare = 1
    for key in wanted:
        if key in rows:
            continue
        if next_index <= MAX_ROWS:
            rows[key] = next_index
            next_index += 1
        else:
            while spare in taken:
                spare += 1
            rows[key] = spare
        taken.add(rows[key])
    return RowIndexes(rows, next_index)
