"""A manager's side of SNMPv3 for the tests, built from pysnmp's own pieces: its message
classes and BER encoder (pyasn1), its USM authentication and privacy services, and its
key localisation. Nothing here uses the fast path's code, so the fast path's answers are
checked against an independent reading of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto import api
from pysnmp.proto.mpmod import rfc3412 as mp3
from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel, UsmSecurityParameters

from haoscar_snmp.snmp.credentials import AUTH, PRIV

p2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
AUTH_NAMES = ("sha", "sha224", "sha256", "sha384", "sha512")
PRIV_NAMES = ("none", "aes128", "aes192", "aes256")


@dataclass(frozen=True)
class Manager:
    """One user's keys, localised for one engine, as a manager holds them."""

    name: str
    auth: str
    priv: str
    auth_key: bytes
    priv_key: bytes | None
    engine_id: bytes

    @classmethod
    def of(cls, name: str, auth: str, priv: str, auth_pass: str, priv_pass: str | None,
           engine_id: bytes) -> Manager:
        a = SnmpUSMSecurityModel.AUTH_SERVICES[AUTH[auth]]
        eid = univ.OctetString(engine_id)
        auth_key = bytes(a.localize_key(a.hash_passphrase(auth_pass), eid))
        priv_key = None
        if priv != "none":
            s = SnmpUSMSecurityModel.PRIV_SERVICES[PRIV[priv]]
            priv_key = bytes(s.localize_key(AUTH[auth], s.hash_passphrase(AUTH[auth], priv_pass), eid))
        return cls(name, auth, priv, auth_key, priv_key, engine_id)

    @property
    def level(self) -> int:
        return 3 if self.priv_key is not None else 2

    def _auth(self) -> Any:
        return SnmpUSMSecurityModel.AUTH_SERVICES[AUTH[self.auth]]

    def _priv(self) -> Any:
        return SnmpUSMSecurityModel.PRIV_SERVICES[PRIV[self.priv]]

    def request(self, pdu: Any, boots: int, engine_time: int, msg_id: int = 77, max_size: int = 65507,
                level: int | None = None, context: bytes = b"", context_engine: bytes | None = None,
                engine_id: bytes | None = None, user: str | None = None, flags: int | None = None) -> bytes:
        """An SNMPv3 request carrying `pdu` (a v2c PDU object), authenticated and, at
        authPriv, encrypted as a manager would send it; the keyword arguments spoil it."""
        level = self.level if level is None else level
        scoped = mp3.ScopedPDU()
        scoped["contextEngineId"] = self.engine_id if context_engine is None else context_engine
        scoped["contextName"] = context
        scoped["data"].setComponentByType(pdu.tagSet, pdu)
        params = UsmSecurityParameters()
        params["msgAuthoritativeEngineId"] = self.engine_id if engine_id is None else engine_id
        params["msgAuthoritativeEngineBoots"] = boots
        params["msgAuthoritativeEngineTime"] = engine_time
        params["msgUserName"] = self.name if user is None else user
        params["msgAuthenticationParameters"] = bytes(self._auth().digest_length) if level > 1 else b""
        params["msgPrivacyParameters"] = b""
        msg = mp3.SNMPv3Message()
        msg["msgVersion"] = 3
        head = msg["msgGlobalData"]
        head["msgID"] = msg_id
        head["msgMaxSize"] = max_size
        head["msgFlags"] = bytes([{1: 0, 2: 1, 3: 3}[level] | 4 if flags is None else flags])
        head["msgSecurityModel"] = 3
        if level == 3:
            data, salt = self._priv().encrypt_data(univ.OctetString(self.priv_key), (boots, engine_time, None),
                                                   encoder.encode(scoped))
            params["msgPrivacyParameters"] = salt
            msg["msgData"]["encryptedPDU"] = data
        else:
            msg["msgData"]["plaintext"] = scoped
        msg["msgSecurityParameters"] = encoder.encode(params)
        whole = encoder.encode(msg)
        if level == 1:
            return whole
        return bytes(self._auth().authenticate_outgoing_message(univ.OctetString(self.auth_key), whole))

    def open(self, message: bytes) -> Response:
        """Check and decrypt a response (digest first); raises if it does not verify."""
        msg, rest = decoder.decode(message, asn1Spec=mp3.SNMPv3Message())
        assert rest == b""
        params, rest = decoder.decode(bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
        assert rest == b""
        flags = bytes(msg["msgGlobalData"]["msgFlags"])[0]
        if flags & 1:
            self._auth().authenticate_incoming_message(
                univ.OctetString(self.auth_key), params["msgAuthenticationParameters"], message)
        boots, engine_time = int(params["msgAuthoritativeEngineBoots"]), int(params["msgAuthoritativeEngineTime"])
        if flags & 2:
            plain = self._priv().decrypt_data(univ.OctetString(self.priv_key),
                                              (boots, engine_time, params["msgPrivacyParameters"]),
                                              msg["msgData"]["encryptedPDU"])
            scoped, _ = decoder.decode(plain, asn1Spec=mp3.ScopedPDU())
        else:
            scoped = msg["msgData"]["plaintext"]
        pdu = scoped["data"].getComponent()
        vbs = [(tuple(n), encoder.encode(v)) for n, v in p2.apiPDU.get_varbinds(pdu)]
        return Response(
            int(msg["msgGlobalData"]["msgID"]), int(msg["msgGlobalData"]["msgMaxSize"]), flags,
            bytes(params["msgAuthoritativeEngineId"]), boots, engine_time, bytes(params["msgUserName"]),
            bytes(params["msgPrivacyParameters"]), bytes(scoped["contextEngineId"]),
            bytes(scoped["contextName"]), pdu.tagSet,
            int(p2.apiPDU.get_error_status(pdu)), int(p2.apiPDU.get_error_index(pdu)), vbs)


@dataclass
class Response:
    msg_id: int
    max_size: int
    flags: int
    engine_id: bytes
    boots: int
    engine_time: int
    user: bytes
    salt: bytes
    context_engine: bytes
    context: bytes
    tag: Any
    status: int
    index: int
    varbinds: list[tuple[tuple[int, ...], bytes]]

    @property
    def answer(self) -> tuple[int, int, list[tuple[tuple[int, ...], bytes]]]:
        return self.status, self.index, self.varbinds


def pdu(kind: str, names: list[tuple[int, ...]], a: int = 0, b: int = 0, request_id: int = 4242) -> Any:
    """A v2c read PDU object (the PDU of an SNMPv3 scoped PDU)."""
    made = {"get": p2.GetRequestPDU, "next": p2.GetNextRequestPDU, "bulk": p2.GetBulkRequestPDU}[kind]()
    p2.apiPDU.set_defaults(made)
    p2.apiPDU.set_request_id(made, request_id)
    if kind == "bulk":
        p2.apiBulkPDU.set_non_repeaters(made, a)
        p2.apiBulkPDU.set_max_repetitions(made, b)
    p2.apiPDU.set_varbinds(made, [(n, p2.Null("")) for n in names])
    return made
