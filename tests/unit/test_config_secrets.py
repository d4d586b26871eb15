"""Secret files: used only when private to their owner, read with one trailing newline dropped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.secretfiles import SecretFileError, read_secret_file

CONFIG = """
[cluster]
name = "t"
local_head = "h1"
state_dir = "state"
[[heads]]
name = "h1"
preferred_role = "primary"
[snmp]
listen = ["127.0.0.1:16161"]
[[snmp.communities]]
name_file = "community"
[[snmp.users]]
name = "ops"
auth_protocol = "sha"
auth_key_file = "ops.auth"
priv_protocol = "aes256"
priv_key_file = "ops.priv"
"""


def secret(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)
    return path


def load(tmp_path: Path) -> object:
    config_file = tmp_path / "haoscar-snmp.toml"
    config_file.write_text(CONFIG)
    return load_config(config_file)


def write_all(tmp_path: Path) -> None:
    secret(tmp_path / "community", "s3cret-community\n")
    secret(tmp_path / "ops.auth", "auth passphrase\n\n")
    secret(tmp_path / "ops.priv", "priv passphrase\r\n", 0o400)


def test_secrets_are_read_and_one_trailing_newline_is_dropped(tmp_path: Path) -> None:
    write_all(tmp_path)
    config = load(tmp_path)
    assert config.snmp.communities[0].secret == "s3cret-community"
    assert config.snmp.users[0].auth_key == "auth passphrase\n"  # only one newline is dropped
    assert config.snmp.users[0].priv_key == "priv passphrase"
    assert "s3cret" not in repr(config) and "passphrase" not in repr(config)


def test_group_or_world_readable_secret_is_rejected_naming_file_and_mode(tmp_path: Path) -> None:
    write_all(tmp_path)
    secret(tmp_path / "ops.auth", "auth passphrase\n", 0o644)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    [problem] = caught.value.problems
    assert problem.key == "snmp.users[0].auth_key_file"
    assert str(tmp_path / "ops.auth") in problem.message and "0644" in problem.message


def test_every_bad_secret_file_is_reported(tmp_path: Path) -> None:
    secret(tmp_path / "community", "", 0o600)
    secret(tmp_path / "ops.auth", "short\n")
    (tmp_path / "ops.priv").mkdir()
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    found = {p.key: p.message for p in caught.value.problems}
    assert set(found) == {"snmp.communities[0].name_file", "snmp.users[0].auth_key_file",
                          "snmp.users[0].priv_key_file"}
    assert "is empty" in found["snmp.communities[0].name_file"]
    assert "fewer than 8 characters" in found["snmp.users[0].auth_key_file"]
    assert "short" not in found["snmp.users[0].auth_key_file"].replace(str(tmp_path), "")


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="does not exist"):
        read_secret_file(tmp_path / "absent")


def test_secret_through_a_symlink_is_judged_by_the_target_mode(tmp_path: Path) -> None:
    target = secret(tmp_path / "real", b"x", 0o640)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SecretFileError, match="0640"):
        read_secret_file(link)
    target.chmod(0o600)
    assert read_secret_file(link) == b"x"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_secret_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = secret(tmp_path / "key", b"secret-bytes")
    os.chown(path, 65534, 65534)          # nobody: could rewrite the key
    with pytest.raises(SecretFileError, match="owned by uid 65534"):
        read_secret_file(path)
    os.chown(path, 0, 0)
    assert read_secret_file(path) == b"secret-bytes"
