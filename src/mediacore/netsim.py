"""Network trace generators for jitter-buffer tests, benchmarks and simulations.

A :class:`Trace` is one RTP stream as the sender produced it (sequence
numbers, timestamps, marker bits, send times) and as the network delivered it
(arrival times, ``nan`` for a lost packet). Generators are pure numpy and
deterministic for a given seed; they compose::

    from mediacore import netsim
    t = netsim.packets(3000, seq0=65000, ts0=2**32 - 8000)          # 60 s of 20 ms packets
    t = netsim.gaussian_jitter(t, base_ms=40, sigma_ms=8, seed=1)
    t = netsim.gilbert_elliott_loss(t, p_good_to_bad=0.01, p_bad_to_good=0.3, seed=2)
    rx = t.received()                                              # arrival order, lost removed

Delay models: Gaussian, Pareto-tailed (heavy tail, as measured on congested
links), delay spikes (a link stalls, then delivers the backlog in a burst),
reordering, and sender clock drift. Loss models: independent (Bernoulli) and
Gilbert-Elliott (bursty).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Trace",
    "packets",
    "gaussian_jitter",
    "pareto_jitter",
    "delay_spikes",
    "reorder",
    "duplicate",
    "random_loss",
    "gilbert_elliott_loss",
    "loss_mask_random",
    "loss_mask_gilbert_elliott",
    "scenario",
    "SCENARIOS",
]


@dataclass(frozen=True)
class Trace:
    """One RTP stream: what was sent, and when each packet arrived.

    Arrays are parallel, in send order; a packet may appear more than once
    (duplicated by the network). ``arrival_ms`` is ``nan`` for lost packets.
    """

    seq: np.ndarray  # uint16
    timestamp: np.ndarray  # uint32
    marker: np.ndarray  # bool
    send_ms: np.ndarray  # float64
    arrival_ms: np.ndarray  # float64, nan = lost
    clock_rate: int = 8000
    ptime_ms: float = 20.0

    def __post_init__(self) -> None:
        n = len(self.seq)
        for name in ("timestamp", "marker", "send_ms", "arrival_ms"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} items, seq has {n}")

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def lost(self) -> np.ndarray:
        """Boolean mask of packets the network lost."""
        return np.isnan(self.arrival_ms)

    @property
    def network_delay_ms(self) -> np.ndarray:
        """Arrival minus send time (nan for lost packets)."""
        return self.arrival_ms - self.send_ms

    @property
    def frame_samples(self) -> int:
        return int(round(self.ptime_ms * self.clock_rate / 1000))

    def with_arrival(self, arrival_ms: np.ndarray) -> Trace:
        return dataclasses.replace(self, arrival_ms=np.asarray(arrival_ms, dtype=np.float64))

    def received(self) -> Trace:
        """The packets that arrived, in arrival order (stable for ties)."""
        keep = ~self.lost
        order = np.argsort(self.arrival_ms[keep], kind="stable")
        idx = np.flatnonzero(keep)[order]
        return self.take(idx)

    def take(self, idx: np.ndarray) -> Trace:
        return dataclasses.replace(
            self,
            seq=self.seq[idx],
            timestamp=self.timestamp[idx],
            marker=self.marker[idx],
            send_ms=self.send_ms[idx],
            arrival_ms=self.arrival_ms[idx],
        )


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def packets(
    n: int,
    *,
    ptime_ms: float = 20.0,
    clock_rate: int = 8000,
    seq0: int = 0,
    ts0: int = 0,
    start_ms: float = 0.0,
    drift_ppm: float = 0.0,
    talkspurt_ms: tuple[float, float] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> Trace:
    """``n`` frames of a constant-rate sender, delivered instantly.

    ``drift_ppm`` makes the sender's clock fast (> 0) or slow (< 0): its
    timestamps advance one frame per packet but it sends every
    ``ptime / (1 + drift)`` ms of real time. ``talkspurt_ms=(mean_on, mean_off)``
    makes it a DTX sender: exponential talkspurts and silences; no packets
    during silence (timestamps keep counting), the marker bit on the first
    packet of each talkspurt, and sequence numbers that count sent packets only.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if ptime_ms <= 0:
        raise ValueError(f"ptime_ms must be > 0, got {ptime_ms}")
    if clock_rate <= 0:
        raise ValueError(f"clock_rate must be > 0, got {clock_rate}")
    if not -1e5 < drift_ppm < 1e5:
        raise ValueError(f"drift_ppm must be within +-1e5, got {drift_ppm}")
    frame = int(round(ptime_ms * clock_rate / 1000))
    i = np.arange(n, dtype=np.int64)
    send = start_ms + i * (ptime_ms / (1.0 + drift_ppm * 1e-6))
    ts = (ts0 + i * frame) % 2**32
    marker = np.zeros(n, dtype=bool)
    if n:
        marker[0] = True
    if talkspurt_ms is not None:
        on_ms, off_ms = talkspurt_ms
        if on_ms <= 0 or off_ms <= 0:
            raise ValueError("talkspurt_ms must be two positive means (on, off)")
        rng = _rng(seed)
        active = np.zeros(n, dtype=bool)
        pos, talking = 0, True
        while pos < n:
            length = max(1, int(round(rng.exponential(on_ms if talking else off_ms) / ptime_ms)))
            active[pos : pos + length] = talking
            pos += length
            talking = not talking
        starts = active & ~np.concatenate(([False], active[:-1]))
        keep = np.flatnonzero(active)
        send, ts, marker = send[keep], ts[keep], starts[keep]
    m = len(send)
    seq = (seq0 + np.arange(m)) % 65536
    return Trace(
        seq=seq.astype(np.uint16),
        timestamp=ts.astype(np.uint32),
        marker=marker.astype(bool),
        send_ms=send.astype(np.float64),
        arrival_ms=send.astype(np.float64).copy(),
        clock_rate=clock_rate,
        ptime_ms=ptime_ms,
    )


