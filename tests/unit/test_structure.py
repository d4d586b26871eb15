"""The direction of imports, checked on the source: plumbing never reaches into the domain.

    haoscar_snmp.core     imports nothing of the project but itself
    haoscar_snmp.config   may import core, never snmp
    haoscar_snmp.snmp     may import core and config, never fcaps
    fcaps                 may import core and config, never snmp (the SNMP layer is
                          plumbing; the domain hands it maps and callbacks instead)
    haoscar_snmp.views    reads: may import core, config, the alarm enumerations
                          (fcaps.fault.alarms) and the MIB model (haoscar_snmp.snmp.mib,
                          for the metrics' HELP text); nothing but the composers imports
                          a view (VIEWS_MAY_USE)
    haoscar_snmp.daemon, haoscar_snmp.assembly (the daemon's areas, built one by one)
                          and haoscar_snmp.__main__ compose both sides.

Inside fcaps, each area and each fault subsystem names what it may use of the others
(MAY_USE): the fault area's top-level modules (the alarm table, the event history, the
mailer, the alias operations) serve its subsystems and use none of them; what every area
needs (event predicates, key fingerprints) lives in haoscar_snmp.core.

Test doubles live in tests/, not in the packages.

No part is given a collaborator after it was built (`test_no_part_is_wired_after_it_was_built`):
outside its own methods, code assigns only to the fields of records.

And the heartbeat process stays small: importing it loads no SNMP, configuration schema
or scheduler code (it must start fast and keep a small heap). The daemon itself loads
no optional part at import (the web panel, AgentX, the SMTP client) and nothing it never
uses (pysnmp's MIB compiler): those come with the configuration that asks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from sourcetree import REPO, modules

COMPOSERS = {"haoscar_snmp.daemon", "haoscar_snmp.assembly", "haoscar_snmp.__main__"}
FORBIDDEN = {
    "haoscar_snmp.core": ("haoscar_snmp.config", "haoscar_snmp.snmp", "fcaps", "haoscar_snmp.views"),
    "haoscar_snmp.config": ("haoscar_snmp.snmp", "fcaps", "haoscar_snmp.views"),
    "haoscar_snmp.snmp": ("fcaps", "haoscar_snmp.views"),
    "fcaps": ("haoscar_snmp.snmp", "haoscar_snmp.views"),
}
# The operator views (console, status socket, metrics) only read the state: they may use
# the state model and the rest of core, the configuration, the alarm table's enumerations
# (to name a probable cause) and the MIB model (its descriptions become the metrics' HELP
# text). Anything else (a job, the SNMP agent, the settings exchange) stays out of reach,
# so that a view cannot write what it shows. The web panel writes only through the
# configuration store the daemon hands it (web/writes.py), never by importing a writer.
VIEWS_MAY_USE = ("haoscar_snmp.core", "haoscar_snmp.config", "haoscar_snmp.views",
                 "fcaps.fault.alarms", "haoscar_snmp.snmp.mib")
MAY_USE = {
    "fcaps.configuration": ("fcaps.fault.alarms",),
    "fcaps.performance": (),
    "fcaps.accounting": ("fcaps.fault.alarms",),
    "fcaps.security": ("fcaps.fault.alarms",),
    "fcaps.fault": (),
    "fcaps.fault.heartbeat": ("fcaps.fault.alarms", "fcaps.fault.takeover"),
    "fcaps.fault.lan": ("fcaps.fault.alarms",),
    # The role's rows are written from Pacemaker's placement in the corosync mode
    # (role/placed.py): it reads the cluster's records, not its sources.
    "fcaps.fault.role": ("fcaps.fault.alarms", "fcaps.fault.takeover", "fcaps.fault.heartbeat.proto",
                         "fcaps.fault.heartbeat.peer", "fcaps.fault.lan.icmp", "fcaps.fault.cluster.model"),
    "fcaps.fault.services": ("fcaps.fault.alarms", "fcaps.fault.heartbeat.proto"),
    # The cluster past two heads reads Corosync and Pacemaker; it raises alarms and may
    # look at the alias operations (which address is on which interface), nothing else.
    "fcaps.fault.cluster": ("fcaps.fault.alarms", "fcaps.fault.takeover"),
}




def imports_of(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                out.add(node.module)
    return out


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("name, path", sorted(modules().items()))
def test_imports_go_one_way(name: str, path: Path) -> None:
    if any(under(name, composer) for composer in COMPOSERS):
        return
    for layer, banned in FORBIDDEN.items():
        if under(name, layer):
            wrong = sorted(i for i in imports_of(name, path) if any(under(i, b) for b in banned))
            assert wrong == [], f"{name} must not import {wrong}"


def home_of(name: str) -> str | None:
    """The MAY_USE entry a module belongs to: the longest that contains it."""
    homes = [home for home in MAY_USE if under(name, home)]
    return max(homes, key=len) if homes else None


@pytest.mark.parametrize("name, path", sorted((n, p) for n, p in modules().items() if under(n, "fcaps")))
def test_areas_and_fault_subsystems_use_only_what_they_name(name: str, path: Path) -> None:
    home = home_of(name)
    if home is None:
        return
    mine = home if home != "fcaps.fault" else name     # a top-level fault module is its own home
    wrong = sorted(i for i in imports_of(name, path) if under(i, "fcaps") and not under(i, mine)
                   and not any(under(i, allowed) for allowed in MAY_USE[home])
                   and i not in ("fcaps", "fcaps.fault"))
    assert wrong == [], f"{name} must not import {wrong}"


@pytest.mark.parametrize("name, path", sorted((n, p) for n, p in modules().items()
                                              if under(n, "haoscar_snmp.views")))
def test_views_use_only_what_they_may_read(name: str, path: Path) -> None:
    project = {i for i in imports_of(name, path) if under(i, "haoscar_snmp") or under(i, "fcaps")}
    project.discard("haoscar_snmp")     # the package itself: its __version__
    wrong = sorted(i for i in project if not any(under(i, allowed) for allowed in VIEWS_MAY_USE))
    assert wrong == [], f"{name} must not import {wrong}"


def test_every_fcaps_package_has_a_rule() -> None:
    packages = {n for n, p in modules().items() if under(n, "fcaps") and p.name == "__init__.py"}
    assert sorted(p for p in packages if p not in MAY_USE and p != "fcaps") == []


def test_the_heartbeat_process_imports_nothing_heavy() -> None:
    code = ("import sys, fcaps.fault.heartbeat.child\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pysnmp', 'pyasn1', 'pydantic', 'apscheduler', 'pysmi') or "
            "m.startswith(('haoscar_snmp.config', 'haoscar_snmp.snmp')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, timeout=60).stdout.strip()
    assert out == ""


# What the daemon loads only when a configuration uses it, or never: the web panel and
# aiohttp ([web]), the AgentX subagent ([snmp.agentx]), the SMTP client (at the first
# mail), and pysnmp's MIB compiler
# pysmi with its parser, templates and URL readers (snmp/nocompiler.py). Each costs
# resident memory in every daemon that does not need it (docs/benchmarks.md).
LOADED_ONLY_WHEN_USED = ("aiohttp", "aiosmtplib", "pysmi", "lark", "jinja2", "requests",
                         "urllib3", "haoscar_snmp.views.web", "haoscar_snmp.snmp.agentx")


def test_the_daemon_imports_only_what_every_configuration_uses() -> None:
    code = ("import sys, haoscar_snmp.__main__, haoscar_snmp.daemon\n"
            f"heavy = {LOADED_ONLY_WHEN_USED!r}\n"
            "print(' '.join(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, timeout=60).stdout.strip()
    assert out == ""


def test_fakes_live_in_the_tests() -> None:
    """Production modules hold no test doubles: a fake shipped in the package can be wired
    in by mistake, and it hides which code only the tests need."""
    shipped = sorted(f"{name}.{node.name}" for name, path in modules().items()
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.ClassDef) and node.name.startswith("Fake"))
    assert shipped == []


# The fast read path exists to answer without building pyasn1 objects: its codec, request
# decoder, value encoders, reader and SNMPv3 message code import neither pysnmp nor
# pyasn1. Only `access` asks pysnmp's VACM (once per community or user) and reads the
# users' localised keys from pysnmp's USM tables, so that the access rules and the keys
# are pysnmp's own.
FASTPATH_MAY_USE_PYSNMP = {"haoscar_snmp.snmp.fastpath.access"}


@pytest.mark.parametrize("name, path", sorted((n, p) for n, p in modules().items()
                                              if under(n, "haoscar_snmp.snmp.fastpath")))
def test_the_fast_path_builds_no_pyasn1_objects(name: str, path: Path) -> None:
    if name in FASTPATH_MAY_USE_PYSNMP:
        return
    wrong = sorted(i for i in imports_of(name, path) if under(i, "pysnmp") or under(i, "pyasn1"))
    assert wrong == [], f"{name} must not import {wrong}"


# Attributes that may be assigned on another object although no record has a field of
# that name, and why each is data, not a collaborator.
ASSIGNABLE = {
    "bumped_epoch": "the heartbeat session's flag that its epoch was raised; its owner lowers it once persisted",
}


def records_and_components() -> tuple[set[str], set[str]]:
    """The fields of the project's records (dataclasses, classes with __slots__), and the
    names of its other public classes (components, protocols)."""
    fields: set[str] = set()
    components: set[str] = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            slots = [st for st in node.body if isinstance(st, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in st.targets)]
            if any("dataclass" in ast.unparse(d) for d in node.decorator_list):
                fields |= {st.target.id for st in node.body
                           if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)}
            elif slots:
                fields |= {e.value for st in slots for e in ast.walk(st.value)
                           if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            elif not node.name.startswith("_"):    # a module's private class is its own inside
                components.add(node.name)
    return fields, components


def classes_named(annotation: ast.AST | None, components: set[str]) -> set[str]:
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval")
    return {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name) and n.id in components}


def late_wiring(path: Path, fields: set[str], components: set[str]) -> list[str]:
    """Every assignment `name.attr = ...` (name not `self`) in a module whose receiver is
    a component (a parameter typed so, or a local built from its class in the same
    function), or whose attribute is no record's field."""
    found = []
    for func in ast.walk(ast.parse(path.read_text())):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = func.args.posonlyargs + func.args.args + func.args.kwonlyargs
        typed = {a.arg: classes_named(a.annotation, components) for a in args}
        for node in ast.walk(func):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id in components):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        typed[target.id] = {node.value.func.id}
        for node in ast.walk(func):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            flat = [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
            for target in flat:
                if not isinstance(target, ast.Attribute):
                    continue
                receiver = target.value
                if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                    continue
                kinds = typed.get(receiver.id, set()) if isinstance(receiver, ast.Name) else set()
                if kinds or (target.attr not in fields and target.attr not in ASSIGNABLE):
                    found.append(f"{path.name}:{target.lineno} {ast.unparse(target)}"
                                 + (f" (a {', '.join(sorted(kinds))})" if kinds else ""))
    return found


def test_no_part_is_wired_after_it_was_built() -> None:
    """A component gets its collaborators through its constructor, never by an
    assignment from outside after it was built (`x.on_y = ...`, `x.links = ...`): such
    late binding hides what a part needs, lets a part run half-wired, and turns a cycle
    between two parts into a secret. Outside a class's own methods, the domain and the
    composition root assign only to the fields of records (dataclasses, slotted rows:
    the state's rows and counters, whose writers test_writers names). Where two parts
    would need each other, a small part that both use is built first (the settings
    channel, the peer agreement). A list of listeners that grows (`on_change.append`,
    `bus.subscribe`) is an event mechanism, not late binding, and is not an assignment."""
    fields, components = records_and_components()
    checked = {n: p for n, p in modules().items()
               if under(n, "fcaps") or any(under(n, c) for c in COMPOSERS)}
    found = [f"{name}: {hit}" for name, path in sorted(checked.items())
             for hit in late_wiring(path, fields, components)]
    assert found == []
