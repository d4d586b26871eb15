"""Loading the operator's file: the shipped configs load, and every problem is reported at once."""

from __future__ import annotations

import os
import re
import socket
from importlib import resources
from pathlib import Path

import pytest

from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.lanrows import watched_interfaces
from haoscar_snmp.config.loader import (
    default_state_dir,
    load_config,
    parse_config,
    read_embedded_default,
)
from haoscar_snmp.config.schema import Endpoint
from haoscar_snmp.config.secretfiles import SecretFileError
from haoscar_snmp.core.state import RowStatus

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SECRETS = ("heartbeat.key", "community", "nms.auth", "nms.priv", "operator.auth", "operator.priv",
                   "trap-community")


class FakeSecrets:
    """A secret-file reader serving fixed contents; other paths do not exist."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files or {}
        self.read: list[Path] = []

    def __call__(self, path: Path) -> bytes:
        self.read.append(path)
        if str(path) not in self.files:
            raise SecretFileError(f"{path} does not exist")
        return self.files[str(path)]


def parse(text: str, tmp_path: Path, secrets: FakeSecrets | None = None) -> object:
    return parse_config(text, label="test.toml", base_dir=tmp_path, environ={"HOME": str(tmp_path)},
                        read_secret=secrets or FakeSecrets())


def problems(text: str, tmp_path: Path, secrets: FakeSecrets | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, tmp_path, secrets)
    return {p.key: p.message for p in caught.value.problems}


MINIMAL = """
[cluster]
name = "t"
local_head = "h1"
state_dir = "/tmp/state"
[[heads]]
name = "h1"
preferred_role = "primary"
[snmp]
listen = ["127.0.0.1:16161"]
"""


def test_embedded_default_loads(tmp_path: Path) -> None:
    config = load_config(None, state_dir=tmp_path)
    assert config.cluster.name == "demo"
    assert [h.name for h in config.heads] == ["head1"]
    assert config.peer_head_config is None
    assert config.aliases == ()  # the demo never touches the network
    assert config.cluster.state_dir == tmp_path
    assert [(e.host, e.port, e.family) for e in config.snmp.listen] == [
        ("127.0.0.1", 16161, socket.AF_INET), ("::1", 16161, socket.AF_INET6)]
    assert config.snmp.communities[0].secret == "public"
    admin = config.snmp.users[0]
    assert (admin.name, admin.auth_protocol, admin.priv_protocol, admin.access) == (
        "admin", "sha256", "aes128", "write")
    assert admin.auth_key and admin.priv_key
    assert config.inline_secret_keys() == ["snmp.users[0].auth_key", "snmp.users[0].priv_key"]
    assert str(config.snmp.targets[0].address) == "127.0.0.1:16162"
    assert len(config.services) >= 2 and all(s.row_status is RowStatus.ACTIVE for s in config.services)


def test_demo_file_is_a_byte_identical_copy_of_the_embedded_default() -> None:
    embedded = resources.files("haoscar_snmp.config").joinpath("default.toml").read_bytes()
    assert (REPO / "conf" / "haoscar-snmp.demo.toml").read_bytes() == embedded


def test_empty_state_dir_means_the_default_state_dir(tmp_path: Path) -> None:
    config = parse_config(read_embedded_default(), label="x", base_dir=tmp_path,
                          environ={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert config.cluster.state_dir == tmp_path / "xdg" / "haoscar-snmp"


def test_default_state_dir_prefers_an_absolute_xdg_state_home() -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/s", "HOME": "/h"}) == Path("/s/haoscar-snmp")
    assert default_state_dir({"XDG_STATE_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/state/haoscar-snmp")
    assert default_state_dir({"HOME": "/h"}) == Path("/h/.local/state/haoscar-snmp")


def write_example(tmp_path: Path) -> Path:
    """The shipped example with its /etc and /var paths moved into tmp_path."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in EXAMPLE_SECRETS:
        path = etc / name
        path.write_text(f"{name}-passphrase\n")
        path.chmod(0o600)
    text = (REPO / "conf" / "haoscar-snmp.example.toml").read_text()
    text = text.replace("/etc/haoscar-snmp/", f"{etc}/").replace("/var/lib/haoscar-snmp", f"{tmp_path}/state")
    config_file = etc / "haoscar-snmp.toml"
    config_file.write_text(text)
    return config_file


