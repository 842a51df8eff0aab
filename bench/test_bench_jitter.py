"""Jitter buffer speed: put + get per packet, measured natively, side by side.

Each benchmark replays the same five-minute trace (15,000 packets of 20 ms,
Gaussian jitter with reordering) through a buffer in one native call, so no
Python runs per packet: put every packet that has arrived, get one frame per
20 ms tick. The baseline is the textbook buffer on std::map (one heap node
and one payload vector per packet, mediacore/cpp/jitter_reference.hpp); a
pure-Python heapq buffer is measured too, on a shorter slice, for scale.
``packets_per_second`` in extra_info is trace packets / median time.

Goal (Media core I): at least 2 million packets per second per core.
"""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from mediacore import _jitter, g711, netsim
from mediacore.jitter import FrameKind, JitterBuffer, Playout

N = 15_000


@pytest.fixture(scope="module")
def trace():
    t = netsim.reorder(
        netsim.gaussian_jitter(netsim.packets(N), base_ms=30, sigma_ms=8, seed=1),
        probability=0.02,
        extra_ms=30,
        seed=2,
    )
    rx = t.received()
    return dict(
        seq=np.ascontiguousarray(rx.seq),
        ts=np.ascontiguousarray(rx.timestamp),
        marker=np.ascontiguousarray(rx.marker.astype(np.uint8)),
        arrival=np.ascontiguousarray(rx.arrival_ms),
        ticks=int(rx.arrival_ms[-1] / 20) + 30,
        full=t,
    )


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    from tests.conftest import read_wav
    from tools.prompts import make_speech

    wav = make_speech(
        "Thank you for calling. Please hold while we connect you to the next available agent.",
        tmp_path_factory.mktemp("speech") / "speech.wav",
        rate=8000,
    )
    return read_wav(wav)[1]


def _rate(benchmark, packets):
    benchmark.extra_info["packets"] = packets
    benchmark.extra_info["packets_per_second"] = round(packets / benchmark.stats.stats.median)


def test_jitter_buffer_ours(benchmark, trace):
    benchmark.group = "jitter-put-get-15000-packets"

    def run():
        jb = _jitter.JitterBuffer(8000, 160, 64, 1500, 0.0, 500.0, 40.0, 0.99, 0.998, 2000.0, 0.0, 80.0, True)
        return jb.run_trace(
            trace["seq"], trace["ts"], trace["marker"], trace["arrival"], 160, 1, 0.0, 20.0, trace["ticks"]
        )

    kinds, seqs, _ = benchmark(run)
    assert (kinds == FrameKind.NORMAL).sum() > 0.98 * N
    played = seqs[seqs >= 0]
    assert np.all(np.diff(played) > 0)
    _rate(benchmark, N)


def test_jitter_buffer_std_map(benchmark, trace):
    benchmark.group = "jitter-put-get-15000-packets"
    benchmark.extra_info["role"] = "baseline"

    def run():
        return _jitter.map_buffer_run_trace(
            trace["seq"], trace["ts"], trace["arrival"], 160, 8000, 160, 60.0, 0.0, 20.0, trace["ticks"]
        )

    kinds, seqs = benchmark(run)
    assert (kinds == FrameKind.NORMAL).sum() > 0.95 * N
    _rate(benchmark, N)


class HeapBuffer:
    """A naive Python jitter buffer: a heap of (seq, payload), fixed delay."""

    def __init__(self, delay_ms: float) -> None:
        self.heap: list[tuple[int, bytes]] = []
        self.delay_ms = delay_ms
        self.next_seq: int | None = None
        self.start: float | None = None

    def put(self, seq: int, payload: bytes, arrival_ms: float) -> None:
        if self.start is None:
            self.start = arrival_ms + self.delay_ms
        if self.next_seq is not None and seq < self.next_seq:
            return
        heapq.heappush(self.heap, (seq, payload))

    def get(self, now_ms: float) -> bytes | None:
        if self.start is None or now_ms < self.start:
            return None
        if self.next_seq is None:
            self.next_seq = self.heap[0][0]
        while self.heap and self.heap[0][0] < self.next_seq:
            heapq.heappop(self.heap)
        self.next_seq += 1
        if self.heap and self.heap[0][0] == self.next_seq - 1:
            return heapq.heappop(self.heap)[1]
        return None


def test_jitter_buffer_python_heapq(benchmark, trace):
    benchmark.group = "jitter-put-get-python-1500-packets"
    benchmark.extra_info["role"] = "baseline"
    n = 1500
    seq = (trace["full"].received().seq.astype(np.int64))[:n].tolist()  # no wrap in the first 1500
    arrival = trace["arrival"][:n].tolist()
    payload = b"\xff" * 160

    def run():
        jb, played, i = HeapBuffer(60.0), 0, 0
        for tick in range(int(arrival[-1] / 20) + 5):
            now = tick * 20.0
            while i < n and arrival[i] <= now:
                jb.put(seq[i], payload, arrival[i])
                i += 1
            played += jb.get(now) is not None
        return played

    assert benchmark(run) > 0.95 * n
    _rate(benchmark, n)


def test_jitter_buffer_ours_python_api(benchmark, trace):
    """The same buffer driven from Python per packet (what a Python user pays)."""
    benchmark.group = "jitter-put-get-python-1500-packets"
    n = 1500
    rx = trace["full"].received()
    rows = [(int(rx.seq[i]), int(rx.timestamp[i]), float(rx.arrival_ms[i])) for i in range(n)]
    payload = b"\xff" * 160

    def run():
        jb, played, i = JitterBuffer(), 0, 0
        for tick in range(int(rows[-1][2] / 20) + 5):
            now = tick * 20.0
            while i < n and rows[i][2] <= now:
                jb.put(rows[i][0], rows[i][1], 1, False, payload, rows[i][2])
                i += 1
            played += jb.get(now).kind is FrameKind.NORMAL
        return played

    assert benchmark(run) > 0.95 * n
    _rate(benchmark, n)


def test_playout_g711_decode_plc_stretch(benchmark, trace, speech):
    """The whole PCM path (G.711 decode, PLC, time-stretch) per packet."""
    benchmark.group = "playout-g711-15000-packets"
    t = trace["full"]
    frames = len(speech) // 160
    codes = g711.ulaw_encode(np.tile(speech[: frames * 160], N // frames + 1)[: N * 160])
    payloads = [codes[i * 160 : (i + 1) * 160] for i in range(N)]

    def run():
        return Playout("PCMU").run_trace(t, payloads)

    res = benchmark.pedantic(run, rounds=5, iterations=1)
    assert len(res.played_sequences) > 0.98 * N
    _rate(benchmark, N)
