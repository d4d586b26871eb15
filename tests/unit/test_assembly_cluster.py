"""haoscar_snmp/assembly/cluster.py: the corosync backend's start errors say what to
install, and the alert socket's directory lets hacluster through."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fcaps.fault.cluster import corolib
from haoscar_snmp.assembly import cluster
from haoscar_snmp.assembly.parts import StartFailed
from haoscar_snmp.config.schema import PacemakerUse


def test_a_missing_corosync_library_is_a_start_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def library(kind: str) -> None:
        raise corolib.LibraryMissing(f"cannot load lib{kind}.so; install Debian's lib{kind}5")

    monkeypatch.setattr(corolib, "library", library)
    with pytest.raises(StartFailed, match='membership.backend = "corosync": .*install Debian\'s libquorum5'):
        cluster._check_libraries()


def test_pacemaker_on_without_crm_mon_is_a_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    with pytest.raises(StartFailed, match="pacemaker-cli-utils"):
        cluster._reads_pacemaker(PacemakerUse.ON)
    assert cluster._reads_pacemaker(PacemakerUse.AUTO) is False       # a warning, and no placement
    monkeypatch.setattr(cluster.shutil, "which", lambda name: f"/usr/sbin/{name}")
    assert cluster._reads_pacemaker(PacemakerUse.AUTO) is True
    assert cluster._reads_pacemaker(PacemakerUse.OFF) is False


def test_the_socket_directory_is_made_passable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    made = tmp_path / "run" / "haoscar-snmp"
    cluster._socket_dir(made)
    assert stat.S_IMODE(made.stat().st_mode) == 0o711
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    cluster._socket_dir(closed)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700               # left as it is
    assert "cannot reach the socket" in caplog.text
