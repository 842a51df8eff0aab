"""The E-model (ITU-T G.107): a MOS estimate from delay, loss, burstiness and codec.

``estimate_mos(codec, delay_ms, loss_percent, burst_ratio=1.0)`` is what call
statistics use: every other G.107 parameter at its Table 3 default, the
one-way mouth-to-ear delay used as the absolute delay Ta and the echo path
delay T, and twice it as the 4-wire loop delay Tr. ``r_factor(...)`` takes
any G.107 parameter by its Recommendation name (``Ta``, ``Ppl``, ``BurstR``,
``TELR``...); ``breakdown(...)`` returns the intermediate terms too.
``mos_from_r(r)`` is the Annex B conversion.

Codec impairments (Ie, Bpl), from ITU-T G.113 Appendix I where it has them:

=============  ====  =====  =====================================================
codec           Ie    Bpl   source
=============  ====  =====  =====================================================
``G711``         0     4.3  G.113 App. I, G.711 without PLC, random loss
``G711_PLC``     0    25.1  G.113 App. I, G.711 with its Appendix I PLC
``G729A``       11    19.0  G.113 App. I, G.729A + VAD
``OPUS``         0    25.1  provisional project values: no ITU narrowband value
                            exists; Opus is at least G.711 quality (the ceiling
                            of the narrowband scale) and conceals loss at least
                            as well as G.711 PLC (FEC not credited)
=============  ====  =====  =====================================================

The names ``"pcmu"`` and ``"pcma"`` mean ``G711_PLC`` (the engine conceals
G.711 loss). Wideband rating (G.107.1) is not implemented.

``BurstEstimator`` turns an observed loss sequence into G.107's BurstR with
a two-state Markov model: ``BurstR = 1 / (p + q)``, p the probability of
losing a packet after a received one, q of receiving one after a loss.

>>> from mediacore import emodel
>>> round(emodel.r_factor(), 1), round(emodel.mos_from_r(emodel.r_factor()), 2)
(93.2, 4.41)
>>> round(emodel.estimate_mos("g711_plc", delay_ms=150, loss_percent=1.0), 2)
4.23
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable

from mediacore import _emodel

__all__ = [
    "Codec",
    "CODEC_IMPAIRMENTS",
    "EModelResult",
    "BurstEstimator",
    "r_factor",
    "breakdown",
    "mos_from_r",
    "effective_ie",
    "estimate_r",
    "estimate_mos",
    "DEFAULTS",
]


class Codec(enum.IntEnum):
    G711 = 0
    G711_PLC = 1
    G729A = 2
    OPUS = 3


_ALIASES = {"pcmu": Codec.G711_PLC, "pcma": Codec.G711_PLC, "g.711": Codec.G711, "g.729a": Codec.G729A}

#: (Ie, Bpl) per codec.
CODEC_IMPAIRMENTS: dict[Codec, tuple[float, float]] = {c: _emodel.codec_impairment(int(c)) for c in Codec}

#: G.107 Table 3 default values, by the Recommendation's names.
DEFAULTS: dict[str, float] = {
    "SLR": 8.0,
    "RLR": 2.0,
    "STMR": 15.0,
    "LSTR": 18.0,
    "Ds": 3.0,
    "Dr": 3.0,
    "TELR": 65.0,
    "WEPL": 110.0,
    "T": 0.0,
    "Tr": 0.0,
    "Ta": 0.0,
    "qdu": 1.0,
    "Ie": 0.0,
    "Bpl": 4.3,
    "Ppl": 0.0,
    "BurstR": 1.0,
    "Nc": -70.0,
    "Nfor": -64.0,
    "Ps": 35.0,
    "Pr": 35.0,
    "A": 0.0,
    "mT": 100.0,
    "sT": 1.0,
}


@dataclasses.dataclass(frozen=True)
class EModelResult:
    """R and its G.107 terms: ``R = Ro - Is - Id - Ie_eff + A``, ``Id = Idte + Idle + Idd``."""

    R: float
    Ro: float
    Is: float
    Id: float
    Idte: float
    Idle: float
    Idd: float
    Ie_eff: float
    mos: float


def _number(name: str, value: object, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be a finite number in [{lo}, {hi}], got {value!r}")
    return v


def _codec(codec: Codec | str | int) -> Codec:
    if isinstance(codec, Codec):
        return codec
    if isinstance(codec, str):
        key = codec.strip().lower()
        if key in _ALIASES:
            return _ALIASES[key]
        try:
            return Codec[key.upper()]
        except KeyError:
            pass
    elif isinstance(codec, int) and not isinstance(codec, bool) and codec in Codec._value2member_map_:
        return Codec(codec)
    names = ", ".join([c.name.lower() for c in Codec] + sorted(_ALIASES))
    raise ValueError(f"codec must be one of {names}; got {codec!r}")


def _params(delay_ms: float | None, params: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown G.107 parameter(s) {unknown}; known: {sorted(DEFAULTS)}")
    out = {k: _number(k, v) for k, v in params.items()}
    if delay_ms is not None:
        d = _number("delay_ms", delay_ms, 0.0)
        for k, v in (("Ta", d), ("T", d), ("Tr", 2 * d)):
            if k in out and out[k] != v:
                raise ValueError(f"delay_ms={delay_ms} sets {k}={v}; do not also pass {k}={out[k]}")
            out[k] = v
    for k in ("Ta", "T", "Tr", "Ppl"):
        if k in out and out[k] < 0:
            raise ValueError(f"{k} must be >= 0, got {out[k]}")
    if out.get("Ppl", 0.0) > 100:
        raise ValueError(f"Ppl is a percentage (0..100), got {out['Ppl']}")
    if "BurstR" in out and out["BurstR"] < 1:
        raise ValueError(f"BurstR must be >= 1 (1 = random loss), got {out['BurstR']}")
    if "qdu" in out and out["qdu"] <= 0:
        raise ValueError(f"qdu must be > 0, got {out['qdu']}")
    return out


def breakdown(*, delay_ms: float | None = None, **params: float) -> EModelResult:
    """R, MOS and every G.107 term for the given parameters (Table 3 defaults for the rest).

    ``delay_ms`` is a shorthand for ``Ta = T = delay_ms, Tr = 2 * delay_ms``.
    """
    return EModelResult(**_emodel.compute(**_params(delay_ms, params)))


def r_factor(*, delay_ms: float | None = None, **params: float) -> float:
    """The transmission rating R (G.107 7-1); see ``breakdown`` for the arguments."""
    return breakdown(delay_ms=delay_ms, **params).R


def mos_from_r(r: float) -> float:
    """G.107 Annex B: estimated conversational MOS (MOS-CQE) from R.

    1 below R = 0, 4.5 above R = 100; the cubic in between dips just under 1
    for 0 < R < 6.5, exactly as the Recommendation writes it.
    """
    return _emodel.mos_from_r(_number("r", r))


def effective_ie(ie: float, bpl: float, loss_percent: float, burst_ratio: float = 1.0) -> float:
    """Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl) (G.107 7-29)."""
    return _emodel.effective_ie(
        _number("ie", ie, 0.0, 95.0),
        _number("bpl", bpl, 0.0),
        _number("loss_percent", loss_percent, 0.0, 100.0),
        _number("burst_ratio", burst_ratio, 1.0),
    )


def estimate_r(codec: Codec | str, delay_ms: float, loss_percent: float, burst_ratio: float = 1.0) -> float:
    """R for a codec at a one-way delay (ms), a loss percentage and a burst ratio."""
    return _emodel.estimate_r(
        int(_codec(codec)),
        _number("delay_ms", delay_ms, 0.0),
        _number("loss_percent", loss_percent, 0.0, 100.0),
        _number("burst_ratio", burst_ratio, 1.0),
    )


def estimate_mos(codec: Codec | str, delay_ms: float, loss_percent: float, burst_ratio: float = 1.0) -> float:
    """MOS (G.107 Annex B) for a codec at a one-way delay (ms), a loss percentage and a burst ratio.

    The delay is mouth-to-ear: network one-way delay plus jitter buffer and
    packetization. ``burst_ratio`` is 1 for random loss; ``BurstEstimator``
    measures it.
    """
    return _emodel.mos_from_r(estimate_r(codec, delay_ms, loss_percent, burst_ratio))


class BurstEstimator:
    """Two-state Markov (Gilbert) estimate of a loss process, for G.107's BurstR.

    Feed it packet by packet (``on_received`` / ``on_lost``), or with RTP
    sequence numbers (``on_sequence``: a forward gap counts as losses; late and
    duplicate packets are ignored; a jump of ``max_gap`` or more is a restart).
    The native object is the one the engine updates per packet.
    """

    __slots__ = ("_native",)

    def __init__(self) -> None:
        self._native = _emodel.BurstEstimator()

    @classmethod
    def from_pattern(cls, lost: Iterable[bool]) -> BurstEstimator:
        """An estimator fed with a loss pattern (True = lost), e.g. ``[False, True, True, False]``."""
        est = cls()
        est._native.on_pattern([bool(x) for x in lost])
        return est

    def on_received(self) -> None:
        self._native.on_received()

    def on_lost(self, count: int = 1) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**32:
            raise ValueError(f"count must be an int in 0..2**32-1, got {count!r}")
        self._native.on_lost(count)

    def on_sequence(self, seq: int, max_gap: int = 3000) -> None:
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= 65535:
            raise ValueError(f"seq must be an int in 0..65535, got {seq!r}")
        if isinstance(max_gap, bool) or not isinstance(max_gap, int) or not 1 <= max_gap <= 65536:
            raise ValueError(f"max_gap must be an int in 1..65536, got {max_gap!r}")
        self._native.on_sequence(seq, max_gap)

    def reset(self) -> None:
        self._native.reset()

    @property
    def received(self) -> int:
        return self._native.received

    @property
    def lost(self) -> int:
        return self._native.lost

    @property
    def loss_percent(self) -> float:
        return self._native.loss_percent

    @property
    def p(self) -> float:
        """P(lost | previous received)."""
        return self._native.p

    @property
    def q(self) -> float:
        """P(received | previous lost)."""
        return self._native.q

    @property
    def burst_ratio(self) -> float:
        """1 / (p + q), at least 1; 1 when nothing was lost."""
        return self._native.burst_ratio
