"""Mirror the effective configuration into the state model (config fields only).

Rows are matched by their MIB index: a row whose configuration changed keeps its runtime
counters and history (reload is a diff); only rows that left the
configuration are removed.
"""

from __future__ import annotations

from typing import Any

from haoscar_snmp.config.lanrows import RowIndexes, reindex, watched_interfaces
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import (
    AliasRow,
    CheckKind,
    HeadRole,
    HeadRow,
    LanIfRow,
    RowStatus,
    ServiceRow,
    State,
)

from .mibmap import CHECK_TYPE_VALUES, RECOVERY_VALUES, SERVICE_KEYS, SERVICES


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def apply_to_state(config: Config, state: State,
                   pending: dict[str, dict[int, dict[str, Any]]] | None = None) -> None:
    """Write the config-owned fields of every table; runtime fields stay untouched."""
    pending = pending or {}
    state.cluster.name = config.cluster.name
    state.cluster.local_head = config.cluster.local_head

    for head in config.heads:
        n = config.head_index(head.name)
        row = state.heads.get((n,))
        if row is None or row.name != head.name:
            row = HeadRow(name=head.name, preferred_role=HeadRole.PRIMARY)
            state.heads.put((n,), row)
        row.preferred_role = HeadRole.PRIMARY if head.preferred_role == "primary" else HeadRole.STANDBY
        row.lan_a, row.lan_b, row.public = _text(head.lan_a), _text(head.lan_b), _text(head.public)
        row.is_local = head.name == config.cluster.local_head

    # haoscarLanIfTable: one row per watched (node, LAN); a row that stays keeps its index,
    # a new one gets an index never given before in this run.
    watched = watched_interfaces(config)
    previous = RowIndexes({(row.node, row.lan): index for (index,), row in state.lan_ifs.items()},
                          state.lan_if_next_index)
    indexes = reindex(previous, [w.key for w in watched])
    state.lan_if_next_index = indexes.next_index
    for w in watched:
        key = (indexes.rows[w.key],)
        row = state.lan_ifs.get(key)
        if row is None or (row.node, row.lan) != w.key:
            row = LanIfRow(node=w.node, lan=w.lan, name=w.name)
            state.lan_ifs.put(key, row)
        row.name, row.address = w.name, _text(w.address)
    wanted_ifs = {(index,) for index in indexes.rows.values()}
    for key in [k for k in state.lan_ifs.keys() if k not in wanted_ifs]:
        state.lan_ifs.remove(key)

    wanted = set()
    for svc in config.services:
        wanted.add((svc.index,))
        _upsert(state.services, (svc.index,), ServiceRow, _service_fields(
            {key: getattr(svc, key) for key in SERVICE_KEYS}, config, svc.row_status))
    for index, draft in pending.get("services", {}).items():
        wanted.add((index,))
        _upsert(state.services, (index,), ServiceRow, _service_fields(
            {**SERVICES.defaults, "name": "", "check": "", **draft}, config, RowStatus.NOT_READY))
    for key in [k for k in state.services.keys() if k not in wanted]:
        state.services.remove(key)

    wanted = set()
    for alias in config.aliases:
        wanted.add((alias.index,))
        _upsert(state.aliases, (alias.index,), AliasRow, dict(
            address=str(alias.address), prefix_length=alias.prefix_length,
            interface=alias.interface, row_status=alias.row_status))
    for index, draft in pending.get("aliases", {}).items():
        wanted.add((index,))
        _upsert(state.aliases, (index,), AliasRow, dict(
            address=draft.get("address") or "", prefix_length=draft.get("prefix_length") or 24,
            interface=draft.get("interface") or "", row_status=RowStatus.NOT_READY))
    for key in [k for k in state.aliases.keys() if k not in wanted]:
        state.aliases.remove(key)


def _upsert(table: Any, key: tuple[int], cls: type, fields: dict[str, Any]) -> None:
    row = table.get(key)
    if row is None:
        table.put(key, cls(**fields))
        return
    for name, value in fields.items():
        setattr(row, name, value)


def _service_fields(row: dict[str, Any], config: Config, row_status: RowStatus) -> dict[str, Any]:
    """A service's configured columns as the MIB shows them (file row or pending draft)."""
    fields = {key: row[key] for key in SERVICE_KEYS}
    fields.update(
        name=row["name"] or "", check=row["check"] or "", restart=row["restart"] or "",
        retry_threshold=row["retry_threshold"] or config.timing.service_retry_threshold,
        recovery=RECOVERY_VALUES.get(str(row["recovery"]), 1),
        check_type=CHECK_TYPE_VALUES.get(str(row["check_type"]), CheckKind.COMMAND),
        row_status=row_status)
    return fields