def test_example_config_loads(tmp_path: Path) -> None:
    config = load_config(write_example(tmp_path))
    assert [(h.name, h.preferred_role) for h in config.heads] == [("head1", "primary"), ("head2", "standby")]
    assert config.peer_head_config is not None and config.peer_head_config.name == "head2"
    assert [s.name for s in config.services] == ["pbs_server", "maui", "nfs-server", "isc-dhcp-server", "ganglia-web"]
    assert [s.index for s in config.services] == [1, 2, 3, 4, 5]
    assert [str(a.address) for a in config.aliases] == ["192.0.2.100"]
    assert {i.node for i in config.interfaces} == {"head1", "head2"}
    assert {r.node for r in watched_interfaces(config)} == {"head1", "head2", "node01", "node02"}
    assert config.heartbeat.key == b"heartbeat.key-passphrase\n"  # binary key: kept as is
    assert config.snmp.communities[0].secret == "community-passphrase"
    assert config.snmp.users[1].priv_key == "operator.priv-passphrase"
    assert config.snmp.targets[0].kind == "inform" and config.snmp.targets[0].user == "nms"
    assert config.snmp.targets[1].community == "trap-community-passphrase"
    assert config.inline_secret_keys() == []
    assert config.cluster.state_dir == tmp_path / "state"


@pytest.mark.parametrize("name", ["haoscar-snmp.example.toml", "haoscar-snmp.demo.toml"])
def test_every_key_in_the_shipped_configs_is_commented(name: str) -> None:
    """Each key name has at least one occurrence with a comment on its line or just above."""
    lines = (REPO / "conf" / name).read_text().splitlines()
    commented: dict[str, bool] = {}
    for i, line in enumerate(lines):
        match = re.match(r"([a-z_]+) = ", line)
        if match:
            documented = "#" in line or (i > 0 and lines[i - 1].lstrip().startswith("#"))
            commented[match[1]] = commented.get(match[1], False) or documented
    assert commented and [key for key, ok in commented.items() if not ok] == []


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)  # not the config file's directory
    secrets = FakeSecrets({str(tmp_path / "sub" / "keys" / "hb.key"): b"k"})
    text = MINIMAL.replace('"/tmp/state"', '"state"') + '[heartbeat]\nkey_file = "keys/hb.key"\n'
    config = parse_config(text, label="x", base_dir=tmp_path / "sub", environ={}, read_secret=secrets)
    assert config.cluster.state_dir == tmp_path / "sub" / "state"
    assert config.heartbeat.key_file == tmp_path / "sub" / "keys" / "hb.key"
    assert config.heartbeat.key == b"k"


def test_state_dir_keyword_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(MINIMAL)
    assert load_config(path, state_dir=tmp_path / "elsewhere").cluster.state_dir == tmp_path / "elsewhere"


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[cluster]\nname = "x"\nlocal_head = \n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.key) == (str(path), "line 3, column 14")
    assert "TOML syntax error" in problem.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(caught.value)


