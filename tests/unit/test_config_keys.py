"""config.keys: each key's scope and reload kind, declared next to its field and walked
from the schema; and the configuration package's imports, which form no circle."""

from __future__ import annotations

import ast
from typing import Annotated

import pytest
from pydantic import BaseModel
from sourcetree import modules
from test_config_diff import _field_keys

from haoscar_snmp.config import values
from haoscar_snmp.config.keys import (
    CLUSTER_LIVE,
    CLUSTER_RESTART,
    PER_HEAD_LIVE,
    PER_HEAD_RESTART,
    Key,
    Reload,
    Scope,
    classification,
    model_in,
)
from haoscar_snmp.config.schema import KEYS, Config, TimingConfig
from haoscar_snmp.config.values import Endpoint, FrozenModel


def test_the_schema_classifies_every_key() -> None:
    assert KEYS.unclassified() == []
    # The walk sees every leaf that an independent walk of the fields sees.
    assert {key for key in _field_keys(Config) if KEYS.scope(key) is None or KEYS.reload(key) is None} == set()


def test_a_new_field_without_a_classification_is_found() -> None:
    class GrownTiming(TimingConfig):
        new_timing_ms: int = 0

    class Grown(FrozenModel):
        timing: GrownTiming = GrownTiming()
        flag: bool = False
        peer: Endpoint | None = None

    walked = classification(Grown)
    assert walked.unclassified() == ["timing.new_timing_ms", "flag", "peer.host", "peer.port"]
    assert walked.scope("timing.new_timing_ms") is None and walked.reload("timing.new_timing_ms") is None
    assert walked.scope("timing.garp_count") is Scope.CLUSTER_WIDE


def test_a_key_is_classified_once() -> None:
    class Twice(FrozenModel):
        x: Annotated[int, CLUSTER_LIVE, PER_HEAD_LIVE] = 0

    class WholeAndFields(FrozenModel):
        timing: Annotated[TimingConfig, CLUSTER_LIVE] = TimingConfig()

    with pytest.raises(TypeError, match="x: classified 2 times"):
        classification(Twice)
    with pytest.raises(TypeError, match="timing: classified as a whole and field by field"):
        classification(WholeAndFields)


def test_only_value_types_are_classified_as_a_whole() -> None:
    """A section or a table is never one key: its fields are, so a new column is decided
    on its own. Only value models (values.py, such as Endpoint) are classified whole."""
    whole = []

    def walk(model: type[BaseModel]) -> None:
        for info in model.model_fields.values():
            nested = model_in(info.annotation)
            if nested is None:
                continue
            if any(isinstance(item, Key) for item in info.metadata):
                whole.append(nested)
            else:
                walk(nested)

    walk(Config)
    assert whole and all(model.__module__ == values.__name__ for model in whole)


@pytest.mark.parametrize("key, scope, reload", [
    ("timing.garp_count", Scope.CLUSTER_WIDE, Reload.LIVE),
    ("services[pbs].check", Scope.CLUSTER_WIDE, Reload.LIVE),
    ("services", Scope.CLUSTER_WIDE, Reload.LIVE),                  # a table: its columns'
    ("heads[head2]", Scope.CLUSTER_WIDE, Reload.RESTART),           # a row
    ("snmp.listen.port", Scope.PER_HEAD, Reload.RESTART),           # inside a value type
    ("snmp.targets[trapd].address.port", Scope.PER_HEAD, Reload.LIVE),
    ("snmp.communities.name", Scope.PER_HEAD, Reload.LIVE),          # the file's name, not the field's
    ("notify.email.from", Scope.PER_HEAD, Reload.LIVE),
    ("heartbeat.key", Scope.PER_HEAD, Reload.LIVE),                 # FILE_KEYS
    ("heartbeat", None, Reload.RESTART),                            # mixed: port and key_file
    ("failover", None, Reload.LIVE),
    ("colour", None, None),
    ("timingx.garp_count", None, None),
])
def test_lookups(key: str, scope: Scope | None, reload: Reload | None) -> None:
    assert KEYS.scope(key) is scope
    assert KEYS.reload(key) is reload


def test_the_four_kinds_are_used() -> None:
    used = {mark for mark in KEYS.entries.values()}
    assert used == {CLUSTER_LIVE, CLUSTER_RESTART, PER_HEAD_LIVE, PER_HEAD_RESTART}


def test_a_field_keeps_its_type_and_range() -> None:
    # The classification is metadata only: pydantic sees the same type and bounds.
    info = TimingConfig.model_fields["garp_count"]
    assert info.annotation is int and CLUSTER_LIVE in info.metadata
    assert TimingConfig.model_json_schema()["properties"]["garp_count"]["maximum"] == 100
    assert model_in(info.annotation) is None


# -- no import circle in the configuration package ---------------------------------------


CONFIG = "haoscar_snmp.config"
MODULES = modules()


def _config_imports(name: str) -> set[str]:
    """The configuration modules `name` imports, anywhere in it (functions and
    TYPE_CHECKING blocks included). The package's __init__ only re-exports: left out."""
    tree = ast.parse(MODULES[name].read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module if not node.level else f"{CONFIG}.{node.module}"
            out |= {f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                    for alias in node.names}
    return {i for i in out if i.startswith(CONFIG + ".")}


def test_the_configuration_package_has_no_import_circle() -> None:
    names = sorted(n for n in MODULES if n.startswith(CONFIG + "."))
    assert {f"{CONFIG}.{n}" for n in ("schema", "rules", "lanrows", "cluster", "diff", "keys")} <= set(names)
    graph = {name: _config_imports(name) for name in names}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            circles.append(path[path.index(name):] + [name])
            return
        for nxt in sorted(graph.get(name, ())):
            if nxt not in done:
                visit(nxt, path + [name])
        done.add(name)

    done: set[str] = set()
    for name in names:
        visit(name, [])
    assert circles == []
