"""Reading secrets from `*_file`s: the one place configuration loading touches other files.

A key file that others can read is as good as published, and one that another user owns
can be replaced by that user, so such a file is refused (like ssh refuses a private key
with loose permissions) rather than used with a warning.
The reader is passed in, so the attaching logic is tested with a fake.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, TypeVar

from haoscar_snmp.config.errors import Issue
from haoscar_snmp.config.schema import EmailConfig, HeartbeatConfig, WebConfig
from haoscar_snmp.config.values import MIN_PASSPHRASE, WithSecrets
from haoscar_snmp.config.webusers import UsersFileError, parse_users

SecretReader = Callable[[Path], bytes]


class SecretFileError(Exception):
    """A secret file cannot be used; the message names the file."""


def read_secret_file(path: Path) -> bytes:
    """Return the file's bytes if it is a regular file no one but its owner can access."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretFileError(f"{path} does not exist") from None
    except OSError as error:
        raise SecretFileError(f"{path} cannot be opened: {error.strerror}") from None
    try:
        # fstat on the open file, so the mode checked is the mode of what is read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"{path} is not a regular file")
        # Whoever owns the file can replace the secret (a community, a key): only root or
        # the daemon's own user may.
        if info.st_uid not in (0, os.geteuid()):
            raise SecretFileError(
                f"{path} is owned by uid {info.st_uid}; a secret file must belong to root or to "
                f"the user the daemon runs as (uid {os.geteuid()})")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretFileError(
                f"{path} has mode {mode:04o}; a secret file must not be accessible by group "
                f"or others (chmod 600 {path})")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise SecretFileError(f"{path} cannot be read: {error.strerror}") from None
    finally:
        os.close(fd)


def _text(data: bytes, path: Path) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not UTF-8 text") from None
    # Editors and `echo` add one newline; it is not part of the secret.
    text = text.removesuffix("\r\n") if text.endswith("\r\n") else text.removesuffix("\n")
    if not text:
        raise SecretFileError(f"{path} is empty")
    return text


def _read_text(read: SecretReader, path: Path, min_length: int) -> str:
    text = _text(read(path), path)
    if len(text) < min_length:
        raise SecretFileError(f"{path} holds fewer than {min_length} characters")
    return text


# Per table: (file field, name of the resolved secret, minimum length).
_SECRET_FIELDS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "communities": (("name_file", "name", 1),),
    "users": (("auth_key_file", "auth_key", MIN_PASSPHRASE), ("priv_key_file", "priv_key", MIN_PASSPHRASE)),
    "targets": (("community_file", "community", 1),),
}

_Row = TypeVar("_Row", bound=WithSecrets)


def resolve_table(table: str, rows: tuple[_Row | None, ...], read: SecretReader
                  ) -> tuple[tuple[_Row | None, ...], list[Issue]]:
    """Attach the contents of every `*_file` in snmp.<table>; report each file that cannot be used.

    Rows that failed validation (None) are passed through untouched.
    """
    issues: list[Issue] = []
    resolved: list[_Row | None] = []
    for i, row in enumerate(rows):
        if row is not None:
            secrets: dict[str, str] = {}
            for file_field, name, min_length in _SECRET_FIELDS[table]:
                path = getattr(row, file_field)
                if path is None:
                    continue
                try:
                    secrets[name] = _read_text(read, path, min_length)
                except SecretFileError as error:
                    issues.append((("snmp", table, i, file_field), str(error)))
            row = row.with_resolved(**secrets) if secrets else row
        resolved.append(row)
    return tuple(resolved), issues


def resolve_heartbeat_key(heartbeat: HeartbeatConfig, read: SecretReader
                          ) -> tuple[HeartbeatConfig, list[Issue]]:
    """Attach the heartbeat HMAC key (raw bytes: a binary key may well end in a newline)."""
    if heartbeat.key_file is None:
        return heartbeat, []
    try:
        key = read(heartbeat.key_file)
    except SecretFileError as error:
        return heartbeat, [(("heartbeat", "key_file"), str(error))]
    if not key:
        return heartbeat, [(("heartbeat", "key_file"), f"{heartbeat.key_file} is empty")]
    return heartbeat.with_resolved(key=key), []


def resolve_email_password(email: EmailConfig, read: SecretReader) -> tuple[EmailConfig, list[Issue]]:
    """Attach the SMTP password read from notify.email.password_file."""
    if email.password_file is None:
        return email, []
    try:
        password = _read_text(read, email.password_file, 1)
    except SecretFileError as error:
        return email, [(("notify", "email", "password_file"), str(error))]
    return email.with_resolved(password=password), []


def resolve_web(web: WebConfig, read: SecretReader) -> tuple[WebConfig, list[Issue]]:
    """Attach the web panel's users read from web.users_file, and check that the TLS key
    file is a secret file (its bytes are loaded by the panel, from the same path)."""
    issues: list[Issue] = []
    if web.tls_key_file is not None:
        try:
            read(web.tls_key_file)
        except SecretFileError as error:
            issues.append((("web", "tls_key_file"), str(error)))
    if web.users_file is None:
        return web, issues
    try:
        users = parse_users(_text(read(web.users_file), web.users_file))
    except (SecretFileError, UsersFileError) as error:
        where = "" if isinstance(error, SecretFileError) else f"{web.users_file}: "
        return web, issues + [(("web", "users_file"), f"{where}{error}")]
    inline = {user.name for user in web.users}
    twice = sorted(inline & {user.name for user in users})
    if twice:
        issues.append((("web", "users_file"), f"users also given inline in web.users: {', '.join(twice)}"))
    if web.enabled and not users and not web.users:
        issues.append((("web", "users_file"), f"{web.users_file} holds no user: nobody could log in"))
    return web.with_resolved(users=users), issues