MANY_MISTAKES = """
colour = "blue"
[cluster]
name = "t"
local_head = "h9"
[[heads]]
name = "h1"
preferred_role = "primary"
[[services]]
name = "a"
check = "true"
retry_threshold = 500
[[services]]
name = "b"
check = ""
[[aliases]]
address = "192.0.2.300"
prefix_length = 24
interface = "eth0"
[[aliases]]
address = "192.0.2.1"
prefix_length = 33
interface = "eth0"
[timing]
heartbeat_interval_ms = 10000
garp_count = "five"
[snmp]
listen = ["127.0.0.1:161", "127.0.0.1:161", "::1:161"]
[[snmp.communities]]
name = "private"
access = "write"
[[snmp.users]]
name = "u"
auth_protocol = "md5"
auth_key = "short"
priv_protocol = "none"
[[snmp.users]]
name = "w"
auth_protocol = "sha"
auth_key_file = "w.auth"
priv_protocol = "none"
access = "write"
[log]
levle = "debug"
"""


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    found = problems(MANY_MISTAKES, tmp_path)
    assert set(found) == {
        "colour",                                  # unknown top-level key
        "cluster.local_head",                      # names no head
        "services[0].retry_threshold",             # out of range
        "services[1].check",                       # empty
        "aliases[0].address",                      # not an address
        "aliases[1].prefix_length",                # does not fit IPv4
        "timing.garp_count",                       # wrong type
        "snmp.listen[1]",                          # duplicate
        "snmp.listen[2]",                          # IPv6 without brackets
        "snmp.communities[0].access",              # v2c write without allow_v2c_write
        "snmp.users[0].auth_protocol",             # not a choice
        "snmp.users[0].auth_key",                  # too short
        "snmp.users[1].auth_key_file",             # missing secret file
        "snmp.users[1].access",                    # write without privacy
        "log.levle",                               # typo
    }
    # timing failed on its own, so its cross-field rule (dead time >= 3 x interval) stays
    # quiet rather than guess; it is reported once garp_count is fixed.
    assert "less than or equal to 100 (got 500)" in found["services[0].retry_threshold"]
    assert "unknown key" in found["log.levle"]


def test_config_error_prints_one_problem_per_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(MANY_MISTAKES, tmp_path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems)
    assert all(line.startswith("test.toml: ") for line in lines)
    assert any(line.startswith("test.toml: log.levle: unknown key") for line in lines)


@pytest.mark.parametrize("snippet, key", [
    ('[cluster]\nname = "t"\nlocal_head = "h1"\nstate_dir = "/s"\nzone = 1\n', "cluster.zone"),
    ('[[heads]]\nname = "h2"\npreferred_role = "standby"\nlan_c = "10.0.0.1"\n', "heads[1].lan_c"),
    ('[[services]]\nname = "s"\ncheck = "true"\nretries = 3\n', "services[0].retries"),
    ('[snmp.agentx]\nenable = true\n', "snmp.agentx.enable"),
    ('[notify.email]\nsmtp_server = "x"\n', "notify.email.smtp_server"),
])
def test_unknown_keys_are_rejected(tmp_path: Path, snippet: str, key: str) -> None:
    text = MINIMAL.replace('[cluster]\nname = "t"\nlocal_head = "h1"\nstate_dir = "/tmp/state"\n', "")
    if not snippet.startswith("[cluster]"):
        text = '[cluster]\nname = "t"\nlocal_head = "h1"\nstate_dir = "/s"\n' + text
    found = problems(text + snippet, tmp_path)
    assert key in found and "unknown key" in found[key]


def test_missing_required_sections_are_named(tmp_path: Path) -> None:
    assert set(problems('[log]\nlevel = "info"\n', tmp_path)) == {"cluster", "heads", "snmp"}


def test_secret_values_are_never_quoted_or_shown(tmp_path: Path) -> None:
    text = MINIMAL + ('[[snmp.users]]\nname = "u"\nauth_protocol = "sha"\nauth_key = "hunter2"\n'
                      'priv_protocol = "aes128"\npriv_key = "s3cret-priv"\n')
    found = problems(text, tmp_path)
    assert "hunter2" not in found["snmp.users[0].auth_key"]
    config = parse(MINIMAL + text.split(MINIMAL)[1].replace("hunter2", "hunter2-long"), tmp_path)
    shown = repr(config) + str(config.model_dump()) + config.model_dump_json()
    assert "hunter2" not in shown and "s3cret" not in shown
    assert config.snmp.users[0].auth_key == "hunter2-long"


