"""Two small bounded tables that digest authentication needs around the
stateless nonces of :class:`orchestrator.sip.DigestServer`:

* :class:`NonceCounts` - replay protection. RFC 7616 3.3 and 5.6: a server
  that wants to detect replays remembers, per nonce, which nonce-counts
  (``nc``) it has accepted, and refuses one it has seen. A window of recent
  counts (like the IPsec anti-replay window, RFC 4303 3.4.3) lets two requests
  that share a nonce arrive out of order. Entries live as long as their nonce
  can be valid (its issue time plus the nonce lifetime); past ``max_nonces``
  the oldest entry is dropped and every nonce issued no later than it is then
  treated as stale, so forgetting never re-opens a replay.
* :class:`FailureTracker` - authentication failures per source address, so
  rate limiting can act on a ``suspicious`` signal (a password guesser, a
  scanner): ``threshold`` failures within ``window`` seconds.

Both take time as ``now`` (seconds) and never read a clock.
"""

from __future__ import annotations

import base64
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["FailureStatistics", "FailureTracker", "NonceCountStatistics", "NonceCounts", "nonce_issued_at"]


def nonce_issued_at(nonce: str) -> float | None:
    """Issue time of a nonce made by :meth:`DigestServer.make_nonce` (seconds), or None.

    The nonce is ``base64url(uint64 issue-ms, uint32 counter, 16-byte HMAC)``;
    call this only on a nonce the server has already verified (the HMAC is
    not checked here).
    """
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 28:
        return None
    return struct.unpack(">Q", raw[:8])[0] / 1000


class _Entry:
    __slots__ = ("highest", "issued_at", "mask")

    def __init__(self, issued_at: float) -> None:
        self.issued_at = issued_at
        self.highest = 0
        self.mask = 0  # bit i set: count (highest - i) was accepted


@dataclass(frozen=True)
class NonceCountStatistics:
    nonces: int
    accepted: int
    replays: int
    evicted: int
    refused_after_eviction: int


class NonceCounts:
    """Which nonce-counts were accepted for each nonce still in its lifetime."""

    def __init__(self, *, lifetime: float, max_nonces: int = 100_000, window: int = 32) -> None:
        if not lifetime > 0:
            raise ValueError("lifetime: must be positive seconds")
        if not isinstance(max_nonces, int) or max_nonces < 1:
            raise ValueError("max_nonces: must be an int >= 1")
        if not isinstance(window, int) or not 1 <= window <= 64:
            raise ValueError("window: must be an int in 1..64")
        self.lifetime = float(lifetime)
        self.max_nonces = max_nonces
        self.window = window
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._floor = float("-inf")  # nonces issued at or before this were forgotten
        self._accepted = self._replays = self._evicted = self._refused = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _purge(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.lifetime - 1.0  # DigestServer accepts a nonce up to 1 s "from the future"
        while entries:
            nonce, entry = next(iter(entries.items()))
            if entry.issued_at >= horizon:
                break
            del entries[nonce]

    def check(
        self, nonce: str, nc: int, issued_at: float, now: float
    ) -> Literal["ok", "replay", "forgotten"]:
        """Record ``nc`` for ``nonce`` if it was not used before.

        ``"replay"``: this count was already accepted (or is older than the
        window); ``"forgotten"``: the table had to drop this nonce's record,
        so the nonce must be treated as stale (the client gets a new one).
        """
        if nc < 1:
            self._replays += 1
            return "replay"
        self._purge(now)
        entry = self._entries.get(nonce)
        if entry is None:
            if issued_at <= self._floor:
                self._refused += 1
                return "forgotten"
            entry = self._entries[nonce] = _Entry(issued_at)
            while len(self._entries) > self.max_nonces:
                _, dropped = self._entries.popitem(last=False)
                self._floor = max(self._floor, dropped.issued_at)
                self._evicted += 1
            if issued_at <= self._floor:  # the new entry itself is no younger than what was dropped
                self._entries.pop(nonce, None)
                self._refused += 1
                return "forgotten"
        if nc > entry.highest:
            shift = nc - entry.highest
            entry.mask = ((entry.mask << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            entry.highest = nc
        else:
            offset = entry.highest - nc
            if offset >= self.window or entry.mask >> offset & 1:
                self._replays += 1
                return "replay"
            entry.mask |= 1 << offset
        self._accepted += 1
        return "ok"

    def statistics(self) -> NonceCountStatistics:
        return NonceCountStatistics(
            nonces=len(self._entries),
            accepted=self._accepted,
            replays=self._replays,
            evicted=self._evicted,
            refused_after_eviction=self._refused,
        )


class _Source:
    __slots__ = ("times", "total")

    def __init__(self, threshold: int) -> None:
        self.times: deque[float] = deque(maxlen=threshold)  # the latest failures
        self.total = 0


@dataclass(frozen=True)
class FailureStatistics:
    sources: int
    failures: int
    suspicious_now: int
    flagged_total: int


class FailureTracker:
    """Authentication failures per source host.

    A source is suspicious while its latest ``threshold`` failures all lie
    within ``window`` seconds of now: ``threshold`` failures in a burst flag
    it at once, and it stays flagged until ``window`` seconds after the
    oldest of them. The table is an LRU of at most ``max_sources`` hosts, so a
    scan from many addresses cannot grow it without bound.
    """

    def __init__(self, *, threshold: int = 10, window: float = 60.0, max_sources: int = 65536) -> None:
        if not isinstance(threshold, int) or threshold < 1:
            raise ValueError("threshold: must be an int >= 1")
        if not window > 0:
            raise ValueError("window: must be positive seconds")
        if not isinstance(max_sources, int) or max_sources < 1:
            raise ValueError("max_sources: must be an int >= 1")
        self.threshold = threshold
        self.window = float(window)
        self.max_sources = max_sources
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._failures = 0
        self._flagged_total = 0

    def _suspicious(self, source: _Source, now: float) -> bool:
        times = source.times
        return len(times) == self.threshold and now - times[0] <= self.window

    def failure(self, host: str, now: float) -> bool:
        """Count a failure from ``host``; True when it has just become suspicious."""
        self._failures += 1
        source = self._sources.get(host)
        if source is None:
            source = self._sources[host] = _Source(self.threshold)
            if len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(host)
        was = self._suspicious(source, now)
        source.times.append(now)
        source.total += 1
        if not was and self._suspicious(source, now):
            self._flagged_total += 1
            return True
        return False

    def is_suspicious(self, host: str, now: float) -> bool:
        source = self._sources.get(host)
        return source is not None and self._suspicious(source, now)

    def failures(self, host: str) -> int:
        """Failures counted for ``host`` (while it stays in the table)."""
        source = self._sources.get(host)
        return source.total if source is not None else 0

    def suspicious_sources(self, now: float) -> list[tuple[str, int]]:
        """(host, failures) of every source suspicious now, most failures first."""
        out = [(host, s.total) for host, s in self._sources.items() if self._suspicious(s, now)]
        return sorted(out, key=lambda item: (-item[1], item[0]))

    def statistics(self, now: float) -> FailureStatistics:
        return FailureStatistics(
            sources=len(self._sources),
            failures=self._failures,
            suspicious_now=len(self.suspicious_sources(now)),
            flagged_total=self._flagged_total,
        )
