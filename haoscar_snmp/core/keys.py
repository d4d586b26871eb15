"""Shared-key fingerprints: how the heartbeats and the settings exchange name a key
without sending it (a keyed hash), so either side can tell which key a message used."""

from __future__ import annotations

import hashlib
import hmac


def key_id(key: bytes) -> int:
    """A key's 32-bit fingerprint, as heartbeats carry it (not the key: a keyed hash)."""
    return int.from_bytes(hmac.new(key, b"haoscar heartbeat key id", hashlib.sha256).digest()[:4], "big")