def test_rows_without_index_get_the_smallest_free_one_in_file_order(tmp_path: Path) -> None:
    rows = "".join(f'[[services]]\nname = "s{i}"\ncheck = "true"\n{extra}'
                   for i, extra in enumerate(["", "index = 1\n", "", "index = 4\n", ""]))
    config = parse(MINIMAL + rows, tmp_path)
    assert [(s.name, s.index) for s in config.services] == [
        ("s0", 2), ("s1", 1), ("s2", 3), ("s3", 4), ("s4", 5)]


@pytest.mark.parametrize("text, host, port, family", [
    ("127.0.0.1:161", "127.0.0.1", 161, socket.AF_INET),
    ("[::1]:16161", "::1", 16161, socket.AF_INET6),
    ("[2001:DB8:0:0::1]:162", "2001:db8::1", 162, socket.AF_INET6),
])
def test_endpoints_parse(text: str, host: str, port: int, family: int) -> None:
    endpoint = Endpoint.model_validate(text)
    assert (endpoint.host, endpoint.port, endpoint.family) == (host, port, family)
    assert Endpoint.model_validate(str(endpoint)) == endpoint


@pytest.mark.parametrize("text", ["::1:161", "localhost:161", "127.0.0.1", "[127.0.0.1]:161", "1.2.3.4:x",
                                  "1.2.3.4:0", "[::1]:70000"])
def test_bad_endpoints_are_rejected(tmp_path: Path, text: str) -> None:
    found = problems(MINIMAL.replace('"127.0.0.1:16161"', f'"{text}"'), tmp_path)
    assert [key for key in found if key.startswith("snmp.listen[0]")]


def test_load_config_reads_real_files(tmp_path: Path) -> None:
    key = tmp_path / "hb.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    path = tmp_path / "c.toml"
    path.write_text(MINIMAL + f'[heartbeat]\nkey_file = "{key.name}"\n')
    assert load_config(path).heartbeat.key == key.read_bytes()


def test_the_resynchronisation_keys_are_checked_and_named(tmp_path: Path) -> None:
    config = parse(MINIMAL + "[notify]\ninform_resync = false\nresync_interval_ms = 1000\n", tmp_path)
    assert (config.notify.inform_resync, config.notify.resync_interval_ms) == (False, 1000)
    found = problems(MINIMAL + "[notify]\ninform_resync = 3\nresync_interval_ms = 999\n", tmp_path)
    assert set(found) == {"notify.inform_resync", "notify.resync_interval_ms"}, found
    assert "1000" in found["notify.resync_interval_ms"]


def test_accounting_problems_are_each_named_by_key(tmp_path: Path) -> None:
    found = problems(MINIMAL + """
[accounting]
windows = ["24h", "10m", "1d", "7x"]
retention = "2h"
mark_interval_s = 0
""", tmp_path)
    assert "not a duration" in found["accounting.windows[3]"]
    assert "greater than or equal to 1" in found["accounting.mark_interval_s"]
    found = problems(MINIMAL + """
[accounting]
windows = ["24h", "10m", "1d"]
retention = "2h"
""", tmp_path)
    assert found == {"accounting.windows[1]": "10m is shorter than an hour",
                     "accounting.windows[2]": "1d is as long as windows[0]",
                     "accounting.retention": "2h is shorter than the longest window (24h): that window "
                                             "could not be computed from whole data"}


def test_accounting_defaults_and_durations(tmp_path: Path) -> None:
    config = parse(MINIMAL + '[accounting]\nwindows = ["1h", "2w"]\nretention = "30d"\n', tmp_path)
    assert config.accounting.window_seconds == (3600, 14 * 86400)
    assert config.accounting.retention_seconds == 30 * 86400
    default = parse(MINIMAL, tmp_path)
    assert default.accounting.windows == ("24h", "7d", "30d") and default.accounting.mark_interval_s == 10
