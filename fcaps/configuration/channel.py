"""The settings exchange's way through the heartbeat process: what comes in, and the run's nonces.

The exchange's datagrams travel through the heartbeat process (`syncproto.py` says why),
and the exchange signs and binds them with what that process knows: this run's heartbeat
nonce and the peer's, and the key IDs it sends and accepts. The heartbeat process is
built after the configuration store (it needs the configuration), and the exchange after
the heartbeat process (it sends through it), so the way back, from the heartbeat process
to the exchange, cannot be a reference to the exchange. It is this channel, built first
and given to both:

    heartbeat process  --report, deliver-->  SettingsChannel  <--read, received--  exchange

The heartbeat process tells it, at each report, the nonces, the key IDs and how many
relayed datagrams it dropped, and hands it every datagram of the exchange from the peer;
the exchange (`sync.py`) reads the nonces and takes the datagrams in the order they
came. The channel knows neither side. The inbox is bounded: a datagram that finds it
full is dropped and counted, as the relay drops one it cannot carry.
"""

from __future__ import annotations

import asyncio

INBOX_LIMIT = 256    # datagrams waiting for the exchange; each request is answered in well under a heartbeat


class SettingsChannel:
    """Between the heartbeat process (writes) and the settings exchange (reads)."""

    def __init__(self, limit: int = INBOX_LIMIT) -> None:
        self.nonces: tuple[int, int] = (0, 0)     # this run's heartbeat nonce, the peer's (0: not heard)
        # Key IDs (key_id) the heartbeat sends with, then those it accepts: during a key
        # rotation the exchange signs and verifies as the heartbeat does.
        self.key_ids: tuple[int, ...] = ()
        self.relay_dropped = 0                    # counted by the heartbeat process
        self.overflowed = 0                       # counted here: the inbox was full
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(limit)

    # -- the heartbeat process's side ----------------------------------------------------

    def report(self, nonces: tuple[int, int], key_ids: tuple[int, ...], relay_dropped: int) -> None:
        """What the heartbeat process's latest report says."""
        self.nonces, self.key_ids, self.relay_dropped = nonces, key_ids, relay_dropped

    def deliver(self, data: bytes) -> None:
        """A datagram of the exchange from the peer."""
        try:
            self._inbox.put_nowait(data)
        except asyncio.QueueFull:
            self.overflowed += 1

    # -- the exchange's side ---------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Datagrams from the peer that never reached the exchange."""
        return self.relay_dropped + self.overflowed

    async def received(self) -> bytes:
        """The next datagram from the peer (waits for one)."""
        return await self._inbox.get()
