"""The queue's spoken prompts and music on hold, synthesized like the IVR's (espeak-ng + sox).

:func:`build_queue_prompts` writes ``<directory>/<name>.wav`` (8 kHz mono
16-bit) for every piece :class:`~orchestrator.acd.service.QueuePrompts`
names - "you are caller number", the numbers, "your expected wait is
about", "minutes", the callback offer and its confirmation, the voicemail
greeting, a comfort message - plus a music-on-hold loop and a beep, and
returns the matching :class:`QueuePrompts`. Incremental: a file that exists
is kept. Needs the Debian packages espeak-ng and sox.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from orchestrator.acd.service import QueuePrompts
from orchestrator.ivr.runner import write_beep

__all__ = ["QUEUE_PROMPT_TEXTS", "build_queue_prompts", "speak"]

QUEUE_PROMPT_TEXTS = {
    "queue_position": "You are caller number",
    "queue_wait": "Your expected wait is about",
    "queue_wait_short": "Your call will be answered in less than a minute.",
    "queue_minutes": "minutes.",
    "queue_callback_option": "To keep your place and be called back, press 1.",
    "queue_callback_confirmed": "Thank you. We will call you back. Goodbye.",
    "queue_voicemail": "All our agents are busy. Please leave a message after the tone.",
    "queue-comfort": "Thank you for holding. Your call is important to us.",
}

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + ("" if ones == 0 else " " + _ONES[ones])
    return str(n)


def speak(text: str, out: Path, *, voice: str = "en-us", speed: int = 165, rate: int = 8000) -> Path:
    """``text`` as a mono 16-bit WAV at ``rate`` Hz (espeak-ng, resampled by sox)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True,
                       capture_output=True)
        part = out.with_suffix(".part.wav")
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(part)], check=True, capture_output=True)
        part.replace(out)
    return out


def _music(out: Path, seconds: int = 20) -> Path:
    """A quiet music-on-hold loop: a slow arpeggio of sine notes (sox synth)."""
    notes = ["C4", "E4", "G4", "C5", "G4", "E4"]
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, note in enumerate(notes):
            part = Path(tmp) / f"n{i}.wav"
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), "synth", "0.5", "sine",
                            note, "fade", "0.02", "0.5", "0.1", "vol", "0.25"], check=True, capture_output=True)
            parts.append(str(part))
        phrase = Path(tmp) / "phrase.wav"
        subprocess.run(["sox", *parts, str(phrase)], check=True, capture_output=True)
        part = out.with_suffix(".part.wav")
        subprocess.run(["sox", str(phrase), str(part), "repeat", str(max(0, seconds // 3 - 1))], check=True,
                       capture_output=True)
        part.replace(out)
    return out


def build_queue_prompts(directory: str | Path, *, numbers: Iterable[int] = range(1, 21), voice: str = "en-us",
                        texts: dict[str, str] | None = None, music: bool = True) -> QueuePrompts:
    """Synthesize the queue prompts into ``directory`` (missing files only); see the module docstring."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = dict(QUEUE_PROMPT_TEXTS)
    wanted.update(texts or {})
    for n in numbers:
        wanted[f"number_{n}"] = _words(n)
    for name, text in wanted.items():
        path = directory / f"{name}.wav"
        if not path.exists():
            speak(text, path, voice=voice)
    beep = directory / "beep.wav"
    if not beep.exists():
        write_beep(beep)
    moh = {}
    if music:
        path = directory / "music_default.wav"
        if not path.exists():
            _music(path)
        moh["default"] = str(path)
    return QueuePrompts(directory=directory, music=moh, beep=str(beep))
