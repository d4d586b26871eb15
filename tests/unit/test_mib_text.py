"""mibs/HAOSCAR-MIB.txt must lint clean and load into net-snmp's MIB parser.

The standard SNMPv2 modules it imports come from `scripts/fetch-std-mibs` (into the
git-ignored `.cache/mibs`), which this test runs when they are missing. smilint
(Debian package `smitools`) and snmptranslate (Debian package `snmp`) are required:
a missing tool fails the test instead of skipping it, so the lint can't drop out of CI
unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MIB_FILE = REPO / "mibs" / "HAOSCAR-MIB.txt"
STD_MIBS = REPO / ".cache" / "mibs"
FETCH = REPO / "scripts" / "fetch-std-mibs"
MIB_PATH = "mibs:.cache/mibs"  # relative to REPO, as in docs/mib.md

# name -> numeric OID that the agent code relies on (a sample across the tree)
EXPECTED_OIDS = {
    "haoscarMIB": ".1.3.6.1.4.1.32473.1",
    "haoscarServiceRowStatus": ".1.3.6.1.4.1.32473.1.1.8.1.14",
    "haoscarHeartbeatDeadTime": ".1.3.6.1.4.1.32473.1.1.2.2",
    "haoscarControlAction": ".1.3.6.1.4.1.32473.1.1.3.1",
    "haoscarHbPathStatus": ".1.3.6.1.4.1.32473.1.1.5.1.2",
    "haoscarAliasRowStatus": ".1.3.6.1.4.1.32473.1.1.7.1.8",
    "haoscarEventLastIndex": ".1.3.6.1.4.1.32473.1.1.9.1",
    "haoscarAlarmLastChanged": ".1.3.6.1.4.1.32473.1.1.10.2",
    "haoscarJobLastResult": ".1.3.6.1.4.1.32473.1.1.12.10.1.8",
    "haoscarNotifySubject": ".1.3.6.1.4.1.32473.1.1.14.8",
    "haoscarAgentStarted": ".1.3.6.1.4.1.32473.1.0.1",
    "haoscarConfigChanged": ".1.3.6.1.4.1.32473.1.0.19",
    "haoscarLanIfSource": ".1.3.6.1.4.1.32473.1.1.6.1.21",
    "haoscarLanState": ".1.3.6.1.4.1.32473.1.1.16.3",
    "haoscarLanLastChange": ".1.3.6.1.4.1.32473.1.1.16.4.1.7",
    "haoscarLanRecovered": ".1.3.6.1.4.1.32473.1.0.22",
    "haoscarFullCompliance": ".1.3.6.1.4.1.32473.1.2.1.1",
    "haoscarMembershipChanges": ".1.3.6.1.4.1.32473.1.1.21.10",
    "haoscarClusterLinkLatency": ".1.3.6.1.4.1.32473.1.1.21.13.1.3",
    "haoscarResourceAddress": ".1.3.6.1.4.1.32473.1.1.21.14.1.9",
    "haoscarAddressStale": ".1.3.6.1.4.1.32473.1.0.46",
}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: install the Debian package '{package}' "
                    f"(apt-get install {package}); the MIB lint must not be skipped",
                    pytrace=False)
    return path


@pytest.fixture(scope="module")
def std_mibs() -> Path:
    """.cache/mibs with the standard modules, fetched on first use."""
    if not (STD_MIBS / "SNMPv2-SMI.txt").exists():
        result = subprocess.run([str(FETCH)], cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        if result.returncode != 0:
            pytest.fail(f"scripts/fetch-std-mibs failed ({result.returncode}):\n"
                        f"{result.stdout}{result.stderr}", pytrace=False)
    assert (STD_MIBS / "SNMPv2-SMI.txt").exists()
    return STD_MIBS


@pytest.fixture(scope="module")
def snmp_env(std_mibs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for net-snmp tools, isolated from the user's and the host's snmp.conf.

    SNMP_PERSISTENT_DIR points at a prepared scratch directory, because net-snmp
    announces on stderr every persistent directory it has to create.
    """
    scratch = tmp_path_factory.mktemp("netsnmp")
    (scratch / "persist" / "cert_indexes").mkdir(parents=True)
    (scratch / "conf").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MIBS", "MIBDIRS")}
    env["SNMPCONFPATH"] = str(scratch / "conf")
    env["SNMP_PERSISTENT_DIR"] = str(scratch / "persist")
    return env


