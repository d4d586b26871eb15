"""The web panel's section, [web] (models re-exported by `schema.py`).

Every key is per-head and restart-only (`keys.py`): the panel is each head's own (its
listener, certificate, users and sessions; an operator may open one head's panel only,
or give the heads other users), and its listener and limits are set up once at start.
The users file's content is the exception the panel handles itself: it reads the file
again when the file changes (`haoscar_snmp/views/web/users.py`), no reload needed.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from haoscar_snmp.config.keys import PER_HEAD_RESTART
from haoscar_snmp.config.values import ConfigPath, Endpoint, FrozenModel, WithSecrets
from haoscar_snmp.config.webusers import NAME_PATTERN, ROLES, UsersFileError, WebUser, check_user


def _web_user_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError("must be 1..32 characters from A-Z a-z 0-9 . _ -")
    return value


def _web_role(value: str) -> str:
    if value not in ROLES:
        raise ValueError("must be 'read' or 'write'")
    return value


def _web_hash(value: str) -> str:
    try:
        check_user("x", "read", value)
    except UsersFileError as error:
        raise ValueError(str(error).removeprefix("user x: ")) from None
    return value


class MetricsAuth(enum.StrEnum):
    BASIC = "basic"
    NONE = "none"


class WebUserInline(FrozenModel):
    """A web panel user written in the configuration itself (demo configurations; real
    ones use `users_file`, a secret file: check-config and the daemon warn about these)."""

    name: Annotated[str, AfterValidator(_web_user_name), PER_HEAD_RESTART]
    role: Annotated[str, AfterValidator(_web_role), PER_HEAD_RESTART] = "read"
    password_hash: Annotated[str, AfterValidator(_web_hash), PER_HEAD_RESTART]


class WebConfig(WithSecrets):
    """The web panel served by the daemon (haoscar_snmp/views/web): off unless enabled.

    It listens on loopback by default (reach it through `ssh -L`); an address beyond
    loopback needs TLS, so that passwords and session cookies never cross a LAN in
    clear. Nobody gets in without a user from `users_file` (or the inline `users`)."""

    enabled: Annotated[bool, PER_HEAD_RESTART] = False
    # 16180 beside the demo's SNMP port 16161: above 1024, and clear of the 8080/8443
    # that web front ends on a head node often take.
    listen: Annotated[Endpoint, PER_HEAD_RESTART] = Endpoint(host="127.0.0.1", port=16180)
    tls_cert_file: Annotated[ConfigPath | None, PER_HEAD_RESTART] = None
    tls_key_file: Annotated[ConfigPath | None, PER_HEAD_RESTART] = None
    users_file: Annotated[ConfigPath | None, PER_HEAD_RESTART] = None
    users: tuple[WebUserInline, ...] = ()
    # A session ends after this long without a request, and in any case this long after
    # the login.
    session_idle_s: Annotated[int, Field(ge=60, le=86400), PER_HEAD_RESTART] = 900
    session_max_s: Annotated[int, Field(ge=300, le=604800), PER_HEAD_RESTART] = 28800
    max_sessions: Annotated[int, Field(ge=1, le=1000), PER_HEAD_RESTART] = 64
    # Pages open at once that receive live updates (server-sent events).
    max_live_clients: Annotated[int, Field(ge=1, le=256), PER_HEAD_RESTART] = 16
    # /metrics (Prometheus, OpenMetrics): "basic" asks for HTTP Basic authentication as a
    # user of the panel (any role; Prometheus sends it with basic_auth); "none" serves it
    # to whoever reaches the listener, and only when set explicitly.
    metrics_auth: Annotated[MetricsAuth, PER_HEAD_RESTART] = MetricsAuth.BASIC

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def file_users(self) -> tuple[WebUser, ...]:
        """The users read from users_file at load (the panel re-reads it when it changes)."""
        return self._resolved.get("users", ())

    def all_users(self) -> tuple[WebUser, ...]:
        inline = tuple(WebUser(u.name, u.role, u.password_hash) for u in self.users)
        return inline + self.file_users

    @model_validator(mode="after")
    def _safe(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both (TLS) or neither")
        if not self.enabled:
            return self
        if self.users_file is None and not self.users:
            raise ValueError("enabled without users: give users_file (see haoscar-snmp web-user)")
        if not self.tls and not ipaddress.ip_address(self.listen.host).is_loopback:
            raise ValueError(f"listen {self.listen} is beyond loopback without TLS: passwords and session "
                             f"cookies would cross the network in clear (set tls_cert_file and tls_key_file, "
                             f"or listen on 127.0.0.1 / [::1])")
        names = [u.name for u in self.users]
        if len(names) != len(set(names)):
            raise ValueError("users: a name is given twice")
        if self.session_max_s < self.session_idle_s:
            raise ValueError("session_max_s must be at least session_idle_s")
        return self
