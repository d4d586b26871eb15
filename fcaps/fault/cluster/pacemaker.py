"""Placement from Pacemaker: what `crm_mon` says of the nodes and the resources.

Two documents make one `Placement`:

* `crm_mon --output-as=xml` (the nodes, the resources as placed, the operation history
  with fail counts), limited to the sections read here so that crm_mon asks no other
  daemon than the CIB manager (no fencing history);
* the resources section of the CIB (`cibadmin --query --scope resources --local`, the
  local CIB manager's copy, no round trip to the DC), for the one configuration value
  crm_mon does not show: the `ip` parameter of an address resource.

Both commands read the CIB from a file instead when `CIB_file` is set, which the tests
use with saved CIBs made by `crm_simulate`.

Rules:

* Unknown is a value, never a guess: a command that fails, times out or prints an
  error document (crm_mon exits 0 and says "Could not connect to the CIB" in its XML)
  gives None. Only a document with its `nodes` section is a placement (crm_mon leaves
  the `resources` section out when none is configured).
* Groups are flattened to their primitives. A clone's instances are rows of their own,
  named `<primitive>:<node>` after the node they run on (an anonymous clone's instances
  have no other stable name: crm_mon lists them all under the primitive's id); a clone
  with no instance running is one row, named after its primitive, `Stopped`.
* A resource's fail count and last result are those of the node it runs on; for a
  stopped resource, of the node with the highest fail count, else of its latest
  operation anywhere.
* Refreshes (`PacemakerSource`) run one at a time: asked for while one runs, one more
  runs after it, never more, so a burst of Pacemaker alerts costs two reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from haoscar_snmp.core.clock import Clock, Timer

from .model import Placement, PlacedNode, Resource

log = logging.getLogger(__name__)

# What crm_mon shows: only the sections read here (the DC, nodes, resources, fail counts
# and the operation history); the fencing history would ask the fencer too.
CRM_MON = ("crm_mon", "--one-shot", "--output-as=xml", "--exclude=all",
           "--include=dc,nodes,resources,failcounts,operations")
CIB_RESOURCES = ("cibadmin", "--query", "--scope", "resources", "--local")
# Agents whose `ip` parameter is an address this head may hold (ocf:heartbeat's).
ADDRESS_AGENTS = ("ocf:heartbeat:IPaddr2", "ocf:heartbeat:IPaddr")
OUTPUT_MAX = 8 << 20            # bytes read from one command; a CIB of thousands of resources fits


class CrmMonError(ValueError):
    """The document is not a placement: crm_mon's error, or not crm_mon's XML at all."""


def _true(value: str | None) -> bool:
    return value == "true"


def address_params(resources_xml: str) -> dict[str, str]:
    """Primitive id -> the `ip` parameter of each address resource in a CIB's resources
    section (or a whole CIB). A primitive made from a template takes the template's
    `ip` unless it sets its own."""
    if not resources_xml.strip():
        return {}
    try:
        root = ET.fromstring(resources_xml)
    except ET.ParseError as err:
        raise CrmMonError(f"the CIB's resources are not XML: {err}") from None
    templates = {t.get("id", ""): t for t in root.iter("template")}
    out: dict[str, str] = {}
    for prim in root.iter("primitive"):
        source = templates.get(prim.get("template", ""), prim)
        agent = f"{source.get('class', '')}:{source.get('provider', '')}:{source.get('type', '')}"
        if agent not in ADDRESS_AGENTS:
            continue
        ip = _param(prim, "ip") or (_param(source, "ip") if source is not prim else "")
        if ip:
            out[prim.get("id", "")] = ip
    return out


def _param(element: ET.Element, name: str) -> str:
    for attrs in element.findall("instance_attributes"):
        for pair in attrs.findall("nvpair"):
            if pair.get("name") == name:
                return pair.get("value", "")
    return ""


@dataclass(frozen=True)
class _Op:
    call: int
    changed: float              # last-rc-change, seconds (0: not given)
    result: str


@dataclass(frozen=True)
class _History:
    fail_count: int
    last: _Op | None


def _rc_change(text: str) -> float:
    """crm_mon's "Tue Dec  8 00:24:19 2026" (local time), as a sortable number."""
    try:
        return time.mktime(time.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y"))
    except ValueError:
        return 0.0


def _histories(root: ET.Element) -> dict[str, dict[str, _History]]:
    """resource id -> node name -> its history there."""
    out: dict[str, dict[str, _History]] = {}
    for node in root.findall("node_history/node"):
        name = node.get("name", "")
        for hist in node.findall("resource_history"):
            ops = [_Op(int(op.get("call", "0") or 0), _rc_change(op.get("last-rc-change", "")),
                       op.get("rc_text", ""))
                   for op in hist.findall("operation_history")]
            last = max(ops, key=lambda op: (op.changed, op.call)) if ops else None
            fails = hist.get("fail-count", "0")
            fail_count = 1_000_000 if fails == "INFINITY" else int(fails or 0)
            out.setdefault(hist.get("id", ""), {})[name] = _History(fail_count, last)
    return out


def parse_placement(mon_xml: str, resources_xml: str = "") -> Placement:
    """One `Placement` from crm_mon's XML and the CIB's resources section; CrmMonError
    when crm_mon's document is an error or not crm_mon's."""
    try:
        root = ET.fromstring(mon_xml)
    except ET.ParseError as err:
        raise CrmMonError(f"crm_mon's output is not XML: {err}") from None
    if root.tag != "pacemaker-result":
        raise CrmMonError(f"not crm_mon's XML: <{root.tag}>")
    status = root.find("status")
    errors = [e.text or "" for e in root.findall("status/errors/error")]
    if status is not None and status.get("code", "0") != "0":
        errors.insert(0, f"code {status.get('code')} ({status.get('message', '')})")
    nodes_el, resources_el = root.find("nodes"), root.find("resources")
    if errors or nodes_el is None:
        raise CrmMonError("crm_mon: " + ("; ".join(errors) or "no nodes section"))
    dc_el = root.find("summary/current_dc")
    dc = dc_el.get("name", "") if dc_el is not None and _true(dc_el.get("present")) else ""
    nodes = tuple(sorted((PlacedNode(
        name=n.get("name", ""), node_id=_int(n.get("id")), online=_true(n.get("online")),
        standby=_true(n.get("standby")), unclean=_true(n.get("unclean")),
        maintenance=_true(n.get("maintenance")), dc=_true(n.get("is_dc")))
        for n in nodes_el.findall("node")), key=lambda n: n.name))
    addresses = address_params(resources_xml)
    histories = _histories(root)
    rows: dict[str, Resource] = {}
    running_clones: set[str] = set()      # primitives of clones with an instance running
    for prim, clone in _primitives(resources_el) if resources_el is not None else ():
        for row in _rows(prim, clone, histories, addresses):
            rows.setdefault(row.resource_id, row)
            if clone and row.node:
                running_clones.add(prim.get("id", ""))
    for rid in running_clones:
        rows.pop(rid, None)
    return Placement(dc=dc, nodes=nodes, resources=tuple(rows[k] for k in sorted(rows)))


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:          # a remote node's id is its name
        return 0


def _primitives(parent: ET.Element, clone: str = "") -> list[tuple[ET.Element, str]]:
    """Every `resource` element under `parent` with the clone it belongs to ("" if none):
    groups opened, clones and bundles' replicas too."""
    out: list[tuple[ET.Element, str]] = []
    for child in parent:
        if child.tag == "resource":
            out.append((child, clone))
        elif child.tag == "group":
            out += _primitives(child, clone)
        elif child.tag == "clone":
            out += _primitives(child, child.get("id", ""))
        elif child.tag == "bundle":
            for replica in child.findall("replica"):
                out += _primitives(replica, clone)
    return out


def _rows(prim: ET.Element, clone: str, histories: dict[str, dict[str, _History]],
          addresses: dict[str, str]) -> list[Resource]:
    rid = prim.get("id", "")
    on = sorted(n.get("name", "") for n in prim.findall("node"))
    if not clone or not on:     # a clone's stopped instance: kept only if none runs (parse_placement)
        return [_resource(prim, rid, on[0] if on else "", histories, addresses)]
    return [_resource(prim, f"{rid}:{node}", node, histories, addresses) for node in on]


def _resource(prim: ET.Element, resource_id: str, node: str,
              histories: dict[str, dict[str, _History]], addresses: dict[str, str]) -> Resource:
    rid = prim.get("id", "")
    per_node = histories.get(rid, {})
    if node:
        hist = per_node.get(node)
    else:
        failing = [h for h in per_node.values() if h.fail_count]
        hist = max(failing, key=lambda h: h.fail_count) if failing else max(
            (h for h in per_node.values() if h.last is not None),
            key=lambda h: (h.last.changed, h.last.call) if h.last else (0.0, 0), default=None)
    return Resource(
        resource_id=resource_id, agent=prim.get("resource_agent", ""),
        role=prim.get("role", ""),
        node=node, failed=_true(prim.get("failed")),
        fail_count=hist.fail_count if hist else 0,
        last_result=hist.last.result if hist and hist.last else "",
        address=addresses.get(rid, ""))


class Commands(Protocol):
    async def output(self, argv: Sequence[str], timeout: float) -> str | None:
        """The command's standard output if it exited 0 within `timeout`, else None."""


class ExecCommands:
    """Runs a program (no shell) in its own process group, killed whole on timeout; its
    standard error is logged at debug level, never parsed."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env              # None: the daemon's own (CIB_file there is honoured)

    async def output(self, argv: Sequence[str], timeout: float) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, env=self.env)
        except OSError as err:
            log.debug("%s: %s", argv[0], err)
            return None
        try:
            out, err_text = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            log.debug("%s timed out after %.1f s", argv[0], timeout)
            return None
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            with contextlib.suppress(asyncio.CancelledError):
                await proc.wait()
            raise
        if proc.returncode != 0:
            log.debug("%s exited %s: %s", argv[0], proc.returncode, err_text[:300])
            return None
        if len(out) > OUTPUT_MAX:
            log.debug("%s printed more than %d bytes", argv[0], OUTPUT_MAX)
            return None
        return out.decode("utf-8", "replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


async def read_placement(commands: Commands, timeout: float) -> Placement | None:
    """The placement as Pacemaker says it now; None when it cannot be read."""
    mon, resources = await asyncio.gather(commands.output(CRM_MON, timeout),
                                          commands.output(CIB_RESOURCES, timeout))
    if mon is None:
        return None
    try:
        # The CIB's resources only add addresses: without them, a placement without any.
        return parse_placement(mon, resources or "")
    except CrmMonError as err:
        log.debug("%s", err)
        return None


class PacemakerSource:
    """Reads the placement on demand, on an alert and on a slow timer, and hands each
    result (a `Placement`, or None: unknown) to `deliver`.

    `refresh()` asks for a read: at once if none runs, else one more after the one
    running (requests meanwhile coalesce into it). The slow timer, on the injected
    clock, reads every `interval` seconds after the last read began; a read on demand
    moves it. Reads are bounded by `timeout` seconds of real time each.
    """

    def __init__(self, deliver: Callable[[Placement | None], None], clock: Clock,
                 commands: Commands | None = None, *, interval: float = 30.0,
                 timeout: float = 10.0) -> None:
        self.deliver = deliver
        self.clock = clock
        self.commands = commands or ExecCommands()
        self.interval = interval
        self.timeout = timeout
        self.reads = 0                       # reads started (a figure for the tests and logs)
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._timer: Timer | None = None
        self._closed = False

    def start(self) -> None:
        """The first read now, then the slow timer."""
        self._closed = False
        self.refresh()

    def refresh(self) -> None:
        if self._closed:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(self.interval, self.refresh)
        self.reads += 1
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            placement = await read_placement(self.commands, self.timeout)
        except Exception:               # a bug here must not stop the refreshes
            log.exception("reading Pacemaker's placement failed")
            placement = None
        if self._closed:
            return
        self.deliver(placement)
        if self._again:
            self._task = None
            self.refresh()

    async def stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
