"""Packet loss concealment: pitch waveform substitution after ITU-T G.711 Appendix I.

:class:`G711Plc` keeps the last 48.75 ms of played audio. When a frame is
lost, :meth:`~G711Plc.conceal` repeats the last pitch period (found by
normalized cross-correlation, 5..15 ms), widening to two and three periods
after 10 and 20 ms, attenuating by 20% per 10 ms after the first 10 ms (so it
is silent from 60 ms on); the next :meth:`~G711Plc.good` frame is crossfaded
in (4 ms, plus 4 ms per further 10 ms of loss, at most 10 ms). Unlike Appendix
I it adds no delay, widens to more periods later (after 20 and 30 ms), and
when the packet after a gap is already in the jitter buffer,
:meth:`~G711Plc.conceal_before` ends the substitute on it (two-sided
concealment; see ``cpp/plc.hpp``). It works at 8, 16 and 48 kHz, for G.711
and L16; Opus conceals with its own decoder.

:func:`conceal_losses` runs a whole signal through a loss pattern with this
PLC or with the two classic baselines (silence substitution, repeating the
last frame), which is what the quality benchmarks compare. Its ``"plc"``
looks back only (Appendix I); :class:`mediacore.jitter.Playout` also uses the
next packet when it has it.

>>> import numpy as np
>>> from mediacore.plc import G711Plc
>>> plc = G711Plc(8000)
>>> tone = (8000 * np.sin(2 * np.pi * 200 * np.arange(800) / 8000)).astype(np.int16)
>>> _ = plc.good(tone)
>>> lost = plc.conceal(160)          # 20 ms that never arrived
>>> int(np.abs(lost).max()) > 7000   # the tone goes on
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mediacore import _jitter

__all__ = ["G711Plc", "conceal_losses", "METHODS"]

#: Concealment methods :func:`conceal_losses` knows.
METHODS = ("plc", "silence", "repeat")


def _check_rate(sample_rate: Any) -> int:
    if sample_rate not in (8000, 16000, 48000) or isinstance(sample_rate, bool):
        raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate!r}")
    return int(sample_rate)


def _check_pcm(pcm: Any) -> np.ndarray:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("pcm must be a one-dimensional numpy int16 array")
    return np.ascontiguousarray(pcm)


class G711Plc:
    """Pitch-based concealment state for one stream (see the module doc)."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self._native = _jitter.G711Plc(_check_rate(sample_rate))

    @property
    def sample_rate(self) -> int:
        return self._native.sample_rate

    @property
    def pitch(self) -> int:
        """Pitch period (samples) found at the start of the last erasure."""
        return self._native.pitch

    @property
    def erased_samples(self) -> int:
        """Samples concealed so far in the current erasure (0 after a good frame)."""
        return self._native.erased

    def good(self, pcm: np.ndarray) -> np.ndarray:
        """Record a frame of real audio; returns what to play (the same samples,
        crossfaded from the concealment if the frames before were lost)."""
        return self._native.good(_check_pcm(pcm))

    def conceal(self, samples: int) -> np.ndarray:
        """The concealment of ``samples`` lost samples."""
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
            raise ValueError(f"samples must be a non-negative integer, got {samples!r}")
        return self._native.conceal(int(samples))

    def conceal_before(self, next_pcm: np.ndarray, samples: int) -> np.ndarray:
        """The concealment of ``samples`` lost samples when the audio right
        after the gap (``next_pcm``, e.g. the next packet, already in the
        jitter buffer) is known: the substitute fades into ``next_pcm``'s first
        pitch period extended backwards, so it ends exactly where ``next_pcm``
        starts; pass ``next_pcm`` to :meth:`good` next."""
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
            raise ValueError(f"samples must be a non-negative integer, got {samples!r}")
        if not isinstance(next_pcm, np.ndarray) or next_pcm.dtype != np.int16 or next_pcm.ndim != 1:
            raise ValueError("next_pcm must be a one-dimensional numpy int16 array")
        return self._native.conceal_before(np.ascontiguousarray(next_pcm), int(samples))

    def reset(self) -> None:
        self._native.reset()


def conceal_losses(
    pcm: np.ndarray, lost: Any, frame_samples: int, method: str = "plc", sample_rate: int = 8000
) -> np.ndarray:
    """``pcm`` cut into frames of ``frame_samples``, with the frames where
    ``lost`` is true replaced by ``method``: ``"plc"`` (:class:`G711Plc`),
    ``"silence"`` (zeros) or ``"repeat"`` (the last good frame again; zeros
    before the first). A trailing partial frame is dropped."""
    pcm = _check_pcm(pcm)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if (
        isinstance(frame_samples, bool)
        or not isinstance(frame_samples, (int, np.integer))
        or frame_samples < 1
    ):
        raise ValueError(f"frame_samples must be a positive integer, got {frame_samples!r}")
    frames = len(pcm) // frame_samples
    lost = np.asarray(lost, dtype=bool)
    if lost.shape != (frames,):
        raise ValueError(f"lost must have one flag per frame ({frames}), got shape {lost.shape}")
    out = np.zeros(frames * frame_samples, dtype=np.int16)
    plc = G711Plc(sample_rate) if method == "plc" else None
    last = np.zeros(frame_samples, dtype=np.int16)
    for i in range(frames):
        seg = slice(i * frame_samples, (i + 1) * frame_samples)
        if not lost[i]:
            out[seg] = plc.good(pcm[seg]) if plc else pcm[seg]
            last = pcm[seg]
        elif plc:
            out[seg] = plc.conceal(frame_samples)
        elif method == "repeat":
            out[seg] = last
    return out
