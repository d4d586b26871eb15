"""Login throttling, per source address and per user name, in bounded memory.

Each key (an address, a name) has a token bucket on the injected monotonic clock:
`burst` failed logins at once, then one per `period_s`. A login is refused before its
password is even checked while either of its buckets is empty. At most `max_keys`
buckets are kept per kind; beyond that the bucket least recently touched goes (its
key starts afresh, which costs a guesser more addresses than it saves them). A
success does not refill the address's bucket: one right password does not buy a
guesser more tries elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.ratelimit import RateLimiter

BURST = 5
PERIOD_S = 60.0
MAX_KEYS = 4096


class Buckets:
    def __init__(self, clock: Clock, burst: int, period_s: float, max_keys: int) -> None:
        self.clock = clock
        self.burst = burst
        self.period_s = period_s
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, RateLimiter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, key: str) -> RateLimiter:
        bucket = self._buckets.get(key)
        if bucket is None:
            while len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = RateLimiter(self.clock, self.burst, self.period_s)
        self._buckets.move_to_end(key)
        return bucket

    def ready(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        return bucket is None or bucket.ready()

    def fail(self, key: str) -> None:
        self._bucket(key).allow()


class LoginThrottle:
    def __init__(self, clock: Clock, burst: int = BURST, period_s: float = PERIOD_S,
                 max_keys: int = MAX_KEYS) -> None:
        self.addresses = Buckets(clock, burst, period_s, max_keys)
        self.names = Buckets(clock, burst, period_s, max_keys)
        self.refused = 0

    def allowed(self, address: str, name: str) -> bool:
        if self.addresses.ready(address) and self.names.ready(name.lower()[:64]):
            return True
        self.refused += 1
        return False

    def failed(self, address: str, name: str) -> None:
        self.addresses.fail(address)
        self.names.fail(name.lower()[:64])
