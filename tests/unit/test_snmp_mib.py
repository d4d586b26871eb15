"""HAOSCAR-MIB as data: the compiled model, its bindings to the state, and the SET handlers.

The agent must not drift from the MIB text: the committed JSON must be what pysmi makes of
mibs/HAOSCAR-MIB.txt, every readable object must be served, and every writable object
must have a SET handler.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeConfigSource
from pysnmp.proto.rfc1902 import Integer32, OctetString, Unsigned32

from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import EventType, Severity
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.setter import SetError, SetHandler
from haoscar_snmp.snmp.view import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, MibView

REPO = Path(__file__).resolve().parents[2]
STD_MIBS = REPO / ".cache" / "mibs"
FETCH = REPO / "scripts" / "fetch-std-mibs"
ROOT = (1, 3, 6, 1, 4, 1, 32473, 1)


@pytest.fixture
def bound(mib: MibModel, cfg: Config) -> MibView:
    view = MibView(mib)
    bind_all(view, State(), lambda: cfg, CONFIG_MAP, lambda m: 0, lambda: 0)
    return view


def test_the_module_root_is_the_enterprise_arc(mib: MibModel) -> None:
    assert mib.root == ROOT
    assert mib["haoscarAgentStarted"].oid == ROOT + (0, 1)
    assert mib["haoscarClusterName"].oid == ROOT + (1, 1, 1)


def test_every_object_lives_under_the_root(mib: MibModel) -> None:
    assert all(o.oid[: len(ROOT)] == ROOT for o in mib.objects.values())
    assert len(mib.by_oid) == len(mib.objects)  # no two objects share an OID


def test_textual_conventions_are_resolved(mib: MibModel) -> None:
    name = mib["haoscarClusterName"]
    assert (name.base, name.tc, name.display, name.sizes) == ("OctetString", "DisplayString", True, ((0, 64),))
    status = mib["haoscarServiceRowStatus"]
    assert status.tc == "RowStatus" and status.access == "read-create"
    assert status.enums["createAndGo"] == 4
    assert mib["haoscarAutoFailback"].enums == {"true": 1, "false": 2}
    assert mib["haoscarHeartbeatInterval"].ranges == ((10, 60000),)
    assert mib["haoscarLastFailoverTime"].tc == "DateAndTime"


def test_tables_rows_and_columns_hang_together(mib: MibModel) -> None:
    cols = mib.columns("haoscarServiceEntry")
    assert cols[0].name == "haoscarServiceIndex"
    assert [c.oid[-1] for c in cols] == list(range(1, len(cols) + 1))
    assert all(mib.row_of(c).name == "haoscarServiceEntry" for c in cols)
    assert mib["haoscarHbPathEntry"].indices == ("haoscarHeadIndex", "haoscarHbPathLan")


def test_notification_lookup_refuses_other_objects(mib: MibModel) -> None:
    assert mib.notification("haoscarServiceDown").objects[0] == "haoscarNotifyTime"
    with pytest.raises(KeyError):
        mib.notification("haoscarClusterName")


def test_state_enums_match_the_mib(mib: MibModel) -> None:
    assert sorted(mib["haoscarEventType"].enums.values()) == sorted(int(t) for t in EventType)
    assert sorted(mib["haoscarEventSeverity"].enums.values()) == sorted(int(s) for s in Severity)


def test_bind_all_serves_every_readable_object(bound: MibView) -> None:
    assert bound.unbound() == []


def test_unbound_lists_what_is_missing(mib: MibModel) -> None:
    view = MibView(mib)
    view.bind_scalar("haoscarClusterName", lambda: "x")
    missing = view.unbound()
    assert "haoscarClusterName" not in missing
    assert "haoscarServiceName" in missing
    assert "haoscarNotifyTime" not in missing  # accessible-for-notify is never served
    assert "haoscarServiceIndex" not in missing  # index columns are not-accessible


def test_binding_an_object_twice_is_refused(mib: MibModel) -> None:
    view = MibView(mib)
    view.bind_scalar("haoscarClusterName", lambda: "x")
    with pytest.raises(ValueError):
        view.bind_scalar("haoscarClusterName", lambda: "y")


def test_a_table_without_a_getter_for_a_readable_column_is_refused(mib: MibModel) -> None:
    with pytest.raises(KeyError, match="haoscarJobRuns"):
        MibView(mib).bind_table("haoscarJobEntry", lambda: None, {"haoscarJobName": lambda r: r.name})


def ensure_std_mibs() -> None:
    """.cache/mibs with the standard modules pysmi needs; fetched on first use, never skipped."""
    if (STD_MIBS / "SNMPv2-SMI.txt").exists():
        return
    result = subprocess.run([str(FETCH)], cwd=REPO, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"scripts/fetch-std-mibs failed ({result.returncode}); the no-drift check "
                    f"must not be skipped:\n{result.stdout}{result.stderr}", pytrace=False)


def test_committed_json_matches_the_mib_text() -> None:
    ensure_std_mibs()
    result = subprocess.run([sys.executable, "-m", "haoscar_snmp.snmp.mibgen", "--check"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def writable(mib: MibModel, node: str) -> list:
    return sorted((o for o in mib.objects.values() if o.node == node and o.writable),
                  key=lambda o: o.oid)


def test_every_writable_scalar_has_a_set_handler(mib: MibModel, cfg: Config, bound: MibView) -> None:
    scalars = writable(mib, "scalar")
    assert len(scalars) >= 11
    handler = SetHandler(mib, FakeConfigSource(cfg), CONFIG_MAP)
    for obj in scalars:
        instance = obj.oid + (0,)
        value = bound.get(instance)  # its current value: valid by construction
        assert value is not NO_SUCH_OBJECT and value is not NO_SUCH_INSTANCE, obj.name
        try:
            plan = handler.prepare([(instance, value)])
        except SetError as err:
            pytest.fail(f"{obj.name}: SET of its own current value refused: {err}")
        assert [c.oid for c in plan.changes] == [instance], obj.name


# A valid value for every writable column; the MIB may not gain one the SET path ignores.
COLUMN_VALUES = {
    "haoscarServiceName": OctetString("web"),
    "haoscarServiceCheck": OctetString("systemctl is-active nginx"),
    "haoscarServiceRetryThreshold": Unsigned32(4),
    "haoscarServiceRecovery": Integer32(3),
    "haoscarServiceAdminStatus": Integer32(1),
    "haoscarServiceRestartCommand": OctetString("systemctl restart nginx"),
    "haoscarServiceActiveOnly": Integer32(2),
    "haoscarServiceRowStatus": Integer32(4),
    "haoscarServiceCheckType": Integer32(1),
    "haoscarServiceInterval": Unsigned32(2000),
    "haoscarServiceTimeout": Unsigned32(1000),
    "haoscarServiceRise": Unsigned32(2),
    "haoscarServiceCheckSend": OctetString(""),
    "haoscarServiceCheckExpect": OctetString(""),
    "haoscarServiceMaxRestarts": Unsigned32(5),
    "haoscarServiceRestartWindow": Unsigned32(600),
    "haoscarServiceResetAfter": Unsigned32(20),
    "haoscarServiceFlapThreshold": Unsigned32(0),
    "haoscarServiceFailureTimeout": Unsigned32(3600),
    "haoscarServiceRestartTimeout": Unsigned32(60000),
    "haoscarAliasAddress": OctetString("192.0.2.10"),
    "haoscarAliasPrefixLength": Unsigned32(24),
    "haoscarAliasInterface": OctetString("eth0"),
    "haoscarAliasRowStatus": Integer32(4),
}


def test_every_writable_column_is_known_to_this_test(mib: MibModel) -> None:
    assert {o.name for o in writable(mib, "column")} == set(COLUMN_VALUES)


@pytest.mark.parametrize("row_name", ["haoscarServiceEntry", "haoscarAliasEntry"])
def test_every_writable_column_has_a_set_handler(mib: MibModel, cfg: Config, row_name: str) -> None:
    handler = SetHandler(mib, FakeConfigSource(cfg), CONFIG_MAP)
    columns = [c for c in mib.columns(row_name) if c.writable]
    plan = handler.prepare([(c.oid + (77,), COLUMN_VALUES[c.name]) for c in columns])
    assert sorted(c.name for c in plan.changes) == sorted(c.name for c in columns)
    key = "services" if row_name == "haoscarServiceEntry" else "aliases"
    assert plan.overrides[key]["77"]["row_status"] == "active"
