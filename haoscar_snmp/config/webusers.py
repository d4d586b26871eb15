"""The web panel's users: who may log in, with which role, and how a password is kept.

A users file holds one user a line, `name:role:hash`, where `role` is `read` or `write`
and `hash` is `scrypt$<log2 N>$<r>$<p>$<salt>$<key>` (salt and key in unpadded
base64url). Blank lines and lines starting with `#` are ignored. The file is a secret
file (read with `secretfiles.read_secret_file`: mode 0600, owned by root or the
daemon's user), since a hash lets whoever reads it guess passwords offline.

The hash is the standard library's scrypt, with a salt of its own for every user: it
costs memory as well as time, so a guesser cannot run it cheaply on a GPU, and it needs
no package beyond Python. The cost is stored in each hash, so a later change of the
default cost leaves existing users working. Nothing here logs or returns a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

ROLES = ("read", "write")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")
# 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s a hash on a head node: slow enough to
# make offline guessing costly, quick enough for a login.
SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_MAX_LOG2_N = 20      # a hash asking for more memory than 1 GiB is refused, not computed


class UsersFileError(ValueError):
    """A users file (or one of its lines) cannot be used; the message says where and why."""


@dataclass(frozen=True)
class WebUser:
    name: str
    role: str
    hash: str = ""

    @property
    def can_write(self) -> bool:
        return self.role == "write"

    def __repr__(self) -> str:       # the hash stays out of logs and tracebacks
        return f"WebUser(name={self.name!r}, role={self.role!r})"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int, length: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=256 * n * r * p + (1 << 20))


def check_password_text(password: str) -> None:
    """Raise UsersFileError when a new password is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise UsersFileError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsersFileError(f"the password must have at most {MAX_PASSWORD} characters")


def hash_password(password: str, *, log2_n: int = SCRYPT_LOG2_N) -> str:
    """A new hash of `password`, with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, log2_n, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"scrypt${log2_n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise UsersFileError("the hash must read scrypt$<log2 N>$<r>$<p>$<salt>$<key>")
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise UsersFileError("the hash has a field that is not a number or not base64url") from None
    if not (10 <= log2_n <= _MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise UsersFileError(f"the hash's cost (log2 N {log2_n}, r {r}, p {p}) is outside "
                             f"log2 N 10..{_MAX_LOG2_N}, r 1..32, p 1..16")
    if len(salt) < 8 or len(key) < 16:
        raise UsersFileError("the hash's salt or key is too short")
    return log2_n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (compared in constant time)."""
    try:
        log2_n, r, p, salt, key = _parse_hash(stored)
    except UsersFileError:
        return False
    if len(password) > MAX_PASSWORD:
        return False
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p, len(key)), key)


# Verified against when the name is unknown, so that an unknown name costs as long as a
# wrong password (no probing for names by timing).
DUMMY_HASH = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def check_user(name: str, role: str, hash_text: str) -> WebUser:
    """One user, checked; raises UsersFileError saying what is wrong."""
    if not NAME_PATTERN.fullmatch(name):
        raise UsersFileError(f"user name {name!r} must be 1..32 characters from A-Z a-z 0-9 . _ -")
    if role not in ROLES:
        raise UsersFileError(f"user {name}: role must be 'read' or 'write', not {role!r}")
    try:
        _parse_hash(hash_text)
    except UsersFileError as error:
        raise UsersFileError(f"user {name}: {error}") from None
    return WebUser(name, role, hash_text)


def parse_users(text: str) -> tuple[WebUser, ...]:
    """Every user of a users file; raises UsersFileError naming the first bad line."""
    users: dict[str, WebUser] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3:
            raise UsersFileError(f"line {number}: expected name:role:hash")
        try:
            user = check_user(*fields)
        except UsersFileError as error:
            raise UsersFileError(f"line {number}: {error}") from None
        if user.name in users:
            raise UsersFileError(f"line {number}: user {user.name} is given twice")
        users[user.name] = user
    return tuple(users.values())


def render_users(users: tuple[WebUser, ...] | list[WebUser], header: str = "") -> str:
    """A users file's text (what `haoscar-snmp web-user` writes)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{user.name}:{user.role}:{user.hash}" for user in users]
    return "\n".join(lines) + "\n"
