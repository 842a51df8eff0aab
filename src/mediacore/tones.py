"""Tones: DTMF digits and call-progress tones (ringback, busy, congestion, dial).

A ``Tone`` is up to 4 sine components (frequency in Hz, level in dBm0) and a
cadence of up to 8 (on_ms, off_ms) steps, played once or repeated; an empty
cadence is a continuous tone. ``TonePlayer`` renders tones into int16 frames
of any size, phase-continuous within each burst, with the cadence exact to the
sample across frame boundaries, at 8, 16 or 48 kHz (native code; see
``src/mediacore/cpp/tones.hpp``).

Call-progress tables (``call_progress_tone(name, region)``):

========== ===================== ===================== =====================
name       ``us``                ``eu`` (ETSI)         ``cn``
========== ===================== ===================== =====================
dial       350+440 continuous    425 continuous        450 continuous
ringback   440+480, 2 s / 4 s    425, 1 s / 4 s        450, 1 s / 4 s
busy       480+620, 0.5 / 0.5    425, 0.5 / 0.5        450, 0.35 / 0.35
congestion 480+620, 0.25 / 0.25  425, 0.25 / 0.25      450, 0.7 / 0.7
========== ===================== ===================== =====================

US: Telcordia LSSGR precise tone plan (levels -13 dBm0 dial, -19 ringback,
-24 busy and reorder, per component). EU: ETSI harmonized tones (ETR 187,
TR 101 041), -13 dBm0. CN: China as listed in ITU-T E.180 Supplement 2,
-13 dBm0. Levels use the G.711 reference (``mediacore.dtmf.ZERO_DBM0_PEAK``).

>>> from mediacore import tones
>>> player = tones.TonePlayer(8000)
>>> player.play(tones.call_progress_tone("busy", "us"))
>>> frame = player.read(160)          # 20 ms of 480+620 Hz
>>> pcm = tones.dtmf_sequence("123")  # 100 ms on / 100 ms off each
>>> len(pcm)
4800
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from mediacore import _tones

__all__ = [
    "Tone",
    "REGIONS",
    "PROGRESS_TONES",
    "call_progress_tone",
    "dtmf_tone",
    "dtmf_sequence",
    "render",
    "TonePlayer",
]

REGIONS = ("us", "eu", "cn")
PROGRESS_TONES = ("dial", "ringback", "busy", "congestion")
_MAX_LEVEL_DBM0 = 3.17  # the G.711 maximum


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Tone:
    """Sine components ``((frequency_hz, level_dbm0), ...)`` and a cadence ``((on_ms, off_ms), ...)``."""

    components: tuple[tuple[float, float], ...]
    cadence: tuple[tuple[int, int], ...] = ()
    repeat: bool = False

    def __post_init__(self) -> None:
        try:
            components = tuple((float(f), float(level)) for f, level in self.components)
        except (TypeError, ValueError):
            raise ValueError("components must be (frequency_hz, level_dbm0) pairs") from None
        if not 1 <= len(components) <= _tones.MAX_COMPONENTS:
            raise ValueError(f"a tone needs 1 to {_tones.MAX_COMPONENTS} components, got {len(components)}")
        for f, level in components:
            if not 0.0 < f < 24000.0:
                raise ValueError(f"component frequency must be within (0, 24000) Hz, got {f}")
            if not -120.0 <= level <= _MAX_LEVEL_DBM0:
                raise ValueError(f"component level must be within -120 ... +3.17 dBm0, got {level}")
        try:
            cadence = tuple((int(on), int(off)) for on, off in self.cadence)
        except (TypeError, ValueError):
            raise ValueError("cadence must be (on_ms, off_ms) pairs") from None
        if len(cadence) > _tones.MAX_STEPS:
            raise ValueError(f"a cadence has at most {_tones.MAX_STEPS} steps, got {len(cadence)}")
        for on, off in cadence:
            if on <= 0 or off < 0 or on > 86_400_000 or off > 86_400_000:
                raise ValueError(f"cadence steps need 0 < on_ms and 0 <= off_ms (at most a day), got ({on}, {off})")
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "cadence", cadence)
        object.__setattr__(self, "repeat", bool(self.repeat))

    @property
    def continuous(self) -> bool:
        return not self.cadence

    @property
    def finite(self) -> bool:
        """The tone ends by itself (a cadence played once)."""
        return bool(self.cadence) and not self.repeat

    def duration_ms(self) -> int | None:
        """Total length of a finite tone, None for a repeating or continuous one."""
        return sum(on + off for on, off in self.cadence) if self.finite else None

    @classmethod
    def _from_native(cls, spec: tuple) -> Tone:
        components, steps, repeat = spec
        return cls(components=tuple(components), cadence=tuple(steps), repeat=repeat)

    def _native(self) -> tuple:
        return list(self.components), list(self.cadence), self.repeat


def call_progress_tone(name: str, region: str = "us") -> Tone:
    """The ``dial``, ``ringback``, ``busy`` or ``congestion`` tone of ``us``, ``eu`` or ``cn``."""
    if name not in PROGRESS_TONES:
        raise ValueError(f"name must be one of {', '.join(PROGRESS_TONES)}, got {name!r}")
    if region not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    return Tone._from_native(_tones.call_progress(REGIONS.index(region), PROGRESS_TONES.index(name)))


def dtmf_tone(digit: str, *, level_dbm0: float = -10.0, twist_db: float = 0.0, duration_ms: int = 100,
              pause_ms: int = 0, low_deviation: float = 0.0, high_deviation: float = 0.0) -> Tone:
    """A DTMF digit: low-group tone at ``level_dbm0``, high-group at ``level_dbm0 + twist_db``.

    ``duration_ms`` of tone then ``pause_ms`` of silence, once (``duration_ms=0``:
    continuous). ``low_deviation``/``high_deviation`` offset the frequencies by a
    fraction (0.015 = +1.5 %), for testing receivers.
    """
    if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
        raise ValueError(f"digit must be one of 0-9 * # A-D, got {digit!r}")
    for name, value, lo, hi in (("level_dbm0", level_dbm0, -120.0, _MAX_LEVEL_DBM0), ("twist_db", twist_db, -40.0, 40.0),
                                ("low_deviation", low_deviation, -0.2, 0.2),
                                ("high_deviation", high_deviation, -0.2, 0.2)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ValueError(f"{name} must be a number within {lo} ... {hi}, got {value!r}")
    if level_dbm0 + twist_db > _MAX_LEVEL_DBM0:
        raise ValueError(f"level_dbm0 + twist_db must be <= +3.17 dBm0, got {level_dbm0 + twist_db}")
    for name, value in (("duration_ms", duration_ms), ("pause_ms", pause_ms)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 86_400_000:
            raise ValueError(f"{name} must be an int within 0 ... 86400000, got {value!r}")
    return Tone._from_native(_tones.dtmf_digit(digit.upper(), float(level_dbm0), float(twist_db), duration_ms,
                                               pause_ms, float(low_deviation), float(high_deviation)))


def _rate(sample_rate: object) -> int:
    if sample_rate not in (8000, 16000, 48000) or isinstance(sample_rate, bool):
        raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate!r}")
    return int(sample_rate)  # type: ignore[call-overload]


class TonePlayer:
    """Renders tones into frames for one stream (one player per stream).

    ``play(tone)`` replaces what is playing; ``enqueue(tone)`` plays it after
    what is queued (up to 16 tones). ``read(n)`` returns the next ``n``
    samples: the tone, silence in its off steps, and zeros once nothing is left.
    """

    def __init__(self, sample_rate: int = 8000) -> None:
        self._native = _tones.TonePlayer(_rate(sample_rate))

    @property
    def sample_rate(self) -> int:
        return self._native.sample_rate

    def _check(self, tone: Tone) -> Tone:
        if not isinstance(tone, Tone):
            raise ValueError(f"tone must be a mediacore.tones.Tone, got {type(tone).__name__}")
        for f, _ in tone.components:
            if f >= self.sample_rate / 2:
                raise ValueError(f"component frequency {f} Hz is not below half the sample rate ({self.sample_rate} Hz)")
        return tone

    def play(self, tone: Tone) -> None:
        self._native.play(*self._check(tone)._native())

    def enqueue(self, tone: Tone) -> None:
        self._native.enqueue(*self._check(tone)._native())

    def read(self, n: int) -> npt.NDArray[np.int16]:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        return self._native.read(int(n))

    def read_into(self, out: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """Fill ``out`` (a 1-D int16 array) with the next ``len(out)`` samples."""
        return self._native.read_into(out)

    def stop(self) -> None:
        """Silence now and drop the queue."""
        self._native.stop()

    @property
    def done(self) -> bool:
        """Nothing playing or queued (never true during a repeating or continuous tone)."""
        return self._native.done

    @property
    def position(self) -> int:
        """Samples read since the player was made."""
        return self._native.position


def render(tones: Tone | Iterable[Tone], sample_rate: int = 8000, *, duration_ms: int | None = None
           ) -> npt.NDArray[np.int16]:
    """Play tones one after the other into one array.

    Finite tones are rendered to their end; a repeating or continuous tone
    needs ``duration_ms``, which cuts or pads (with silence) the result.
    """
    items: Sequence[Tone] = [tones] if isinstance(tones, Tone) else list(tones)
    if not items:
        raise ValueError("tones is empty")
    rate = _rate(sample_rate)
    if duration_ms is None:
        if not all(t.finite for t in items):
            raise ValueError("a repeating or continuous tone needs duration_ms")
        total = sum(t.duration_ms() * rate // 1000 for t in items)  # type: ignore[operator]
    else:
        if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or duration_ms < 0:
            raise ValueError(f"duration_ms must be an int >= 0, got {duration_ms!r}")
        total = duration_ms * rate // 1000
    if len(items) > _tones.QUEUE_CAPACITY:
        raise ValueError(f"at most {_tones.QUEUE_CAPACITY} tones at once, got {len(items)}")
    player = TonePlayer(rate)
    for t in items:
        player.enqueue(t)
    return player.read(total)


def dtmf_sequence(digits: str, sample_rate: int = 8000, *, duration_ms: int = 100, pause_ms: int = 100,
                  level_dbm0: float = -10.0, twist_db: float = 0.0) -> npt.NDArray[np.int16]:
    """In-band DTMF for ``digits``: each ``duration_ms`` of tone then ``pause_ms`` of silence."""
    if not isinstance(digits, str) or not digits:
        raise ValueError(f"digits must be a non-empty str, got {digits!r}")
    rate = _rate(sample_rate)
    parts = [render([dtmf_tone(d, level_dbm0=level_dbm0, twist_db=twist_db, duration_ms=duration_ms,
                               pause_ms=pause_ms)], rate) for d in digits]
    return np.concatenate(parts)
