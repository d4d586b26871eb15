"""[snmp.agentx] and the three ways to run: standalone, AgentX only, both."""

from __future__ import annotations

import pytest

from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.snmp.agentx.session import SessionSettings

BASE = """
[cluster]
name = "t"
local_head = "h1"
state_dir = "{state}"
[[heads]]
name = "h1"
preferred_role = "primary"
[snmp]
{listen}
{agentx}
"""


def load(tmp_path, listen: str, agentx: str = ""):
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(state=tmp_path / "state", listen=listen, agentx=agentx))
    return load_config(path)


def problems(tmp_path, listen: str, agentx: str = "") -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, listen, agentx)
    return {p.key: p.message for p in caught.value.problems}


def test_standalone_is_the_default(tmp_path) -> None:
    config = load(tmp_path, 'listen = ["127.0.0.1:16161"]')
    ax = config.snmp.agentx
    assert not ax.enabled and ax.master == "/var/agentx/master"
    assert (ax.timeout_ms, ax.retries, ax.ping_interval_ms, ax.priority, ax.notify_queue) == (
        1000, 2, 5000, 127, 100)


def test_agentx_only_needs_no_listen_endpoint(tmp_path) -> None:
    config = load(tmp_path, "listen = []", '[snmp.agentx]\nenabled = true\nmaster = "tcp:127.0.0.1:705"')
    assert config.snmp.listen == () and config.snmp.agentx.enabled
    settings = SessionSettings.of(config.snmp.agentx, (1, 3, 6, 1, 4, 1, 32473, 1), (1, 2))
    assert (settings.master, settings.timeout_s, settings.ping_interval_s) == ("tcp:127.0.0.1:705", 1.0, 5.0)


def test_both_at_once(tmp_path) -> None:
    config = load(tmp_path, 'listen = ["127.0.0.1:16161"]', "[snmp.agentx]\nenabled = true")
    assert config.snmp.listen and config.snmp.agentx.enabled


def test_nothing_answering_is_refused(tmp_path) -> None:
    found = problems(tmp_path, "listen = []")
    assert any("nothing would answer SNMP" in m for m in found.values()), found
    found = problems(tmp_path, "")
    assert any("nothing would answer SNMP" in m for m in found.values()), found


@pytest.mark.parametrize("agentx, key, words", [
    ('context = "vrf1"', "snmp.agentx.context", "only the default context"),
    ('master = "var/agentx"', "snmp.agentx.master", "absolute unix socket path"),
    ('master = "tcp:localhost:705"', "snmp.agentx.master", "not an IPv4 or IPv6 address"),
    ("priority = 0", "snmp.agentx.priority", ""),
    ("timeout_ms = 10", "snmp.agentx.timeout_ms", ""),
    ("notify_queue = 0", "snmp.agentx.notify_queue", ""),
])
def test_bad_agentx_settings_are_refused_at_their_keys(tmp_path, agentx: str, key: str, words: str) -> None:
    found = problems(tmp_path, 'listen = ["127.0.0.1:16161"]', f"[snmp.agentx]\nenabled = true\n{agentx}")
    assert key in found and words in found[key], found
