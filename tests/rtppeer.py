"""A loopback RTP endpoint for tests: sends real RTP from a UDP socket on
127.0.0.1 and collects everything that comes back, on a background thread.

It stands in for a phone's media stack where a test needs exact control of
the packets (sequence gaps, SSRC changes, garbage); interop tests use real
peers (SIPp, baresip) instead.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from mediacore import g711
from mediacore.rtp import RtpPacket


@dataclass
class Received:
    packet: RtpPacket | None  # None: not parseable as RTP
    data: bytes
    source: tuple[str, int]
    time: float


class RtpPeer:
    def __init__(self, *, ssrc: int = 0x1234ABCD, payload_type: int = 0, rtcp: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.rtcp_sock = None
        if rtcp:
            # RTCP on the next port (RFC 3550): find a free even/odd pair.
            self.sock.close()
            for _ in range(50):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                if port % 2:
                    s.close()
                    continue
                r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    r.bind(("127.0.0.1", port + 1))
                except OSError:
                    s.close()
                    r.close()
                    continue
                self.sock, self.rtcp_sock = s, r
                break
            self.sock.settimeout(0.05)
            self.rtcp_sock.settimeout(0.05)
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.seq = 1000
        self.ts = 50000
        self.received: list[Received] = []
        self.rtcp_received: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def _run(self) -> None:
        while not self._stop.is_set():
            for sock, rtcp in ((self.sock, False), (self.rtcp_sock, True)):
                if sock is None:
                    continue
                try:
                    data, src = sock.recvfrom(4096)
                except (socket.timeout, OSError):
                    continue
                if rtcp:
                    with self._lock:
                        self.rtcp_received.append(data)
                    continue
                try:
                    pkt = RtpPacket.parse(data)
                except ValueError:
                    pkt = None
                with self._lock:
                    self.received.append(Received(pkt, data, src, time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        if self.rtcp_sock:
            self.rtcp_sock.close()

    def __enter__(self) -> RtpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- sending
    def packet(self, payload: bytes, *, samples: int | None = None, marker: bool = False,
               payload_type: int | None = None, seq: int | None = None, ts: int | None = None) -> bytes:
        """Build the next packet of our stream (advancing seq and ts)."""
        pkt = RtpPacket(
            version=2, padding=False, extension=False, marker=marker,
            payload_type=self.payload_type if payload_type is None else payload_type,
            sequence_number=(self.seq if seq is None else seq) & 0xFFFF,
            timestamp=(self.ts if ts is None else ts) & 0xFFFFFFFF,
            ssrc=self.ssrc, csrc=(), payload=payload,
        )
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
        if ts is None:
            self.ts = (self.ts + (samples if samples is not None else len(payload))) & 0xFFFFFFFF
        return pkt.serialize()

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def stream_pcm(self, pcm: np.ndarray, to: tuple[str, int], *, law: str = "ulaw", frame: int = 160,
                   pace: float = 0.02) -> int:
        """Send PCM as G.711 packets of `frame` samples, paced in real time."""
        encode = g711.ulaw_encode if law == "ulaw" else g711.alaw_encode
        n = 0
        start = time.monotonic()
        for i in range(0, len(pcm) - frame + 1, frame):
            self.send(self.packet(encode(pcm[i:i + frame]), marker=(i == 0)), to)
            n += 1
            delay = start + n * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return n

    # ---------------------------------------------------------------- receiving
    def packets(self) -> list[RtpPacket]:
        with self._lock:
            return [r.packet for r in self.received if r.packet is not None]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RtpPacket]:
        """Wait until `count` RTP packets arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pkts = self.packets()
            if len(pkts) >= count:
                return pkts
            time.sleep(0.01)
        return self.packets()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.rtcp_received.clear()

    def audio(self, *, law: str = "ulaw", payload_type: int | None = None) -> np.ndarray:
        """Decoded audio of every received packet of the given payload type, in arrival order."""
        decode = g711.ulaw_decode if law == "ulaw" else g711.alaw_decode
        pt = (0 if law == "ulaw" else 8) if payload_type is None else payload_type
        parts = [decode(p.payload) for p in self.packets() if p.payload_type == pt]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def tone(freq: float, seconds: float, *, rate: int = 8000, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def band_energy(pcm: np.ndarray, freq: float, *, rate: int = 8000, width: float = 30.0) -> float:
    """Share of the signal's energy within +/- width Hz of freq (0..1)."""
    if len(pcm) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    total = spectrum.sum()
    if total == 0:
        return 0.0
    return float(spectrum[(freqs > freq - width) & (freqs < freq + width)].sum() / total)


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Poll predicate() until it returns something truthy; return that (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
