"""The media-core demo (what `make demo` runs until the daemon lands).

Synthesizes a prompt with espeak-ng, sends it through G.711 mu-law and
A-law, and writes the WAVs to ./demo-out/ with a line per step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from mediacore import g711

PROMPT = "Welcome to Hotline. Press one for sales, two for support."


def write_wav(path: Path, pcm: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def snr_db(ref: np.ndarray, deg: np.ndarray) -> float:
    noise = ref.astype(np.float64) - deg.astype(np.float64)
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum(noise**2), 1e-9))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=0, help="ignored until the daemon lands")
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    args = parser.parse_args(argv)
    from tools.prompts import make_speech

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = make_speech(PROMPT, Path(tmp) / "prompt.wav", rate=8000)
        pcm = read_wav(src)
    write_wav(args.out / "prompt.wav", pcm)
    print(f"prompt: {len(pcm) / 8000:.2f} s of speech -> {args.out / 'prompt.wav'}")
    for law in ("ulaw", "alaw"):
        t0 = time.perf_counter()
        codes = getattr(g711, f"{law}_encode")(pcm)
        back = getattr(g711, f"{law}_decode")(codes)
        dt = time.perf_counter() - t0
        write_wav(args.out / f"prompt_{law}.wav", back)
        print(f"{law}: {len(codes)} bytes, round trip {dt * 1e6:.0f} us, SNR {snr_db(pcm, back):.1f} dB "
              f"-> {args.out / f'prompt_{law}.wav'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
