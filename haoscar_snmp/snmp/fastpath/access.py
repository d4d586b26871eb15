"""Which communities may read HAOSCAR-MIB, decided by the engine's own VACM tables.

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
"""

from __future__ import annotations

from typing import Any, Callable

from pysnmp.proto import error as perror

from ..credentials import NO_AUTH, Registered
from ..mib import OID
from .request import V1

_MODEL = {V1: 1}        # SNMPv1 is security model 1, SNMPv2c 2


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
