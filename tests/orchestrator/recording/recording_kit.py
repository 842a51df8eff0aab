"""Helpers for the recording tests: real speech (espeak-ng + sox), placing it at known times."""

from __future__ import annotations

import functools
import wave
from pathlib import Path

import numpy as np
import trio

# Utterances without punctuation: espeak-ng then speaks each as one run with only
# short gaps between words (no sentence pause), so its talk span is well defined.
CALLER_TEXT = "hi I would like to check the status of my order please"
AGENT_TEXT = "thank you for calling how can I help you today"
SHORT_TEXT = "yes that is right"


def trio_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))
    return wrapper


def speech_span(pcm: np.ndarray, rate: int, threshold: int = 200) -> tuple[float, float]:
    """First and last sample louder than ``threshold`` (seconds): the utterance's true talk span."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return loud[0] / rate, (loud[-1] + 1) / rate


def place(total_s: float, rate: int, *items: tuple[float, np.ndarray]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A channel of ``total_s`` seconds with each utterance starting at its time; its true talk spans."""
    ch = np.zeros(int(total_s * rate), np.int16)
    spans = []
    for at, pcm in items:
        i = int(at * rate)
        ch[i:i + len(pcm)] = pcm
        a, b = speech_span(pcm, rate)
        spans.append((at + a, at + b))
    return ch, spans


def write_stereo(path: Path, left: np.ndarray, right: np.ndarray, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    return path
