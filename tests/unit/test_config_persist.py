"""Atomic state writes and the SNMP override store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.persist import OverrideStore, atomic_write


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert mode(target) == 0o600


def test_atomic_write_honours_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "public"
    atomic_write(target, b"x", mode=0o644)
    assert mode(target) == 0o644


def test_failed_atomic_write_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()  # rename() onto a directory fails after the temp file was written
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]
    assert (target / "keep").read_text() == "x"


def test_override_store_starts_empty_without_creating_anything(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "state")
    assert store.load() == {}
    assert not (tmp_path / "state").exists()


def test_override_store_round_trips_with_sorted_keys_and_private_modes(tmp_path: Path) -> None:
    store = OverrideStore(tmp_path / "state")
    overrides = {"timing": {"heartbeat_interval_ms": 1000}, "notify_email": "ops@example.org",
                 "services": {"3": {"row_status": "notInService"}}}
    store.save(overrides)
    assert store.load() == overrides
    text = (tmp_path / "state" / "overrides.json").read_text()
    assert text.index('"notify_email"') < text.index('"services"') < text.index('"timing"')
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "overrides.json") == 0o600


@pytest.mark.parametrize("content, fragment", [
    ('{"timing": {"heartbeat_interval_ms": 10', "corrupt JSON"),
    ("", "corrupt JSON"),
    ('["timing"]', "must be a JSON object"),
])
def test_corrupt_overrides_are_an_error_naming_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "overrides.json").write_text(content)
    with pytest.raises(ConfigError) as caught:
        OverrideStore(tmp_path).load()
    [problem] = caught.value.problems
    assert problem.file == str(tmp_path / "overrides.json")
    assert fragment in problem.message


def test_saved_file_is_plain_json(tmp_path: Path) -> None:
    OverrideStore(tmp_path).save({"b": 1, "a": {"d": 2, "c": 3}})
    assert json.loads((tmp_path / "overrides.json").read_text()) == {"a": {"c": 3, "d": 2}, "b": 1}
