"""What a service check's target means for each check type, parsed and validated.

A service's `check` column is one string whatever the type (a command, a unit, a pid file
or process name, host:port, a URL), so that existing rows and the MIB column stay as
they are. This module turns it, with `send` and `expect`, into a typed `CheckSpec`, or
says exactly what is wrong; the configuration rules and the SET path use it to refuse a
bad row, and the checks in fcaps/fault/services/checks.py use it to run a good one. Pure: no I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import urlsplit


class CheckType(enum.StrEnum):
    """How `check` is read; the values are the configuration file's words."""

    COMMAND = "command"
    SYSTEMD = "systemd"
    PROCESS = "process"
    TCP = "tcp"
    UDP = "udp"
    HTTP = "http"


# HTTP statuses a check accepts when `expect` is empty: success and redirection.
DEFAULT_HTTP_STATUSES = ((200, 399),)
# systemd unit names: letters, digits and ":-_.\@" (systemd.unit(5)), at most 255.
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]{1,255}")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[nrt\\])")


@dataclass(frozen=True)
class CheckSpec:
    """A check, parsed: exactly the fields its type uses are set."""

    type: CheckType
    command: str = ""                       # COMMAND
    unit: str = ""                          # SYSTEMD
    pidfile: str = ""                       # PROCESS, by pid file
    process_name: str = ""                  # PROCESS, by name
    host: str = ""                          # TCP, UDP, HTTP
    port: int = 0
    url: str = ""                           # HTTP
    send: bytes = b""                       # UDP
    expect: bytes = b""                     # UDP: the reply must contain it
    statuses: tuple[tuple[int, int], ...] = ()   # HTTP: accepted status ranges

    def accepts_status(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.statuses)


class CheckSpecError(ValueError):
    """A check that cannot be read; `key` is the field at fault (check, send or expect)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def unescape(text: str, key: str) -> bytes:
    r"""`\n`, `\r`, `\t`, `\\` and `\xHH` -> octets; any other backslash is an error."""
    out = bytearray()
    pos = 0
    while pos < len(text):
        if text[pos] != "\\":
            out += text[pos].encode()
            pos += 1
            continue
        match = _ESCAPE.match(text, pos)
        if match is None:
            raise CheckSpecError(key, f"bad escape at position {pos + 1}: "
                                      r"use \n, \r, \t, \\ or \xHH")
        code = match.group(1)
        out += bytes([int(code[1:], 16)]) if code[0] == "x" else \
            {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}[code]
        pos = match.end()
    return bytes(out)


def host_port(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" (a name or an address); raises CheckSpecError."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        ok = bool(sep) and ":" in host and "]" not in host
    else:
        host, sep, port = text.rpartition(":")
        ok = bool(sep) and ":" not in host
    if not ok or not host or any(c.isspace() for c in host):
        raise CheckSpecError("check", f"{text!r}: expected HOST:PORT ([ADDRESS]:PORT for IPv6)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise CheckSpecError("check", f"{text!r}: the port must be a number in 1..65535")
    return host, int(port)


def status_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """"200", "200-299,301" -> ((200, 200), (200, 299), (301, 301)); raises CheckSpecError."""
    ranges = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise CheckSpecError("expect", f"{text!r}: expected status codes and ranges, "
                                           f"e.g. 200 or 200-299,301")
        lo, hi = int(low), int(high) if sep else int(low)
        if not (100 <= lo <= hi <= 599):
            raise CheckSpecError("expect", f"{text!r}: status codes are 100..599, a range low-high")
        ranges.append((lo, hi))
    return tuple(ranges)


def parse(check_type: CheckType | str, check: str, send: str = "", expect: str = "") -> CheckSpec:
    """The check as its type reads it; raises CheckSpecError naming the field at fault."""
    kind = CheckType(check_type)
    if send and kind is not CheckType.UDP:
        raise CheckSpecError("send", f"only udp checks send a request (this one is {kind.value})")
    if expect and kind not in (CheckType.UDP, CheckType.HTTP):
        raise CheckSpecError("expect", f"only udp and http checks have an expected answer "
                                       f"(this one is {kind.value})")
    if not check.strip():
        raise CheckSpecError("check", "must not be empty")
    if kind is CheckType.COMMAND:
        return CheckSpec(kind, command=check)
    if kind is CheckType.SYSTEMD:
        if not _UNIT.fullmatch(check):
            raise CheckSpecError("check", f"{check!r} is not a systemd unit name "
                                          f"(letters, digits and :-_.\\@, e.g. nfs-server.service)")
        return CheckSpec(kind, unit=check)
    if kind is CheckType.PROCESS:
        if check.startswith("/"):
            return CheckSpec(kind, pidfile=check)
        if "/" in check or check != check.strip():
            raise CheckSpecError("check", f"{check!r}: give an absolute pid file path, or a process "
                                          f"name without '/' (its base name)")
        return CheckSpec(kind, process_name=check)
    if kind in (CheckType.TCP, CheckType.UDP):
        host, port = host_port(check)
        if kind is CheckType.TCP:
            return CheckSpec(kind, host=host, port=port)
        return CheckSpec(kind, host=host, port=port, send=unescape(send, "send"),
                         expect=unescape(expect, "expect"))
    url = urlsplit(check)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CheckSpecError("check", f"{check!r}: expected an http:// or https:// URL with a host")
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        raise CheckSpecError("check", f"{check!r}: the port must be a number in 1..65535") from None
    statuses = status_ranges(expect) if expect else DEFAULT_HTTP_STATUSES
    return CheckSpec(kind, host=url.hostname, port=port, url=check, statuses=statuses)
