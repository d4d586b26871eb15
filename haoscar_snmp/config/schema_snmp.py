"""The SNMP agent and the operator's notifications: [snmp] with its communities, users,
targets and [snmp.agentx], and [notify] with [notify.email] (models re-exported by
`schema.py`).

Each field carries its classification (`keys.py`): cluster-wide or per-head, applied
live or restart-only. Everything under [snmp] is per-head: the listeners and engine ID
must differ, the system group describes the machine, and access and notification
targets may legitimately differ per head (keys are rotated one head at a time; a head
may reach the NMS by another route). The engine's own set-up is restart-only; the
credentials are replaced in the running engine (`Agent.reconfigure`), so a reload
applies them.
"""

from __future__ import annotations

import enum
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from haoscar_snmp.config.keys import CLUSTER_LIVE, PER_HEAD_LIVE, PER_HEAD_RESTART
from haoscar_snmp.config.values import (
    AgentxMaster,
    ConfigPath,
    Email,
    Endpoint,
    EngineId,
    FrozenModel,
    Passphrase,
    Port,
    Secret,
    Text,
    WithSecrets,
)


class Access(enum.StrEnum):
    READ = "read"
    WRITE = "write"


class AuthProtocol(enum.StrEnum):
    SHA = "sha"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class PrivProtocol(enum.StrEnum):
    NONE = "none"
    AES128 = "aes128"
    AES192 = "aes192"
    AES256 = "aes256"


class SnmpVersion(enum.StrEnum):
    V2C = "v2c"
    V3 = "v3"


class NotifyKind(enum.StrEnum):
    TRAP = "trap"
    INFORM = "inform"


class CommunityConfig(WithSecrets):
    name_inline: Annotated[Secret | None, PER_HEAD_LIVE] = Field(None, alias="name")
    name_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    access: Annotated[Access, PER_HEAD_LIVE] = Access.READ

    @property
    def secret(self) -> str:
        return self._secret("name", self.name_inline) or ""


class UserConfig(WithSecrets):
    name: Annotated[Text, Field(min_length=1, max_length=32), PER_HEAD_LIVE]
    auth_protocol: Annotated[AuthProtocol, PER_HEAD_LIVE]
    auth_key_inline: Annotated[Passphrase | None, PER_HEAD_LIVE] = Field(None, alias="auth_key")
    auth_key_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    priv_protocol: Annotated[PrivProtocol, PER_HEAD_LIVE]
    priv_key_inline: Annotated[Passphrase | None, PER_HEAD_LIVE] = Field(None, alias="priv_key")
    priv_key_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    access: Annotated[Access, PER_HEAD_LIVE] = Access.READ

    @property
    def auth_key(self) -> str | None:
        return self._secret("auth_key", self.auth_key_inline)

    @property
    def priv_key(self) -> str | None:
        return self._secret("priv_key", self.priv_key_inline)


class TargetConfig(WithSecrets):
    name: Annotated[Text, Field(min_length=1, max_length=32), PER_HEAD_LIVE]
    address: Annotated[Endpoint, PER_HEAD_LIVE]
    version: Annotated[SnmpVersion, PER_HEAD_LIVE]
    kind: Annotated[NotifyKind, PER_HEAD_LIVE] = NotifyKind.TRAP
    community_inline: Annotated[Secret | None, PER_HEAD_LIVE] = Field(None, alias="community")
    community_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    user: Annotated[str | None, PER_HEAD_LIVE] = None
    retries: Annotated[int, Field(ge=0, le=10), PER_HEAD_LIVE] = 3
    timeout_ms: Annotated[int, Field(ge=100, le=60000), PER_HEAD_LIVE] = 1500

    @property
    def community(self) -> str | None:
        return self._secret("community", self.community_inline)


class AgentxConfig(FrozenModel):
    """The AgentX subagent (haoscar_snmp/snmp/agentx/session.py): serve HAOSCAR-MIB
    through the host's snmpd. With snmp.listen empty it is the only way in (AgentX only);
    with both, the standalone agent answers on snmp.listen as well.

    Restart-only, all of it: the session is opened once, at start."""

    enabled: Annotated[bool, PER_HEAD_RESTART] = False
    master: Annotated[AgentxMaster, PER_HEAD_RESTART] = "/var/agentx/master"
    # How long we wait for the master's answer (Open, Register, Ping, Notify); the Open PDU
    # asks the master to wait as long for ours (in whole seconds, rounded up).
    timeout_ms: Annotated[int, Field(ge=100, le=60000), PER_HEAD_RESTART] = 1000
    # Pings in a row that may go unanswered, beyond the first, before the master counts
    # as dead and the session is opened again.
    retries: Annotated[int, Field(ge=0, le=10), PER_HEAD_RESTART] = 2
    ping_interval_ms: Annotated[int, Field(ge=100, le=600000), PER_HEAD_RESTART] = 5000
    # RFC 2741 registration priority: lower wins when two subagents register one subtree.
    priority: Annotated[int, Field(ge=1, le=255), PER_HEAD_RESTART] = 127
    # Only the default context is served.
    context: Annotated[Text, PER_HEAD_RESTART] = ""
    # Notifications waiting for the master (raised while it is away); beyond this many,
    # the oldest is dropped and counted.
    notify_queue: Annotated[int, Field(ge=1, le=10000), PER_HEAD_RESTART] = 100

    @field_validator("context")
    @classmethod
    def _default_context_only(cls, value: str) -> str:
        if value:
            raise ValueError("only the default context (\"\") is served over AgentX: remove the "
                             "setting, or map the context to the default one in snmpd.conf")
        return value


