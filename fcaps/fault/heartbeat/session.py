"""Replay protection for heartbeats that does not trust anybody's wall clock. Pure code.

Each head draws a random 64-bit nonce at every start and sends it in its heartbeats; each
head echoes the nonce it last learned from the peer. A message counts as evidence that
the peer is alive only if:

1. its HMAC verifies and its sender is the configured peer (checked by the caller);
2. it echoes *our* current nonce: it was made after we started, so it is no recording
   of an earlier run of ours;
3. it is not from an earlier run of the peer that we already saw superseded (its nonce
   is not one we retired, and its epoch is not below the newest we accepted);
4. its (epoch, seq) is above the last one accepted on that path, so nothing recorded
   during this run of ours can be played back either.

Learning the peer's nonce (to echo it) needs no proof, because echoing a wrong nonce
costs only a round trip: while the peer is not heard, we echo the nonce of its latest
authenticated message; once a message passes the checks, its nonce is the one we echo.
Start-up therefore takes one round trip before heartbeats count, which the start-up
wait covers.

A peer that lost its boot counter (state directory wiped) restarts at a lower epoch. Its
messages echo our nonce, so they are genuine and fresh, but rule 3 keeps them from
counting; we learn its nonce and tell it, in `peer_epoch`, the highest epoch of it we
accepted; it continues above that (`Session.bumped_epoch`).

Wall-clock stamps play no part here: two heads whose clocks differ by an hour still
hear each other. The difference is measured and reported by the heartbeat instead.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque

from .proto import Heartbeat

RETIRED_NONCES = 16


def new_nonce() -> int:
    """A random, non-zero 64-bit nonce (zero means "not known yet" on the wire)."""
    return secrets.randbits(64) or 1


class Verdict(enum.Enum):
    OK = "ok"
    UNCONFIRMED = "does not echo our nonce yet (start-up handshake, or a recording)"
    REPLAY = "replayed or out of order"
    OLD_EPOCH = "peer restarted with a lower boot counter; telling it where to continue"
    UNKNOWN_SENDER = "unknown sender"


class Session:
    """The nonce handshake and the (epoch, seq) order for one peer, across all paths."""

    def __init__(self, peer: str, epoch: int, nonce: int | None = None) -> None:
        self.peer = peer
        self.epoch = epoch                 # ours; raised if the peer has seen a higher one
        self.nonce = nonce or new_nonce()  # ours, for this run
        self.peer_nonce = 0                # the peer's, as we echo it
        self.peer_epoch = 0                # the highest epoch of the peer we accepted
        self._last: dict[int, tuple[int, int]] = {}   # path -> last accepted (epoch, seq)
        self._retired: deque[int] = deque(maxlen=RETIRED_NONCES)
        self.bumped_epoch = False          # set when our epoch was raised; the caller persists

    def check(self, msg: Heartbeat, path: int, peer_heard: bool) -> Verdict:
        """Judge one authenticated message; `peer_heard` = the peer counts as alive now."""
        if msg.sender != self.peer:
            return Verdict.UNKNOWN_SENDER
        if msg.echo_nonce != self.nonce:
            if not peer_heard and msg.nonce not in self._retired:
                self.peer_nonce = msg.nonce   # echo it, so the peer can prove freshness
            if msg.echo_nonce and self.peer_epoch:
                # Once a handshake was done in this run, a message echoing a nonce that is
                # not ours is a recording (a peer that just started echoes 0, then ours).
                return Verdict.REPLAY
            return Verdict.UNCONFIRMED
        # From here on the message was made after we started: genuine and recent.
        if msg.nonce in self._retired:
            return Verdict.REPLAY
        if msg.epoch < self.peer_epoch:
            if msg.nonce != self.peer_nonce:  # a new run of the peer that lost its counter
                self._retire(self.peer_nonce)
                self.peer_nonce = msg.nonce
            return Verdict.OLD_EPOCH
        if (msg.epoch, msg.seq) <= self._last.get(path, (-1, -1)):
            return Verdict.REPLAY
        if msg.nonce != self.peer_nonce:
            self._retire(self.peer_nonce)      # the peer restarted: its old run is over
        self.peer_nonce = msg.nonce
        self.peer_epoch = msg.epoch
        self._last[path] = (msg.epoch, msg.seq)
        if msg.peer_epoch >= self.epoch:
            # The peer has seen this epoch of ours or a higher one before (we lost our
            # counter): continue above it, or our messages stay below its order.
            if msg.peer_epoch > self.epoch:
                self.epoch = msg.peer_epoch + 1
                self.bumped_epoch = True
        return Verdict.OK

    def _retire(self, nonce: int) -> None:
        if nonce and nonce not in self._retired:
            self._retired.append(nonce)