def _add_delay(trace: Trace, delay: np.ndarray) -> Trace:
    return trace.with_arrival(trace.arrival_ms + delay)


def gaussian_jitter(trace: Trace, *, base_ms: float, sigma_ms: float, seed=0) -> Trace:
    """Add ``base + N(0, sigma)`` ms of delay (never below zero)."""
    if sigma_ms < 0 or base_ms < 0:
        raise ValueError("base_ms and sigma_ms must be >= 0")
    d = base_ms + _rng(seed).normal(0.0, sigma_ms, len(trace))
    return _add_delay(trace, np.maximum(d, 0.0))


def pareto_jitter(trace: Trace, *, base_ms: float, scale_ms: float, alpha: float = 2.5, seed=0) -> Trace:
    """Add ``base + scale * Lomax(alpha)`` ms: mostly small, with a heavy tail."""
    if alpha <= 0 or scale_ms < 0 or base_ms < 0:
        raise ValueError("alpha must be > 0, base_ms and scale_ms >= 0")
    return _add_delay(trace, base_ms + scale_ms * _rng(seed).pareto(alpha, len(trace)))


def delay_spikes(trace: Trace, *, every_ms: float, height_ms: float, seed=0) -> Trace:
    """Stalls of the link: at random moments (one per ``every_ms`` on average)
    nothing gets through for ``height_ms``; the packets sent meanwhile arrive
    together when it resumes (the delay ramps down from ``height_ms`` to 0)."""
    if every_ms <= 0 or height_ms < 0:
        raise ValueError("every_ms must be > 0 and height_ms >= 0")
    rng = _rng(seed)
    extra = np.zeros(len(trace))
    if len(trace) == 0:
        return trace
    t, end = trace.send_ms[0], trace.send_ms[-1]
    while True:
        t += rng.exponential(every_ms)
        if t > end:
            break
        inside = (trace.send_ms >= t) & (trace.send_ms < t + height_ms)
        extra[inside] = np.maximum(extra[inside], t + height_ms - trace.send_ms[inside])
    return _add_delay(trace, extra)


