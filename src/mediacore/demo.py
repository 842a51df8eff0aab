"""The media-core demo (what `make demo` shows until the call-centre daemon lands).

A spoken prompt (espeak-ng) is encoded with G.711 mu-law, sent across a
simulated network (Gaussian jitter plus random packet loss), and played out
through Hotline's adaptive jitter buffer with packet-loss concealment, next
to a simple phone on the same network: a fixed 60 ms jitter buffer that plays
silence for every packet lost or too late. Every step
writes a WAV to ./demo-out/ and prints a line; PESQ (ITU-T P.862) scores the
results when the `pesq` package is installed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from mediacore import g711, jitter, netsim, plc

PROMPT = (
    "Welcome to Hotline. For sales, press one. For support, press two. "
    "To hear these options again, press star."
)
FRAME = 160  # 20 ms at 8 kHz


def write_wav(path: Path, pcm: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def align(reference: np.ndarray, played: np.ndarray) -> np.ndarray:
    """`played` from where the prompt starts in it (the jitter buffer's initial
    delay, found by cross-correlation). Time-stretching moves the delay during
    the call; PESQ aligns that itself, so a little extra tail is kept."""
    n = min(len(reference), 8000 * 2)
    corr = np.correlate(played[: n + 4000].astype(float), reference[:n].astype(float), mode="valid")
    lag = int(np.argmax(corr))
    return played[lag : lag + len(reference) + 800]


def pesq_score(reference: np.ndarray, degraded: np.ndarray) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    return float(pesq(8000, reference.astype(np.float64), degraded.astype(np.float64), "nb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=0, help="accepted for `make demo DURATION=...`")
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--loss", type=float, default=0.05, help="packet loss probability (default 0.05)")
    parser.add_argument("--jitter-ms", type=float, default=15.0, help="network jitter, std dev in ms")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0.0 <= args.loss < 1.0:
        parser.error("--loss must be in [0, 1)")
    from tools.prompts import make_speech

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        speech = read_wav(make_speech(PROMPT, Path(tmp) / "prompt.wav", rate=8000))
    speech = speech[: len(speech) // FRAME * FRAME]
    write_wav(out / "1-prompt.wav", speech)
    print(f"prompt     {len(speech) / 8000:5.2f} s of speech (espeak-ng)            -> {out / '1-prompt.wav'}")

    payloads = [g711.ulaw_encode(speech[i : i + FRAME]) for i in range(0, len(speech), FRAME)]
    decoded = g711.ulaw_decode(b"".join(payloads))
    write_wav(out / "2-g711.wav", decoded)
    print(f"G.711      {len(payloads)} packets of 160 bytes (mu-law)              -> {out / '2-g711.wav'}"
          f"   PESQ {fmt(pesq_score(speech, decoded))}")

    # The network: Gaussian jitter on 40 ms of path delay, and random loss.
    trace = netsim.packets(len(payloads) + 50)
    trace = netsim.gaussian_jitter(trace, base_ms=40.0, sigma_ms=args.jitter_ms, seed=args.seed)
    trace = netsim.random_loss(trace, probability=args.loss, seed=args.seed)
    lost = trace.lost[: len(payloads)]
    payloads += [g711.ulaw_encode(np.zeros(FRAME, np.int16))] * 50  # trailing silence

    playout = jitter.Playout("PCMU")
    result = playout.run_trace(trace, payloads)
    ours = align(speech, np.asarray(result.pcm, dtype=np.int16))
    write_wav(out / "3-network-hotline.wav", ours)
    stats = result.stats
    print(f"network    {args.loss:.0%} loss, {args.jitter_ms:.0f} ms jitter: {int(lost.sum())} of {len(lost)} packets lost")
    delay = stats.jitter_buffer_delay / max(stats.jitter_buffer_emitted_count, 1) * 1000
    print(f"hotline    adaptive buffer ({delay:.0f} ms) + PLC, {stats.concealment_events} concealments "
          f"-> {out / '3-network-hotline.wav'}   PESQ {fmt(pesq_score(speech, ours))}")

    fixed_ms = 60.0
    too_late = (trace.arrival_ms - trace.send_ms)[: len(lost)] > fixed_ms
    gone = lost | np.nan_to_num(too_late, nan=0).astype(bool)
    simple = plc.conceal_losses(decoded, gone, FRAME, method="silence")
    write_wav(out / "4-network-simple-phone.wav", simple)
    print(f"baseline   fixed {fixed_ms:.0f} ms buffer, silence for {int(gone.sum())} lost/late packets "
          f"-> {out / '4-network-simple-phone.wav'}   PESQ {fmt(pesq_score(speech, simple))}")
    print(f"done in {time.perf_counter() - t_start:.1f} s; listen to the WAVs in {out}/")
    return 0


def fmt(score: float | None) -> str:
    return "n/a (pip install pesq)" if score is None else f"{score:.2f}"


if __name__ == "__main__":
    sys.exit(main())
