"""A per-identity rate limit on the audit lines of refused requests, so one key cannot flush the log.

Every request that reaches a route gets its audit line, except that lines of refused requests
(any 4xx) are rate-limited per identity: the API key's name, or for requests without a valid key
the client's address. Each identity has a token bucket of `burst` lines refilled at `rate` lines
per second; a refused request that finds its bucket empty has no line of its own, and is counted
instead. The counts become one summary line per identity,

    {"time": ..., "event": "audit_dropped", "key": "scoring", "client": null, "dropped": 9120,
     "first_dropped": ..., "last_dropped": ...}

written before the identity's next admitted line once `summary_seconds` have passed since its last
summary, by any later audit write once `summary_seconds` have passed since the first uncounted
drop, when the identity is evicted (at most `max_identities` are tracked, least recently seen
first) and when the log closes. Served requests (2xx) and server faults (5xx) are never limited.

Hand-written: a token bucket is a few lines; the rate-limit libraries (limits, slowapi) limit
requests, not log lines, and would add a dependency for arithmetic.
"""

from __future__ import annotations

import collections
import threading
import time

from maasfin.serving.audit import timestamp


class _Bucket:
    __slots__ = ("tokens", "t", "dropped", "first", "last", "summarized")

    def __init__(self, tokens: float, t: float):
        self.tokens, self.t = tokens, t
        self.dropped = 0
        self.first = self.last = None
        self.summarized = t


class RefusalLimiter:
    def __init__(
        self, rate: float = 10.0, burst: int = 100, summary_seconds: float = 60.0, max_identities: int = 10_000
    ):
        if not rate > 0:
            raise ValueError(f"audit_refused_rate must be > 0, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"audit_refused_burst must be a positive integer, got {burst!r}")
        self.rate, self.burst = float(rate), int(burst)
        self.summary_seconds = float(summary_seconds)
        self.max_identities = int(max_identities)
        self._buckets: collections.OrderedDict[tuple, _Bucket] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._oldest_drop: float | None = None  # monotonic time of the oldest drop not yet summarized

    def admit(self, key: str | None, client: str | None, now: float | None = None) -> tuple[bool, list[dict]]:
        """(whether a refused request of this identity gets its line, summary lines to write first)."""
        now = time.monotonic() if now is None else now
        ident = ("key", key) if key is not None else ("client", client)
        summaries: list[dict] = []
        with self._lock:
            b = self._buckets.get(ident)
            if b is None:
                b = self._buckets[ident] = _Bucket(float(self.burst), now)
                while len(self._buckets) > self.max_identities:
                    old_ident, old = self._buckets.popitem(last=False)
                    if old.dropped:
                        summaries.append(self._summary(old_ident, old, now))
            else:
                self._buckets.move_to_end(ident)
                b.tokens = min(float(self.burst), b.tokens + (now - b.t) * self.rate)
                b.t = now
            allowed = b.tokens >= 1.0
            if allowed:
                b.tokens -= 1.0
                if b.dropped and now - b.summarized >= self.summary_seconds:
                    summaries.append(self._summary(ident, b, now))
            else:
                if not b.dropped:
                    b.first = timestamp()
                    if self._oldest_drop is None:
                        self._oldest_drop = now
                b.dropped += 1
                b.last = timestamp()
            summaries += self._due(now)
        return allowed, summaries

    def due(self, now: float | None = None) -> list[dict]:
        """Summary lines whose time has come (called on every audit write)."""
        now = time.monotonic() if now is None else now
        if self._oldest_drop is None or now - self._oldest_drop < self.summary_seconds:
            return []
        with self._lock:
            return self._due(now)

    def drain(self) -> list[dict]:
        """Every pending summary line (the log is closing)."""
        with self._lock:
            now = time.monotonic()
            return [self._summary(i, b, now) for i, b in self._buckets.items() if b.dropped]

    def _due(self, now: float) -> list[dict]:
        if self._oldest_drop is None or now - self._oldest_drop < self.summary_seconds:
            return []
        out = [self._summary(i, b, now) for i, b in self._buckets.items() if b.dropped]
        self._oldest_drop = None
        return out

    def _summary(self, ident: tuple, b: _Bucket, now: float) -> dict:
        line = {
            "time": timestamp(),
            "event": "audit_dropped",
            "key": ident[1] if ident[0] == "key" else None,
            "client": ident[1] if ident[0] == "client" else None,
            "dropped": b.dropped,
            "first_dropped": b.first,
            "last_dropped": b.last,
        }
        b.dropped, b.first, b.last, b.summarized = 0, None, None, now
        return line