def _snmptranslate(env: dict[str, str], modules: str, *args: str) -> subprocess.CompletedProcess:
    exe = _tool("snmptranslate", "snmp")
    return subprocess.run([exe, "-M", f"+{MIB_PATH}", "-m", modules, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)


def test_smilint_level_6_is_silent(std_mibs: Path) -> None:
    exe = _tool("smilint", "smitools")
    env = dict(os.environ, SMIPATH=MIB_PATH)
    result = subprocess.run([exe, "-l", "6", "-s", "mibs/HAOSCAR-MIB.txt"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert output == "", f"smilint -l 6 reported problems:\n{output}"
    assert result.returncode == 0


def test_snmptranslate_loads_module_without_warnings(snmp_env: dict[str, str]) -> None:
    # Only HAOSCAR-MIB (and what it imports) is loaded, so any message is about it.
    result = _snmptranslate(snmp_env, "HAOSCAR-MIB", "-Tp", "-IR", "haoscarMIB")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"snmptranslate warned while loading HAOSCAR-MIB:\n{result.stderr}"
    tree = result.stdout
    for name in ("haoscarNotifications(0)", "haoscarObjects(1)", "haoscarConformance(2)",
                 "haoscarServiceTable(8)", "haoscarEventTable(2)", "haoscarAlarmTable(3)",
                 "haoscarConfigChanged(19)"):
        assert name in tree, f"{name} missing from the snmptranslate -Tp tree"


def test_snmptranslate_with_default_modules(snmp_env: dict[str, str]) -> None:
    """The documented form `-m +HAOSCAR-MIB` resolves names to the agreed OID.

    With `+`, net-snmp also tries its compiled-in default module list (IP-MIB, ...),
    which a host without those MIB files complains about; none of that may concern
    HAOSCAR-MIB.
    """
    result = _snmptranslate(snmp_env, "+HAOSCAR-MIB", "-On",
                            "HAOSCAR-MIB::haoscarServiceRowStatus")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ".1.3.6.1.4.1.32473.1.1.8.1.14"
    ours = [line for line in result.stderr.splitlines()
            if "HAOSCAR" in line or "mibs/" in line.replace("/usr/share/snmp/mibs/", "")]
    assert ours == [], "warnings about HAOSCAR-MIB or its imports:\n" + "\n".join(ours)


def test_names_resolve_to_agreed_oids(snmp_env: dict[str, str]) -> None:
    names = [f"HAOSCAR-MIB::{name}" for name in EXPECTED_OIDS]
    result = _snmptranslate(snmp_env, "HAOSCAR-MIB", "-On", *names)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    got = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert dict(zip(EXPECTED_OIDS, got)) == EXPECTED_OIDS


def test_oids_resolve_back_to_names(snmp_env: dict[str, str]) -> None:
    result = _snmptranslate(snmp_env, "HAOSCAR-MIB", "-OS",
                            ".1.3.6.1.4.1.32473.1.1.2.1.0", ".1.3.6.1.4.1.32473.1.1.7.1.2.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HAOSCAR-MIB::haoscarHeartbeatInterval.0",
                                     "HAOSCAR-MIB::haoscarAliasAddress.5"]


def test_placeholder_enterprise_number_defined_once() -> None:
    """The documentation PEN (RFC 5612) appears in exactly one OID assignment."""
    code = [line.split("--", 1)[0] for line in MIB_FILE.read_text().splitlines()]
    assignments = [line for line in code if re.search(r"::=\s*\{[^}]*\b32473\b", line)]
    assert assignments == [
        "haoscarPlaceholderEnterprise OBJECT IDENTIFIER ::= { enterprises 32473 }"]
