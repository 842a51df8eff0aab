"""Rate limits for overload and abuse protection: a token bucket (pure, time
passed in) and a per-source limiter with a bounded table of buckets.

A token bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; each admitted item takes one. The per-source table is an LRU bounded
by ``max_sources`` so that a scan from many addresses cannot grow memory
without bound: the least recently seen source is forgotten first (it starts
again with a full bucket, which is the cheap, safe direction to err in).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["TokenBucket", "RateLimit", "SourceRateLimiter", "LimiterStatistics"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored. ``now`` is any monotonic clock in seconds."""

    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        if not rate > 0:
            raise ValueError(f"rate: must be > 0 tokens per second, not {rate!r}")
        if not burst >= 1:
            raise ValueError(f"burst: must be >= 1 token, not {burst!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens if there are enough; say whether they were taken."""
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def retry_after(self, now: float, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be available (0 if they are now)."""
        self._refill(now)
        return max(0.0, (n - self.tokens) / self.rate)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """Requests per second allowed from one source address, with a burst allowance."""

    rate: float = 100.0
    burst: float = 200.0
    max_sources: int = 65536

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate: must be > 0, not {self.rate!r}")
        if not self.burst >= 1:
            raise ValueError(f"burst: must be >= 1, not {self.burst!r}")
        if not (isinstance(self.max_sources, int) and self.max_sources >= 1):
            raise ValueError(f"max_sources: must be an int >= 1, not {self.max_sources!r}")


@dataclass(frozen=True)
class LimiterStatistics:
    sources: int
    admitted: int
    limited: int
    forgotten: int


class SourceRateLimiter:
    """One :class:`TokenBucket` per source key (an IP address), LRU bounded."""

    def __init__(self, limit: RateLimit, *, exempt: frozenset[str] = frozenset()) -> None:
        if not isinstance(limit, RateLimit):
            raise ValueError("limit: must be a RateLimit")
        self.limit = limit
        self.exempt = frozenset(exempt)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._admitted = self._limited = self._forgotten = 0

    def allow(self, source: str, now: float) -> bool:
        if source in self.exempt:
            self._admitted += 1
            return True
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            bucket = buckets[source] = TokenBucket(self.limit.rate, self.limit.burst, now)
            if len(buckets) > self.limit.max_sources:
                buckets.popitem(last=False)
                self._forgotten += 1
        else:
            buckets.move_to_end(source)
        if bucket.take(now):
            self._admitted += 1
            return True
        self._limited += 1
        return False

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(sources=len(self._buckets), admitted=self._admitted, limited=self._limited,
                                 forgotten=self._forgotten)
