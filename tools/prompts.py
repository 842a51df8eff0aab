"""Speech prompts made from text with espeak-ng and sox (Debian packages).

The project ships no recorded audio of its own; prompts for the demo, the IVR
and the quality benchmarks are synthesized here, deterministically.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def make_speech(text: str, out: Path, *, rate: int = 8000, voice: str = "en-us", speed: int = 175) -> Path:
    """Write ``text`` as mono 16-bit PCM WAV at ``rate`` Hz to ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                       check=True, capture_output=True)
        # sox's rate effect is a high-quality band-limited resampler.
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(out)], check=True, capture_output=True)
    return out
