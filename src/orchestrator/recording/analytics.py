"""Post-call analytics of a stereo recording: who talked, for how long, over whom, and the silences.

A recording's left channel is what the caller said and its right channel
what the caller heard (the agent). Each channel goes through the WebRTC
voice activity detector (``webrtcvad``, the client's choice) in 20 ms
frames; the frame decisions are smoothed (speech runs shorter than
``min_speech`` are dropped as clicks, gaps shorter than ``max_gap`` inside
speech are filled: the pauses between words), then:

* ``talk_left`` / ``talk_right``: seconds each party talked;
* ``overtalk``: seconds both talked at once;
* ``silence`` / ``longest_silence``: seconds neither talked (in total, and
  the longest stretch), counted between the first and the last word of the
  conversation: set-up before it and hang-up after it are not dead air;
* ``turns``: how many times the floor passed from one party to the other
  (a stretch where only one party talks gives it the floor);
* ``excluded``: seconds left out of everything above: PCI pauses (digital
  silence in the file) and holds (hold music on the right channel).

Audio is read in blocks (WAV PCM16, mu-law and A-law; Ogg Opus decoded with
the media core's Opus decoder), so a recording of any length is analysed in
bounded memory. :func:`analyze_file` is blocking and CPU-bound: services run
it in a worker thread.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "AudioInfo",
    "CallAnalytics",
    "Vad",
    "analyze",
    "analyze_file",
    "analyze_frames",
    "read_audio",
    "vad_frames",
]

try:
    import webrtcvad as _webrtcvad_module

    Vad = _webrtcvad_module.Vad
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the installed setuptools
    # webrtcvad 2.0.10's wrapper imports pkg_resources only for its version string,
    # and setuptools >= 81 no longer ships pkg_resources: use its C extension directly.
    if _exc.name != "pkg_resources":
        raise
    import _webrtcvad

    class Vad:  # type: ignore[no-redef]
        """The WebRTC VAD (the same C extension webrtcvad wraps)."""

        def __init__(self, mode: int | None = None) -> None:
            self._vad = _webrtcvad.create()
            _webrtcvad.init(self._vad)
            if mode is not None:
                self.set_mode(mode)

        def set_mode(self, mode: int) -> None:
            _webrtcvad.set_mode(self._vad, mode)

        def is_speech(self, buf: bytes, sample_rate: int, length: int | None = None) -> bool:
            length = length or int(len(buf) / 2)
            if length * 2 > len(buf):
                raise IndexError(f"buffer has {len(buf) // 2} frames, but length argument was {length}")
            return _webrtcvad.process(self._vad, sample_rate, buf, length)


@dataclass(frozen=True, kw_only=True)
class CallAnalytics:
    """What :func:`analyze` found (seconds; see the module docstring)."""

    duration: float
    talk_left: float
    talk_right: float
    overtalk: float
    silence: float
    longest_silence: float
    turns: int
    excluded: float
    sample_rate: int
    frame_ms: int
    vad_mode: int

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class AudioInfo:
    kind: str  # "wav" or "opus"
    sample_rate: int
    channels: int


# ---------------------------------------------------------------------------------------------- readers

_G711 = {6: "alaw", 7: "ulaw"}


def _wav_blocks(f, path: str, block_frames: int) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    fmt = None
    while True:
        ch = f.read(8)
        if len(ch) < 8:
            raise ValueError(f"{path}: no data chunk")
        cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
        if cid == b"fmt ":
            body = f.read(size + (size & 1))
            tag, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if tag == 0xFFFE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            break
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)
    if fmt is None:
        raise ValueError(f"{path}: no fmt chunk before the data")
    tag, channels, rate, bits = fmt
    if tag == 1 and bits == 16:
        width, decode = 2, None
    elif tag in _G711 and bits == 8:
        from mediacore import g711

        width = 1
        decode = g711.alaw_decode if _G711[tag] == "alaw" else g711.ulaw_decode
    else:
        raise ValueError(f"{path}: WAV format {tag} with {bits} bits is not one a recording uses")
    start = f.tell()
    end = min(start + size, os.fstat(f.fileno()).st_size) if size not in (0, 0xFFFFFFFF) \
        else os.fstat(f.fileno()).st_size
    frame_bytes = width * channels

    def blocks() -> Iterator[np.ndarray]:
        left = (end - start) // frame_bytes * frame_bytes
        while left > 0:
            data = f.read(min(left, block_frames * frame_bytes))
            if not data:
                return
            usable = len(data) // frame_bytes * frame_bytes
            left -= usable
            if decode is None:
                pcm = np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
            else:
                pcm = np.asarray(decode(data[:usable]), dtype=np.int16)
            yield pcm.reshape(-1, channels)

    return AudioInfo("wav", rate, channels), blocks()


def _ogg_packets(f) -> Iterator[bytes]:
    """Packets of the first logical stream of an Ogg file (RFC 3533), in order."""
    partial = b""
    serial = None
    while True:
        header = f.read(27)
        if len(header) < 27:
            return
        if header[:4] != b"OggS":
            raise ValueError("not an Ogg page")
        page_serial = struct.unpack("<I", header[14:18])[0]
        nseg = header[26]
        lacing = f.read(nseg)
        body = f.read(sum(lacing))
        if len(lacing) < nseg or len(body) < sum(lacing):
            return  # a partial last page (a crash): what came before is still good
        if serial is None:
            serial = page_serial
        if page_serial != serial:
            continue
        at = 0
        for lace in lacing:
            partial += body[at:at + lace]
            at += lace
            if lace < 255:
                yield partial
                partial = b""


def _opus_blocks(f, path: str) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    from mediacore import opus

    packets = _ogg_packets(f)
    head = next(packets, b"")
    if not head.startswith(b"OpusHead") or len(head) < 19:
        raise ValueError(f"{path}: not an Ogg Opus file (no OpusHead)")
    channels = head[9]
    pre_skip = struct.unpack("<H", head[10:12])[0]
    input_rate = struct.unpack("<I", head[12:16])[0]
    rate = input_rate if input_rate in (8000, 16000, 48000) else 48000
    if channels not in (1, 2):
        raise ValueError(f"{path}: {channels} channels (a recording has 1 or 2)")
    tags = next(packets, b"")
    if not tags.startswith(b"OpusTags"):
        raise ValueError(f"{path}: no OpusTags packet")
    decoder = opus.Decoder(rate, channels)
    skip = pre_skip * rate // 48000

    def blocks() -> Iterator[np.ndarray]:
        nonlocal skip
        for packet in packets:
            try:
                pcm = np.asarray(decoder.decode(packet), dtype=np.int16).reshape(-1, channels)
            except ValueError:
                continue  # a damaged packet: skip it (counted by the decoder)
            if skip:
                cut = min(skip, len(pcm))
                pcm = pcm[cut:]
                skip -= cut
            if len(pcm):
                yield pcm

    return AudioInfo("opus", rate, channels), blocks()


def read_audio(path: str | os.PathLike[str], *, block_frames: int = 8000) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """(format info, an iterator of int16 blocks shaped (samples, channels)) for a WAV or Ogg Opus file.

    The file stays open until the iterator is exhausted or garbage-collected.
    """
    p = os.fspath(path)
    f = open(p, "rb")
    try:
        magic = f.read(4)
        f.seek(0)
        if magic == b"RIFF":
            info, it = _wav_blocks(f, p, block_frames)
        elif magic == b"OggS":
            info, it = _opus_blocks(f, p)
        else:
            raise ValueError(f"{p}: not a WAV or Ogg file (starts with {magic!r})")
    except BaseException:
        f.close()
        raise

    def owned() -> Iterator[np.ndarray]:
        with f:
            yield from it

    return info, owned()


# ---------------------------------------------------------------------------------------------- analysis


def vad_frames(blocks: Iterator[np.ndarray], sample_rate: int, channels: int, *, frame_ms: int = 20,
               mode: int = 2) -> np.ndarray:
    """VAD decisions, a bool array shaped (frames, channels); a last partial frame is dropped."""
    if sample_rate not in (8000, 16000, 32000, 48000):
        raise ValueError(f"sample_rate: webrtcvad takes 8000, 16000, 32000 or 48000 Hz, got {sample_rate}")
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"frame_ms: webrtcvad takes 10, 20 or 30 ms frames, got {frame_ms}")
    vads = [Vad(mode) for _ in range(channels)]
    n = sample_rate * frame_ms // 1000
    out: list[np.ndarray] = []
    carry = np.zeros((0, channels), np.int16)
    for block in blocks:
        if carry.size:
            block = np.concatenate([carry, block])
        whole = len(block) // n * n
        frames = block[:whole]
        carry = block[whole:]
        if not whole:
            continue
        decisions = np.empty((whole // n, channels), bool)
        for c in range(channels):
            data = np.ascontiguousarray(frames[:, c]).astype("<i2").tobytes()
            speech = vads[c].is_speech
            for i in range(whole // n):
                decisions[i, c] = speech(data[i * 2 * n:(i + 1) * 2 * n], sample_rate)
        out.append(decisions)
    return np.concatenate(out) if out else np.zeros((0, channels), bool)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    if not flags.size:
        return []
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def _smooth(flags: np.ndarray, min_speech: int, max_gap: int) -> np.ndarray:
    out = flags.copy()
    for s, e in _runs(out):
        if e - s < min_speech:
            out[s:e] = False
    runs = _runs(out)
    for (_, e1), (s2, _) in itertools.pairwise(runs):
        if s2 - e1 <= max_gap:
            out[e1:s2] = True
    return out


def analyze_frames(left: np.ndarray, right: np.ndarray, *, frame_ms: int = 20,
                   excluded: np.ndarray | None = None, min_speech_ms: int = 60, max_gap_ms: int = 300,
                   sample_rate: int = 0, vad_mode: int = -1) -> CallAnalytics:
    """The analytics of two per-frame VAD decision arrays (see the module docstring).

    ``excluded``: frames left out (pauses, holds). Smoothing: speech runs
    shorter than ``min_speech_ms`` are dropped, gaps up to ``max_gap_ms`` filled.
    """
    n = min(len(left), len(right))
    left, right = np.asarray(left[:n], bool), np.asarray(right[:n], bool)
    ex = np.zeros(n, bool) if excluded is None else np.asarray(excluded[:n], bool)
    if len(ex) < n:
        ex = np.concatenate([ex, np.zeros(n - len(ex), bool)])
    min_speech = max(1, round(min_speech_ms / frame_ms))
    max_gap = max(0, round(max_gap_ms / frame_ms))
    left = _smooth(left, min_speech, max_gap) & ~ex
    right = _smooth(right, min_speech, max_gap) & ~ex
    sec = frame_ms / 1000.0
    talking = left | right
    silence_total = 0.0
    longest = 0.0
    if talking.any():
        first = int(np.argmax(talking))
        last = n - int(np.argmax(talking[::-1]))
        quiet = ~talking[first:last] & ~ex[first:last]
        runs = _runs(quiet)
        silence_total = sum(e - s for s, e in runs) * sec
        longest = max((e - s for s, e in runs), default=0) * sec
    floor = np.where(left & ~right, 1, np.where(right & ~left, 2, 0))
    holders = floor[floor != 0]
    turns = int(np.count_nonzero(holders[1:] != holders[:-1])) if holders.size else 0
    return CallAnalytics(
        duration=n * sec, talk_left=float(left.sum()) * sec, talk_right=float(right.sum()) * sec,
        overtalk=float((left & right).sum()) * sec, silence=silence_total, longest_silence=longest, turns=turns,
        excluded=float(ex.sum()) * sec, sample_rate=sample_rate, frame_ms=frame_ms, vad_mode=vad_mode)


def _excluded_mask(frames: int, frame_ms: int, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(frames, bool)
    for start, end in spans:
        a = max(0, int(np.floor(start * 1000 / frame_ms)))
        b = min(frames, int(np.ceil(end * 1000 / frame_ms)))
        if b > a:
            mask[a:b] = True
    return mask


def analyze(left: np.ndarray, right: np.ndarray, sample_rate: int, *, vad_mode: int = 2, frame_ms: int = 20,
            exclude: Sequence[tuple[float, float]] = ()) -> CallAnalytics:
    """Analytics of two int16 channels in memory (see :func:`analyze_file` for files)."""
    n = min(len(left), len(right))
    pcm = np.stack([np.asarray(left[:n], np.int16), np.asarray(right[:n], np.int16)], axis=1)
    flags = vad_frames(iter([pcm]), sample_rate, 2, frame_ms=frame_ms, mode=vad_mode)
    return analyze_frames(flags[:, 0], flags[:, 1], frame_ms=frame_ms,
                          excluded=_excluded_mask(len(flags), frame_ms, exclude), sample_rate=sample_rate,
                          vad_mode=vad_mode)


def analyze_file(path: str | os.PathLike[str], *, vad_mode: int = 2, frame_ms: int = 20,
                 exclude: Sequence[tuple[float, float]] = ()) -> CallAnalytics:
    """Analytics of a stereo WAV or Ogg Opus recording, read in blocks.

    ``exclude``: (start, end) seconds from the start of the file to leave
    out (pauses, holds). Raises ValueError for a mono or unreadable file.
    """
    info, blocks = read_audio(path)
    if info.channels != 2:
        raise ValueError(f"{os.fspath(path)}: analytics need a stereo recording (caller left, agent right), "
                         f"this one has {info.channels} channel(s)")
    flags = vad_frames(blocks, info.sample_rate, 2, frame_ms=frame_ms, mode=vad_mode)
    return analyze_frames(flags[:, 0], flags[:, 1], frame_ms=frame_ms,
                          excluded=_excluded_mask(len(flags), frame_ms, exclude), sample_rate=info.sample_rate,
                          vad_mode=vad_mode)
