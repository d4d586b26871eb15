"""Every writable HAOSCAR-MIB object states its scope, and the scope is the configuration's.

A writable object's DESCRIPTION says "Cluster-wide" exactly when the configuration key it
sets is cluster-wide (haoscar_snmp/config/cluster.py `scope()`), and "Per-head" otherwise
(the operator-action objects, which set no configuration key, are per-head). The key of
an object comes from the configuration domain's map (fcaps/configuration/mibmap.py).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.cluster import Scope, scope
from haoscar_snmp.snmp.mib import MibModel

MIB = MibModel.load()
WRITABLE = sorted((o for o in MIB.objects.values() if o.node in ("scalar", "column") and o.writable),
                  key=lambda o: o.oid)

# Writable scalars whose overrides path is not the configuration key itself.
SCALAR_KEYS = {("notify_email",): "notify.email.to"}


def descriptions() -> dict[str, str]:
    text = resources.files("haoscar_snmp.snmp").joinpath("mibdata/HAOSCAR-MIB.json").read_text()
    return {name: item.get("description", "") for name, item in json.loads(text).items()
            if isinstance(item, dict)}


DESCRIPTIONS = descriptions()


def config_key(name: str) -> str | None:
    """The dotted configuration key a writable object sets; None for an operator action."""
    if name in CONFIG_MAP.actions:
        return None
    if name in CONFIG_MAP.scalars:
        path = CONFIG_MAP.scalars[name].path
        if path[0] == "timing":
            return ".".join(path)
        return SCALAR_KEYS[path]              # KeyError: a new scalar needs its key here
    for layout in CONFIG_MAP.tables.values():
        if name == layout.row_status:         # creating or destroying a row: the table
            return layout.key
        if name in layout.columns:
            return f"{layout.key}.{layout.columns[name]}"
    raise KeyError(f"{name} is writable but not in CONFIG_MAP")


def test_there_are_writable_objects_of_both_scopes() -> None:
    scopes = {scope(key) if key else Scope.PER_HEAD for key in map(config_key, (o.name for o in WRITABLE))}
    assert scopes == {Scope.CLUSTER_WIDE, Scope.PER_HEAD}


@pytest.mark.parametrize("name", [o.name for o in WRITABLE])
def test_the_description_states_the_scope_of_the_key(name: str) -> None:
    key = config_key(name)
    expected = scope(key) if key is not None else Scope.PER_HEAD
    text = DESCRIPTIONS[name]
    says_cluster_wide, says_per_head = "Cluster-wide" in text, "Per-head" in text
    assert says_cluster_wide == (expected is Scope.CLUSTER_WIDE), (name, key, expected)
    assert says_per_head == (expected is Scope.PER_HEAD), (name, key, expected)


def test_the_timing_scalars_map_to_timing_keys() -> None:
    from fcaps.configuration.mibmap import TIMING_SCALARS
    for name, key in TIMING_SCALARS.items():
        assert config_key(name) == f"timing.{key}"
    assert config_key("haoscarNotifyEmail") == "notify.email.to"
    assert config_key("haoscarServiceCheck") == "services.check"
    assert config_key("haoscarAliasInterface") == "aliases.interface"
    assert config_key("haoscarControlAction") is None
