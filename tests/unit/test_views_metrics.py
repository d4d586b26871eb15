"""The metrics page: OpenMetrics text (checked by a strict parser), the older Prometheus
text format (checked by promtool), names and labels after Prometheus' conventions."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from fakes import FakeClock
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from views_world import NOW, alarm, config, healthy

from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import BucketRow, DurationKind, LinkStatus, ServiceStatus
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.metrics import OPENMETRICS_TYPE, TEXT_TYPE, MetricsPage, escape, wants_openmetrics

NAME = re.compile(r"^haoscar_[a-z0-9_]+$")
LABEL = re.compile(r"^[a-z_][a-z0-9_]*$")


@pytest.fixture(scope="module")
def mib() -> MibModel:
    return MibModel.load()


@pytest.fixture
def page(tmp_path: Path, mib: MibModel) -> MetricsPage:
    cfg = config(tmp_path)
    state = healthy(cfg)
    alarm(state, Severity.MAJOR)
    alarm(state, Severity.CRITICAL, subject='odd "name"\\x', text="x")
    state.hb_paths[(2, 2)].status = LinkStatus.DOWN
    state.services[(2,)].status = ServiceStatus.FAILED
    for n, (lower, upper, count) in enumerate([(0, 1000, 1), (1000, 5000, 1), (5000, 4294967295, 0)], start=1):
        state.perf_buckets.put((int(DurationKind.FAILOVER), n), BucketRow(lower, upper, count))
    state.perf_durations[(int(DurationKind.FAILOVER),)].total_ms = 1800
    return MetricsPage(state, lambda: cfg, FakeClock(start=NOW), mib)


def parsed(page: MetricsPage) -> dict:
    return {f.name: f for f in text_string_to_metric_families(page.render(True))}


def sample(fams: dict, family: str, name: str, **labels: str) -> float:
    found = [s.value for s in fams[family].samples if s.name == name and all(s.labels.get(k) == v
                                                                             for k, v in labels.items())]
    assert len(found) == 1, (family, name, labels, found)
    return found[0]


def test_openmetrics_parses_strictly_and_ends_with_eof(page) -> None:
    text = page.render(True)
    assert text.endswith("# EOF\n")
    fams = parsed(page)
    assert len(fams) > 30


def test_names_labels_and_types_follow_the_conventions(page) -> None:
    for fam in parsed(page).values():
        assert NAME.match(fam.name), fam.name
        assert fam.documentation, fam.name
        for s in fam.samples:
            assert all(LABEL.match(k) for k in s.labels), s
            if fam.type == "counter":
                assert s.name == fam.name + "_total"
            if fam.type == "info":
                assert s.name == fam.name + "_info"
        if fam.type == "gauge" and fam.name.endswith("_total"):
            pytest.fail(f"a gauge named like a counter: {fam.name}")


def test_values_in_base_units(page) -> None:
    fams = parsed(page)
    assert sample(fams, "haoscar_heartbeat_path_rtt_seconds", "haoscar_heartbeat_path_rtt_seconds",
                  head="head2", lan="lanA") == pytest.approx(0.00042)
    assert sample(fams, "haoscar_heartbeat_path_loss_ratio", "haoscar_heartbeat_path_loss_ratio",
                  head="head2", lan="lanA") == pytest.approx(0.002)
    assert sample(fams, "haoscar_availability_ratio", "haoscar_availability_ratio",
                  kind="cluster", window="24h") == pytest.approx(0.99999)
    assert sample(fams, "haoscar_mttr_seconds", "haoscar_mttr_seconds", kind="cluster", window="24h") == 12
    assert sample(fams, "haoscar_failovers", "haoscar_failovers_total") == 2


def test_states_are_statesets(page) -> None:
    fams = parsed(page)
    assert fams["haoscar_heartbeat_path_state"].type == "stateset"
    assert sample(fams, "haoscar_heartbeat_path_state", "haoscar_heartbeat_path_state", head="head2", lan="lanB",
                  haoscar_heartbeat_path_state="down") == 1
    assert sample(fams, "haoscar_service_state", "haoscar_service_state", service="nfs",
                  haoscar_service_state="failed") == 1
    assert sample(fams, "haoscar_service_rung", "haoscar_service_rung", service="nfs",
                  haoscar_service_rung="watching") == 1
    assert sample(fams, "haoscar_health", "haoscar_health", haoscar_health="failed") == 1
    assert sample(fams, "haoscar_head_state", "haoscar_head_state", head="head1", haoscar_head_state="active") == 1


def test_alarms_by_severity_aliases_and_takeover_histogram(page) -> None:
    fams = parsed(page)
    assert sample(fams, "haoscar_alarms_active", "haoscar_alarms_active", severity="major") == 1
    assert sample(fams, "haoscar_alarms_active", "haoscar_alarms_active", severity="minor") == 0
    assert sample(fams, "haoscar_alias_held", "haoscar_alias_held", alias="10.72.0.50", head="head1") == 1
    assert sample(fams, "haoscar_alias_held", "haoscar_alias_held", alias="10.72.0.50", head="head2") == 0
    h = "haoscar_takeover_duration_seconds"
    assert sample(fams, h, h + "_bucket", kind="failover", le="1.0") == 1
    assert sample(fams, h, h + "_bucket", kind="failover", le="5.0") == 2
    assert sample(fams, h, h + "_bucket", kind="failover", le="+Inf") == 2
    assert sample(fams, h, h + "_sum", kind="failover") == 1.8


def test_help_comes_from_the_mib(page, mib) -> None:
    fams = parsed(page)
    doc = fams["haoscar_heartbeat_path_rtt_seconds"].documentation
    assert doc.startswith(mib["haoscarHbPathRtt"].description.split(". ")[0])
    assert "Here in seconds; the MIB object in microseconds" in doc and doc.endswith("(MIB haoscarHbPathRtt)")


def test_label_values_are_escaped(page) -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_the_prometheus_text_format_passes_promtool(page, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup installs it (Debian package prometheus)"
    text = page.render(False)
    assert "# EOF" not in text and "haoscar_failovers_total 2" in text
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "" and done.stderr.strip() == "", done


@pytest.mark.parametrize("accept, om", [
    ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", True),
    ("text/plain;version=0.0.4", False),
    ("*/*", True),
    ("", True),
])
def test_content_negotiation(page, accept: str, om: bool) -> None:
    assert wants_openmetrics(accept) is om
    request = make_mocked_request("GET", "/metrics", headers={"Accept": accept} if accept else {})
    response = asyncio.run(page.handle(request))
    assert response.headers["Content-Type"] == (OPENMETRICS_TYPE if om else TEXT_TYPE)
    assert response.body.decode().endswith("# EOF\n") is om
