"""The settings exchange's requests and answers on the wire: signed, bound to both heads' runs,
sent again until answered.

The exchange job (`sync.py`) decides what to ask the peer and what to answer it; this
part carries the datagrams (`syncproto.py`) and owns what carrying them takes: the
message IDs, the requests waiting for their answers, the answers already given (a
request comes twice, once per LAN, and again until answered), the heartbeat keys, and
the count of datagrams refused. It sends through the heartbeat process (`Link`) and
reads the nonces and key IDs that process reports into the channel (`channel.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from haoscar_snmp.config.clustersync import Version
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.keys import key_id
from haoscar_snmp.core.text import printable

from . import syncproto
from .channel import SettingsChannel
from .syncproto import Kind, Message

log = logging.getLogger(__name__)

RESEND_S = 0.1             # a request is sent again this often until answered (datagrams get lost)


class Link(Protocol):
    """The heartbeat process's side that the exchange sends through (fcaps/fault/heartbeat/process.py)."""

    def send_config(self, data: bytes) -> None: ...


class Exchange:
    """Requests to the peer and answers to its requests, for one run of this head."""

    def __init__(self, me: str, peer: str, link: Link, channel: SettingsChannel,
                 config: Callable[[], Config]) -> None:
        self.me = me
        self.peer = peer
        self.link = link
        self.channel = channel
        self.config = config
        self.bad = 0                # datagrams refused, and settings that could not be read
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._answered = syncproto.Answered()
        self._keys_held: dict[int, bytes] = {}
        self.remember_keys()

    async def request(self, kind: Kind, body: dict[str, Any], timeout: float) -> Message | None:
        """Send a request (again every RESEND_S) until answered or `timeout`; None if not."""
        mine, theirs = self.channel.nonces
        if not theirs:
            return None
        msg_id = next(self._ids)
        data = syncproto.encode(Message(kind, mine, theirs, msg_id, 0, {"from": self.me, **body}), self._key())
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = waiter
        try:
            for _ in range(max(1, round(timeout / RESEND_S))):     # bounded in count and time
                self.link.send_config(data)
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), RESEND_S)
                except asyncio.TimeoutError:
                    continue
            return None
        finally:
            self._waiting.pop(msg_id, None)
            waiter.cancel()

    def take(self, data: bytes) -> Message | None:
        """One datagram from the peer: an answer goes to the request waiting for it; a
        request is returned once, to be served (an answer already given is sent again);
        anything else is dropped and counted. None: nothing to serve."""
        try:
            msg = syncproto.decode(data, self._keys())
        except (syncproto.DecodeError, syncproto.AuthError) as error:
            self.refused(f"unreadable: {error}")
            return None
        if msg.sender != self.peer:
            self.refused(f"from {msg.sender!r}, not the peer head")
            return None
        mine, theirs = self.channel.nonces
        if not msg.kind.is_request:
            waiter = self._waiting.get(msg.reply_to)
            if msg.echo_nonce != mine:
                self.refused("an answer to a request of another run")
            elif waiter is not None and not waiter.done():
                waiter.set_result(msg)
            return None     # otherwise the copy from the other LAN, or a late answer
        if not theirs or msg.sender_nonce != theirs or msg.echo_nonce != mine:
            self.refused("a request not bound to both heads' current runs (a recording, or a restart)")
            return None
        seen, answer = self._answered.lookup(msg.sender_nonce, msg.msg_id)
        if seen:
            if answer is not None:
                self.link.send_config(answer)   # the requester did not get it: again
            return None
        self._answered.taking(msg.msg_id)
        return msg

    def answer(self, request: Message, kind: Kind, body: dict[str, Any]) -> None:
        mine = self.channel.nonces[0]
        data = syncproto.encode(Message(kind, mine, request.sender_nonce, next(self._ids), request.msg_id,
                                        {"from": self.me, **body}), self._key())
        self._answered.answered(request.msg_id, data)
        self.link.send_config(data)

    def refused(self, why: str = "") -> None:
        """A datagram (or the settings in one) that cannot be used: counted, and logged
        when `why` says why (the first ten, then one in a thousand)."""
        self.bad += 1
        if why and (self.bad <= 10 or self.bad % 1000 == 0):
            log.warning("settings-exchange datagram dropped (%d so far): %s", self.bad, printable(why))

    # -- keys ----------------------------------------------------------------------------

    def remember_keys(self) -> dict[int, bytes]:
        """The heartbeat keys this head has held (the current one and, after a reload
        that changed it, the one before), by key ID."""
        key = self.config().heartbeat.key
        assert key, "a two-head cluster has a heartbeat key"
        kid = key_id(key)
        if kid not in self._keys_held:
            self._keys_held = {**dict(list(self._keys_held.items())[-1:]), kid: key}
        return self._keys_held

    def _key(self) -> bytes:
        """The key the heartbeat sends with: during a rotation, the old one until the
        peer has the new one too (fcaps/fault/heartbeat/peer.py KeyRing)."""
        keys = self.remember_keys()
        ids = self.channel.key_ids
        if ids and ids[0] in keys:
            return keys[ids[0]]
        return self.config().heartbeat.key or b""

    def _keys(self) -> tuple[bytes, ...]:
        """The keys the heartbeat accepts."""
        keys = self.remember_keys()
        ids = self.channel.key_ids[1:]
        return tuple(keys[i] for i in ids if i in keys) or (self._key(),)


def wire_version(version: Version) -> list[Any]:
    """A version as a message body holds it: [counter, head]."""
    return [version.counter, version.head]


def read_version(value: Any) -> Version | None:
    """The version in a message body, or None if it is not one."""
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and not isinstance(value[0], bool) and value[0] >= 0 and isinstance(value[1], str)):
        return Version(value[0], value[1])
    return None