def reorder(trace: Trace, *, probability: float, extra_ms: float, seed=0) -> Trace:
    """Hold back a fraction of packets by ``extra_ms`` so later ones overtake them."""
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    mask = _rng(seed).random(len(trace)) < probability
    return _add_delay(trace, np.where(mask, extra_ms, 0.0))


def duplicate(trace: Trace, *, probability: float, extra_ms: float = 1.0, seed=0) -> Trace:
    """Deliver a fraction of packets twice, the copy ``extra_ms`` later."""
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    dup = np.flatnonzero(_rng(seed).random(len(trace)) < probability)
    idx = np.sort(np.concatenate((np.arange(len(trace)), dup)), kind="stable")
    out = trace.take(idx)
    later = np.concatenate(([False], idx[1:] == idx[:-1]))
    return out.with_arrival(out.arrival_ms + np.where(later, extra_ms, 0.0))


def loss_mask_random(n: int, probability: float, seed=0) -> np.ndarray:
    """Independent (Bernoulli) losses: True = lost."""
    if not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    return _rng(seed).random(n) < probability


def loss_mask_gilbert_elliott(
    n: int,
    *,
    p_good_to_bad: float,
    p_bad_to_good: float,
    loss_good: float = 0.0,
    loss_bad: float = 1.0,
    seed=0,
) -> np.ndarray:
    """Bursty losses from the two-state Gilbert-Elliott chain: True = lost.

    Mean loss rate ``(p_gb * loss_bad + p_bg * loss_good) / (p_gb + p_bg)``;
    mean burst length in the bad state ``1 / p_bad_to_good``.
    """
    for name, p in (
        ("p_good_to_bad", p_good_to_bad),
        ("p_bad_to_good", p_bad_to_good),
        ("loss_good", loss_good),
        ("loss_bad", loss_bad),
    ):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    rng = _rng(seed)
    u_state, u_loss = rng.random(n), rng.random(n)
    lost = np.zeros(n, dtype=bool)
    bad = False
    for i in range(n):
        bad = (u_state[i] >= p_bad_to_good) if bad else (u_state[i] < p_good_to_bad)
        lost[i] = u_loss[i] < (loss_bad if bad else loss_good)
    return lost


def random_loss(trace: Trace, *, probability: float, seed=0) -> Trace:
    lost = loss_mask_random(len(trace), probability, seed)
    return trace.with_arrival(np.where(lost, np.nan, trace.arrival_ms))


def gilbert_elliott_loss(trace: Trace, *, p_good_to_bad: float, p_bad_to_good: float, seed=0, **kw) -> Trace:
    lost = loss_mask_gilbert_elliott(
        len(trace), p_good_to_bad=p_good_to_bad, p_bad_to_good=p_bad_to_good, seed=seed, **kw
    )
    return trace.with_arrival(np.where(lost, np.nan, trace.arrival_ms))


def _gaussian(t: Trace, seed: int) -> Trace:
    return gaussian_jitter(t, base_ms=30, sigma_ms=10, seed=seed)


def _pareto(t: Trace, seed: int) -> Trace:
    return pareto_jitter(t, base_ms=30, scale_ms=8, alpha=2.5, seed=seed)


def _spikes(t: Trace, seed: int) -> Trace:
    t = gaussian_jitter(t, base_ms=30, sigma_ms=3, seed=seed)
    return delay_spikes(t, every_ms=20_000, height_ms=300, seed=seed + 1)


def _reorder(t: Trace, seed: int) -> Trace:
    t = gaussian_jitter(t, base_ms=30, sigma_ms=4, seed=seed)
    return reorder(t, probability=0.05, extra_ms=35, seed=seed + 1)


#: Named delay scenarios used by the benchmarks: name -> (trace, seed) -> trace.
SCENARIOS = {"gaussian": _gaussian, "pareto": _pareto, "spikes": _spikes, "reorder": _reorder}


def scenario(name: str, n: int = 15_000, *, seed: int = 0, **packet_kw) -> Trace:
    """A named delay scenario over ``n`` 20 ms packets (default 5 minutes)."""
    if name not in SCENARIOS:
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {name!r}")
    return SCENARIOS[name](packets(n, **packet_kw), seed)