class SnmpConfig(FrozenModel):
    # The engine's own set-up, restart-only: listeners, engine ID, system group.
    # Empty only with [snmp.agentx] enabled: then snmpd is the only way in.
    listen: Annotated[tuple[Endpoint, ...], PER_HEAD_RESTART] = ()
    engine_id: Annotated[EngineId, PER_HEAD_RESTART] = ""
    sys_name: Annotated[Text, Field(max_length=255), PER_HEAD_RESTART] = ""
    sys_contact: Annotated[Text, Field(max_length=255), PER_HEAD_RESTART] = ""
    sys_location: Annotated[Text, Field(max_length=255), PER_HEAD_RESTART] = ""
    # Access and notifications, applied live.
    allow_v2c_write: Annotated[bool, PER_HEAD_LIVE] = False
    # snmpEnableAuthenTraps: send SNMPv2-MIB authenticationFailure on a refused request
    # (rate-limited). Off by default, as in net-snmp: a guesser would otherwise make the
    # agent send traffic to the NMS at the guesser's pace.
    auth_failure_traps: Annotated[bool, PER_HEAD_LIVE] = False
    communities: tuple[CommunityConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    targets: tuple[TargetConfig, ...] = ()
    agentx: AgentxConfig = AgentxConfig()

    @model_validator(mode="after")
    def _something_answers(self) -> Self:
        if not self.listen and not self.agentx.enabled:
            raise ValueError("listen is empty and [snmp.agentx] is not enabled: nothing would answer "
                             "SNMP (give listen endpoints, or enable AgentX, or both)")
        return self


class SmtpSecurity(enum.StrEnum):
    NONE = "none"            # plain SMTP (a relay on this host or a trusted LAN)
    STARTTLS = "starttls"    # plain connection upgraded with STARTTLS, certificate verified
    TLS = "tls"              # TLS from the first byte (port 465), certificate verified


class EmailConfig(WithSecrets):
    """Operator e-mail: one mail per incident and one when it is over (fault/mailer.py).

    Whether the operator is told, and who, is cluster-wide: mail goes from whichever
    head reports. How this head's mail leaves it (its relay, credentials, CA file,
    sender, retries and queue) is per-head: a head may use a relay on itself. All of it
    is applied live."""

    enabled: Annotated[bool, CLUSTER_LIVE] = False
    smtp_host: Annotated[Text, Field(min_length=1, max_length=255), PER_HEAD_LIVE] = "127.0.0.1"
    smtp_port: Annotated[Port, PER_HEAD_LIVE] = 25
    security: Annotated[SmtpSecurity, PER_HEAD_LIVE] = SmtpSecurity.NONE
    # CA certificates (PEM) that the server's certificate must chain to; unset: the system's.
    ca_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    username: Annotated[Annotated[Text, Field(min_length=1, max_length=255)] | None, PER_HEAD_LIVE] = None
    password_file: Annotated[ConfigPath | None, PER_HEAD_LIVE] = None
    sender: Annotated[Email, PER_HEAD_LIVE] = Field("haoscar@localhost", alias="from")
    to: Annotated[tuple[Email, ...], CLUSTER_LIVE] = ()
    timeout_ms: Annotated[int, Field(ge=100, le=600000), PER_HEAD_LIVE] = 10000
    retries: Annotated[int, Field(ge=0, le=10), PER_HEAD_LIVE] = 3
    retry_delay_ms: Annotated[int, Field(ge=100, le=3600000), PER_HEAD_LIVE] = 5000
    max_per_hour: Annotated[int, Field(ge=1, le=10000), PER_HEAD_LIVE] = 30
    queue_size: Annotated[int, Field(ge=1, le=10000), PER_HEAD_LIVE] = 100

    @property
    def password(self) -> str | None:
        """The SMTP password read from password_file, once loaded."""
        return self._resolved.get("password")


class NotifyConfig(FrozenModel):
    email: EmailConfig = EmailConfig()
    # An inform target whose inform was lost (after the target's own retries and
    # timeout_ms) gets haoscarAlarmResyncStart this often until it acknowledges one, then
    # its active alarms again (haoscar_snmp/snmp/notify.py). Trap targets: never.
    # Per-head, as the notification targets it concerns.
    inform_resync: Annotated[bool, PER_HEAD_LIVE] = True
    resync_interval_ms: Annotated[int, Field(ge=1000, le=3600000), PER_HEAD_LIVE] = 30000
