"""Value types of the configuration: names, addresses, endpoints, paths and secrets.

Each type carries its own validator with an operator-readable message, so a bad value
is reported as `heads[1].lan_a: '10.0.0.300' is not an IPv4 or IPv6 address` rather
than as pydantic's generic text. Nothing here does I/O: paths are made absolute only
when the loader passes `base_dir` in the validation context.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

MIN_PASSPHRASE = 8  # RFC 3414's password-to-key algorithm needs at least 8 octets


def _printable(value: str) -> str:
    # HAOSCAR-MIB shows these as DisplayString, which is printable ASCII (RFC 2579).
    if not all(" " <= ch <= "~" for ch in value):
        raise ValueError("must be printable ASCII (no control or non-ASCII characters)")
    return value


def _node_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value):
        raise ValueError("must be 1..64 characters from A-Z a-z 0-9 . _ -")
    return value


def _ifname(value: str) -> str:
    # The kernel's dev_valid_name(): < 16 bytes, not "." or "..", no "/", ":" or spaces.
    if not 1 <= len(value) <= 15 or value in (".", "..") or re.search(r"[/:\s]", value):
        raise ValueError("must be a Linux interface name: 1..15 characters, no '/', ':' or spaces")
    return value


def _ip(value: Any) -> IPv4Address | IPv6Address:
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string holding an IPv4 or IPv6 address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _email(value: str) -> str:
    if len(value) > 255 or not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    # Relative paths are relative to the config file's directory, not to wherever the
    # daemon happened to be started; the loader passes that directory in.
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        return Path(base) / value
    return value


def _state_dir(value: Any, info: ValidationInfo) -> Any:
    if value == "":
        default = (info.context or {}).get("default_state_dir")
        if default is None:
            raise ValueError('"" means the default state directory, which only load_config() works out')
        return default
    return value


def _passphrase(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_PASSPHRASE:
        raise ValueError(f"must be at least {MIN_PASSPHRASE} characters")
    return value


def _nonempty_secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


def _engine_id(value: str) -> str:
    # "" or hex digits (optional 0x), normalised to lower case without the 0x.
    hexdigits = value.lower().removeprefix("0x")
    if value and (not re.fullmatch(r"[0-9a-f]{10,64}", hexdigits) or len(hexdigits) % 2):
        raise ValueError("must be empty or 5..32 octets as hex digits, e.g. 80007ed9040102")
    return hexdigits


def _agentx_master(value: str) -> str:
    if value.startswith("tcp:"):
        fields = parse_endpoint(value.removeprefix("tcp:"))
        _ip(fields["host"])
        if not 1 <= fields["port"] <= 65535:
            raise ValueError(f"{value!r}: port must be 1..65535")
    elif not value.startswith("/"):
        raise ValueError('must be an absolute unix socket path or "tcp:HOST:PORT"')
    return value


Text = Annotated[str, AfterValidator(_printable)]
NodeName = Annotated[str, AfterValidator(_node_name)]
IfName = Annotated[str, AfterValidator(_ifname)]
IpAddress = Annotated[IPv4Address | IPv6Address, PlainValidator(_ip)]
Email = Annotated[str, AfterValidator(_email)]
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
StateDir = Annotated[ConfigPath, BeforeValidator(_state_dir)]
EngineId = Annotated[str, AfterValidator(_engine_id)]
AgentxMaster = Annotated[str, AfterValidator(_agentx_master)]
Passphrase = Annotated[SecretStr, AfterValidator(_passphrase)]
Secret = Annotated[SecretStr, AfterValidator(_nonempty_secret)]
Port = Annotated[int, Field(ge=1, le=65535)]
# 0 = "not given"; the default is not validated, so only an explicit 0 is rejected.
RowIndex = Annotated[int, Field(ge=1, le=65535)]


class FrozenModel(BaseModel):
    """Base of every configuration model: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WithSecrets(FrozenModel):
    """A model whose secrets may come from files the loader read (kept out of repr/dumps)."""

    _resolved: dict[str, Any] = PrivateAttr(default_factory=dict)

    def with_resolved(self, **values: Any) -> Self:
        """A copy carrying secret values read from `*_file`s."""
        copy = self.model_copy()
        copy._resolved = {**self._resolved, **values}
        return copy

    def _secret(self, name: str, inline: SecretStr | None) -> str | None:
        if name in self._resolved:
            return self._resolved[name]
        return inline.get_secret_value() if inline is not None else None


class Endpoint(FrozenModel):
    """An IP literal and port, written "192.0.2.1:161" or "[2001:db8::1]:161"."""

    host: str
    port: Port

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return parse_endpoint(value) if isinstance(value, str) else value

    @field_validator("host")
    @classmethod
    def _canonical_host(cls, value: str) -> str:
        # Literals only: resolving names at load time would let a DNS outage stop the agent.
        return str(_ip(value))

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.family == socket.AF_INET6 else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> dict[str, Any]:
    """Split "host:port" / "[v6]:port" into fields; raises ValueError with an operator's message."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or "]" in host or ":" not in host:
            raise ValueError(f"{text!r}: write IPv6 endpoints as [ADDRESS]:PORT, IPv4 ones as ADDRESS:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{text!r}: expected ADDRESS:PORT (IPv6 addresses in brackets: [::1]:161)")
    if not port.isdigit():
        raise ValueError(f"{text!r}: port must be a number")
    return {"host": host, "port": int(port)}
