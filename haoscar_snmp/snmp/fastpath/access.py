"""Which communities and SNMPv3 users may read HAOSCAR-MIB, decided by the engine's own
VACM tables; the users' localised keys, read from pysnmp's USM tables.

A community is looked up in the communities the agent registered (`credentials.Registered`:
community -> security name, the same entries pysnmp's community model matches). Its read
access to the MIB's subtree is then asked of pysnmp's VACM once per (security model,
security name), with the security level noAuthNoPriv and the default context, exactly as
the pysnmp path asks it (`instrum.HaoscarInstrumController._readable`): every view the
agent defines includes or excludes the subtree as a whole. The answers are kept until the
credentials are replaced (a reload registers a new `Registered`).

A community that is unknown, or whose view does not include the subtree (a trap-only
community), is not the fast path's: pysnmp answers it and counts it as it always did
(snmpInBadCommunityNames, the agent's authentication-failure hook).

`UserAccess` does the same for SNMPv3 users (see its docstring).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Callable

from pyasn1.error import PyAsn1Error
from pysnmp.proto import error as perror
from pysnmp.smi import error as smi_error

from ..credentials import AUTH, NO_AUTH, PRIV, Registered
from ..mib import OID
from .request import V1
from .usm import AUTH_NO_PRIV, AUTH_PRIV, UserKeys

_MODEL = {V1: 1}        # SNMPv1 is security model 1, SNMPv2c 2
# The protocols the configuration accepts (credentials.AUTH, PRIV): the hash and the
# digest length of each HMAC (RFC 3414, RFC 7860), the AES key length of each cipher.
_AUTH = {tuple(AUTH[name]): (hash_, n) for name, hash_, n in (
    ("sha", hashlib.sha1, 12), ("sha224", hashlib.sha224, 16), ("sha256", hashlib.sha256, 24),
    ("sha384", hashlib.sha384, 32), ("sha512", hashlib.sha512, 48))}
_PRIV = {tuple(PRIV[name]): n for name, n in (("none", 0), ("aes128", 16), ("aes192", 24), ("aes256", 32))}


class CommunityAccess:
    """Read access of a community to the MIB's subtree, as pysnmp's VACM decides it."""

    def __init__(self, engine: Any, registered: Callable[[], Registered], root: OID) -> None:
        self._engine = engine
        self._registered = registered
        self._root = root
        self._seen: Registered | None = None
        self._names: dict[bytes, str] = {}
        self._readable: dict[tuple[int, str], bool] = {}

    def readable(self, version: int, community: bytes) -> bool:
        registered = self._registered()
        if registered is not self._seen:
            self._refresh(registered)
        name = self._names.get(community)
        if name is None:
            return False
        model = _MODEL.get(version, 2)
        ok = self._readable.get((model, name))
        if ok is None:
            ok = self._ask_vacm(model, name)
            self._readable[(model, name)] = ok
        return ok

    def _refresh(self, registered: Registered) -> None:
        names: dict[bytes, str] = {}
        for community, name in registered.community_names.items():
            try:
                names[community.encode("iso-8859-1")] = name   # as pyasn1 stores a str
            except UnicodeEncodeError:
                continue
        self._names, self._readable, self._seen = names, {}, registered

    def _ask_vacm(self, model: int, name: str) -> bool:
        acm = self._engine.access_control_model[3]
        try:
            acm.is_access_allowed(self._engine, model, name.encode(), NO_AUTH, "read", b"", self._root)
        except perror.StatusInformation:
            return False
        return True


class UserAccess:
    """The SNMPv3 users of our engine that may read the MIB, with their localised keys,
    as pysnmp's USM and VACM hold them (`usm.Users`).

    The keys are those pysnmp localised when the user was added
    (PYSNMP-USM-MIB pysnmpUsmKeyAuthLocalized / pysnmpUsmKeyPrivLocalized, the columns its
    USM reads for every message), read once per user and again after a reload replaced
    the credentials (a new `Registered`). A user is served only at the one level its keys
    define (authPriv with a privacy key, else authNoPriv: `credentials.register`), and
    only if pysnmp's VACM gives that user at that level a read view including the MIB's
    subtree in the default context, asked with the call the pysnmp path makes. A protocol
    this module does not know leaves the user to pysnmp.
    """

    def __init__(self, engine: Any, registered: Callable[[], Registered], root: OID) -> None:
        self._engine = engine
        self._registered = registered
        self._root = root
        self._seen: Registered | None = None
        self._users: dict[bytes, UserKeys] = {}
        builder = engine.get_mib_builder()
        (self._engine_id, self._boots, self._time) = builder.import_symbols(
            "__SNMP-FRAMEWORK-MIB", "snmpEngineID", "snmpEngineBoots", "snmpEngineTime")
        self._id = bytes(self._engine_id.syntax)

    def engine_id(self) -> bytes:
        return self._id

    def boots_and_time(self) -> tuple[int, int]:
        """pysnmp's snmpEngineBoots and snmpEngineTime. pysnmp keeps the engine's start
        (wall-clock seconds) as snmpEngineTime's value, and its clone() gives "now" as
        time.time() minus it, truncated: what its USM checks the window against and puts
        in responses and reports. The same sum here costs 0.5 us instead of 12. It is
        pysnmp's clock, not the agent's: the two paths must agree on it, and nothing
        that can cause a failover reads it."""
        return int(self._boots.syntax), int(time.time() - int(self._time.syntax))

    def user(self, name: bytes) -> UserKeys | None:
        registered = self._registered()
        if registered is not self._seen:
            self._refresh(registered)
        return self._users.get(name)

    def _refresh(self, registered: Registered) -> None:
        self._id = bytes(self._engine_id.syntax)
        users: dict[bytes, UserKeys] = {}
        for name in registered.users:
            try:
                keys = self._read(name)
            except (perror.StatusInformation, smi_error.SmiError, PyAsn1Error, KeyError, ValueError):
                keys = None
            if keys is not None:
                users[keys.name] = keys
        self._users, self._seen = users, registered

    def _read(self, name: str) -> UserKeys | None:
        builder = self._engine.get_mib_builder()
        (entry,) = builder.import_symbols("SNMP-USER-BASED-SM-MIB", "usmUserEntry")
        (keys,) = builder.import_symbols("PYSNMP-USM-MIB", "pysnmpUsmKeyEntry")
        index = entry.getInstIdFromIndices(self._engine_id.syntax, name)

        def column(table: Any, n: int) -> Any:
            return table.getNode(table.name + (n,) + index).syntax
        user_name, sec_name = column(entry, 2).asOctets(), column(entry, 3)
        auth = _AUTH.get(tuple(column(entry, 5)))
        priv = _PRIV.get(tuple(column(entry, 8)), -1)
        if auth is None or priv == -1:
            return None
        digest, digest_len = auth
        priv_key = None
        level = AUTH_NO_PRIV
        if priv:
            priv_key = column(keys, 2).asOctets()[:priv]
            if len(priv_key) != priv:
                return None
            level = AUTH_PRIV
        acm = self._engine.access_control_model[3]
        try:
            acm.is_access_allowed(self._engine, 3, sec_name.asOctets(), level, "read", b"", self._root)
        except perror.StatusInformation:
            return None
        mac = hmac.new(column(keys, 1).asOctets(), digestmod=digest)
        return UserKeys(user_name, level, mac, digest_len, priv_key)
