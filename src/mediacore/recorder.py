"""Call recorder: WAV (PCM16, mu-law, A-law) and Ogg Opus (RFC 7845), crash-safe.

Two ways in:

- :class:`WavRecorder` and :class:`OggOpusRecorder`: a simple synchronous
  recorder that owns its file. ``write(left, right=None)`` takes int16 frames
  of the caller (left) and the agent (right); mono files hold both mixed.
  Every ``flush_ms`` of audio the bytes reach the file and the WAV sizes are
  rewritten (Ogg: a page is completed), so a process killed mid-call leaves a
  file that plays up to the last flush, once :func:`repair` has run on it.
- :class:`Recorder`: the engine's split recorder. The media thread calls
  ``write``/``pause``/``resume``/``stop``, which only format bytes into a
  bounded in-memory buffer (never blocking, counting overruns); a writer
  thread calls ``drain(fd)`` (GIL released) to put them in the file.

Pause (PCI DSS): audio given while paused is never recorded. With
``pause_mode="silence"`` (the default) it is replaced by digital silence, so the
recording's timeline matches the call's; with ``pause_mode="gap"`` it is left
out, so the file is shorter than the call by the paused time.

:func:`repair` (the daemon runs it on start) makes any recording a killed
writer left playable: WAV sizes are recomputed from the file's length (a
partial sample frame is cut), a partial trailing Ogg page is cut and the last
page marked end-of-stream. It is idempotent.

>>> import numpy as np, tempfile, os, wave
>>> path = os.path.join(tempfile.mkdtemp(), "call.wav")
>>> with WavRecorder(path, sample_rate=8000, channels=2) as rec:
...     _ = rec.write(np.full(8000, 1000, np.int16), np.zeros(8000, np.int16))
>>> wave.open(path).getnframes()
8000
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from mediacore import _recorder

__all__ = [
    "Recorder",
    "WavRecorder",
    "OggOpusRecorder",
    "RecorderStats",
    "RepairResult",
    "repair",
    "repair_wav",
    "repair_ogg",
    "FORMATS",
    "PAUSE_MODES",
]

#: Recording formats: WAV 16-bit PCM, WAV G.711 mu-law / A-law, Ogg Opus.
FORMATS = ("pcm16", "ulaw", "alaw", "opus")
#: What a paused recording holds for the paused time.
PAUSE_MODES = ("silence", "gap")

_FORMAT = {
    "pcm16": _recorder.RecordingFormat.WAV_PCM16,
    "ulaw": _recorder.RecordingFormat.WAV_ULAW,
    "alaw": _recorder.RecordingFormat.WAV_ALAW,
    "opus": _recorder.RecordingFormat.OGG_OPUS,
}
_PAUSE = {"silence": _recorder.PauseMode.SILENCE, "gap": _recorder.PauseMode.GAP}


@dataclass(frozen=True, kw_only=True)
class RecorderStats:
    """Counters of a recorder (``statistics()``); sample counts are per channel."""

    samples_in: int
    """Samples given to ``write``."""
    samples_recorded: int
    """Samples in the file (silence recorded while paused included)."""
    samples_paused: int
    """Samples received while paused (never recorded)."""
    samples_dropped: int
    """Samples lost because the buffer was full (or the WAV 4 GiB limit)."""
    overruns: int
    """Frames (WAV) or pages (Ogg) the buffer could not take."""
    bytes_buffered: int
    bytes_written: int
    pages: int
    """Ogg pages made, headers included."""
    header_updates: int
    """WAV header size rewrites."""
    write_errors: int


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    """What :func:`repair` found and did."""

    path: str
    kind: str
    """``"wav"`` or ``"ogg"``."""
    changed: bool
    """False when the file was already valid."""
    old_size: int
    new_size: int
    duration: float
    """Seconds of audio the repaired file holds."""


def _stats(st) -> RecorderStats:
    return RecorderStats(
        samples_in=st.samples_in, samples_recorded=st.samples_recorded, samples_paused=st.samples_paused,
        samples_dropped=st.samples_dropped, overruns=st.overruns, bytes_buffered=st.bytes_buffered,
        bytes_written=st.bytes_written, pages=st.pages, header_updates=st.header_updates,
        write_errors=st.write_errors)


def _check_config(format: str, sample_rate: int, channels: int, pause_mode: str) -> None:
    if format not in _FORMAT:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if sample_rate not in (8000, 16000, 48000):
        raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate!r}")
    if format in ("ulaw", "alaw") and sample_rate != 8000:
        raise ValueError(f"sample_rate must be 8000 for G.711 ({format}), got {sample_rate}")
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 (both parties mixed) or 2 (caller left, agent right), got {channels!r}")
    if pause_mode not in _PAUSE:
        raise ValueError(f"pause_mode must be 'silence' or 'gap', got {pause_mode!r}")


def _check_comments(comments: Iterable[str]) -> list[str]:
    out = []
    for c in comments:
        if not isinstance(c, str) or "=" not in c or c.startswith("=") or "\n" in c:
            raise ValueError(f"comments must be 'KEY=value' strings, got {c!r}")
        out.append(c)
    return out


class Recorder:
    """The split recorder: format on the media thread, ``drain`` on a writer thread.

    ``format`` is ``"pcm16"``, ``"ulaw"``, ``"alaw"`` (WAV) or ``"opus"`` (Ogg
    Opus). ``buffer_bytes`` bounds the memory between the two threads (0: 4 s
    of audio for WAV, 256 KiB for Ogg). Ogg options: ``bitrate`` (b/s, 0 for
    24 kb/s mono / 32 kb/s stereo), ``complexity``, ``page_ms`` (audio per page,
    the most a crash can lose), ``serial`` (0: random), ``comments``
    (``"KEY=value"`` strings for OpusTags).

    Only one thread may call the media-side methods and one the writer side.
    """

    __slots__ = ("_r", "format", "sample_rate", "channels")

    def __init__(self, format: str = "pcm16", *, sample_rate: int = 8000, channels: int = 1,
                 pause_mode: str = "silence", buffer_bytes: int = 0, bitrate: int = 0, complexity: int = 5,
                 page_ms: int = 1000, serial: int = 0, comments: Iterable[str] = ()) -> None:
        _check_config(format, sample_rate, channels, pause_mode)
        if not isinstance(buffer_bytes, int) or buffer_bytes < 0:
            raise ValueError(f"buffer_bytes must be a non-negative integer, got {buffer_bytes!r}")
        if not isinstance(serial, int) or not 0 <= serial < 2**32:
            raise ValueError(f"serial must be a 32-bit unsigned integer, got {serial!r}")
        self._r = _recorder.Recorder(_FORMAT[format], sample_rate, channels, _PAUSE[pause_mode], buffer_bytes,
                                     bitrate, complexity, page_ms, serial, _check_comments(comments))
        self.format = format
        self.sample_rate = sample_rate
        self.channels = channels

    # media thread
    def write(self, left: np.ndarray | None, right: np.ndarray | None = None) -> int:
        """Record int16 samples of the caller (left) and agent (right); None is silence.

        Returns the samples (per channel) consumed. Never blocks.
        """
        if left is None and right is None:
            raise ValueError("left and right cannot both be None")
        n = self._r.write(left, right)
        if n < 0:
            raise ValueError("the recording is stopped")
        return n

    def pause(self) -> None:
        """Stop recording what is said (PCI DSS); see ``pause_mode``."""
        self._r.pause()

    def resume(self) -> None:
        self._r.resume()

    @property
    def paused(self) -> bool:
        return self._r.paused

    def stop(self) -> bool:
        """End the recording. True when done; False when the buffer was full: drain, then call again."""
        return self._r.stop() == 0

    # writer thread
    def drain(self, fd: int, sync: bool = False) -> int:
        """Write the buffered bytes to ``fd`` (from offset 0 on); returns bytes written.

        Raises OSError on a write error (the bytes stay buffered). ``sync=True``
        also fdatasyncs. Releases the GIL.
        """
        return self._r.drain(fd, sync)

    @property
    def complete(self) -> bool:
        """Stopped and every byte (and the final header) written."""
        return self._r.complete

    @property
    def buffered_bytes(self) -> int:
        return self._r.buffered_bytes

    @property
    def pre_skip(self) -> int:
        """Ogg Opus pre-skip in 48 kHz samples (the encoder's look-ahead); 0 for WAV."""
        return self._r.pre_skip

    def statistics(self) -> RecorderStats:
        return _stats(self._r.stats())


class _FileRecorder:
    """A recorder that owns its file and flushes it every ``flush_ms`` of audio."""

    _format: str

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int, channels: int, flush_ms: int,
                 durable: bool, **kw) -> None:
        if not isinstance(flush_ms, int) or not 20 <= flush_ms <= 60_000:
            raise ValueError(f"flush_ms must be an integer from 20 to 60000, got {flush_ms!r}")
        if self._format != "opus":
            # Room for two flush intervals between drains (at least the default 4 s).
            block = channels * (2 if self._format == "pcm16" else 1)
            kw["buffer_bytes"] = max(4 * sample_rate * block, 2 * sample_rate * flush_ms // 1000 * block) + 64
        self._rec = Recorder(self._format, sample_rate=sample_rate, channels=channels, **kw)
        self.path = Path(path)
        self._flush_samples = sample_rate * flush_ms // 1000
        self._since_flush = 0
        self._durable = bool(durable)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        # The header is on disk before any audio: an empty recording is valid.
        self._rec.drain(self._fd, self._durable)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, left: np.ndarray | None, right: np.ndarray | None = None) -> int:
        """Record caller (left) and agent (right) int16 samples; see :meth:`Recorder.write`."""
        if self._fd is None:
            raise ValueError("write to a closed recorder")
        if left is None and right is None:
            raise ValueError("left and right cannot both be None")
        n = len(left if left is not None else right)
        if left is not None and right is not None and len(right) != n:
            raise ValueError(f"left and right must have the same length, got {n} and {len(right)}")
        # In pieces of at most one flush interval, so any length fits the buffer.
        step = self._flush_samples
        for i in range(0, n, step) if n > step else (0,):
            done = self._rec.write(None if left is None else left[i:i + step],
                                   None if right is None else right[i:i + step])
            self._since_flush += done
            # Ogg pages complete every flush_ms on their own: write each as it comes.
            if self._since_flush >= step or (self._format == "opus" and self._rec.buffered_bytes > 0):
                self.flush()
        return n

    def flush(self) -> None:
        """Put everything formatted so far in the file (and rewrite the WAV sizes)."""
        if self._fd is None:
            raise ValueError("flush of a closed recorder")
        self._rec.drain(self._fd, self._durable)
        self._since_flush = 0

    def pause(self) -> None:
        """Stop recording what is said until :meth:`resume` (see ``pause_mode``)."""
        self._rec.pause()

    def resume(self) -> None:
        self._rec.resume()

    @property
    def paused(self) -> bool:
        return self._rec.paused

    def close(self) -> None:
        """Finish the file (final sizes / end-of-stream page) and close it. Idempotent."""
        if self._fd is None:
            return
        try:
            for _ in range(64):
                done = self._rec.stop()
                self._rec.drain(self._fd, self._durable)
                if done and self._rec.complete:
                    break
            else:  # pragma: no cover - only if the disk keeps refusing writes
                raise OSError(f"could not finish {self.path}")
        finally:
            os.close(self._fd)
            self._fd = None

    def statistics(self) -> RecorderStats:
        return self._rec.statistics()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, closed={self.closed})"


class WavRecorder(_FileRecorder):
    """Records a call to a WAV file.

    ``format``: ``"pcm16"`` (16-bit PCM), ``"ulaw"`` or ``"alaw"`` (G.711, 8 kHz).
    ``channels=2`` puts the caller on the left and the agent on the right;
    ``channels=1`` mixes both. The RIFF/data sizes are rewritten every
    ``flush_ms`` of audio; ``durable=True`` also fdatasyncs each flush.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int = 8000, channels: int = 2,
                 format: str = "pcm16", *, pause_mode: str = "silence", flush_ms: int = 1000,
                 durable: bool = False) -> None:
        if format not in ("pcm16", "ulaw", "alaw"):
            raise ValueError(f"format must be 'pcm16', 'ulaw' or 'alaw', got {format!r}")
        self._format = format
        super().__init__(path, sample_rate=sample_rate, channels=channels, flush_ms=flush_ms, durable=durable,
                         pause_mode=pause_mode)


class OggOpusRecorder(_FileRecorder):
    """Records a call to an Ogg Opus file (RFC 7845).

    A page is completed and written every ``flush_ms`` of audio (the most a
    crash can lose). ``comments`` go into OpusTags (e.g. ``["CALL_ID=..."]``).
    """

    _format = "opus"

    def __init__(self, path: str | os.PathLike[str], sample_rate: int = 8000, channels: int = 2, *,
                 bitrate: int = 0, complexity: int = 5, comments: Iterable[str] = (),
                 pause_mode: str = "silence", flush_ms: int = 1000, serial: int = 0,
                 durable: bool = False) -> None:
        if not isinstance(bitrate, int) or not (bitrate == 0 or 6000 <= bitrate <= 510_000):
            raise ValueError(f"bitrate must be 0 (automatic) or 6000..510000 b/s, got {bitrate!r}")
        if not isinstance(complexity, int) or not 0 <= complexity <= 10:
            raise ValueError(f"complexity must be an integer from 0 to 10, got {complexity!r}")
        super().__init__(path, sample_rate=sample_rate, channels=channels, flush_ms=flush_ms, durable=durable,
                         pause_mode=pause_mode, bitrate=bitrate, complexity=complexity, page_ms=flush_ms,
                         serial=serial, comments=comments)


def _raise_io(result: dict, path: str) -> None:
    if result["status"] == -4:
        err = result["errno"]
        raise OSError(err, os.strerror(err), path)


def repair_wav(path: str | os.PathLike[str]) -> RepairResult:
    """Fix a WAV file's RIFF, data (and fact) sizes from its real length. Idempotent.

    Raises ValueError if it is not a WAV file it can understand, OSError on I/O errors.
    """
    p = os.fspath(path)
    r = _recorder.repair_wav(p)
    _raise_io(r, p)
    if r["status"] < 0:
        why = {-1: "no RIFF/WAVE header", -2: "no usable fmt chunk", -3: "no data chunk"}[r["status"]]
        raise ValueError(f"{p}: cannot repair: {why}")
    frames = r["data_bytes"] // r["block_align"]
    return RepairResult(path=p, kind="wav", changed=r["changed"], old_size=r["old_size"], new_size=r["new_size"],
                        duration=frames / r["sample_rate"] if r["sample_rate"] else 0.0)


def repair_ogg(path: str | os.PathLike[str]) -> RepairResult:
    """Cut a partial trailing Ogg page and mark the last page end-of-stream. Idempotent.

    Raises ValueError if the file does not start with a valid Ogg page, or if
    it is damaged in the middle (then it is left untouched); OSError on I/O errors.
    """
    p = os.fspath(path)
    r = _recorder.repair_ogg(p)
    _raise_io(r, p)
    if r["status"] == -1:
        raise ValueError(f"{p}: cannot repair: no valid Ogg page at the start")
    if r["status"] == -2:
        raise ValueError(f"{p}: damaged in the middle (a bad page followed by good ones); left untouched")
    pre_skip = 0
    with open(p, "rb") as f:
        head = f.read(28 + 255 + 19)
    at = head.find(b"OpusHead")
    if at >= 0 and len(head) >= at + 12:
        pre_skip = int.from_bytes(head[at + 10:at + 12], "little")
    duration = max(0, r["last_granule"] - pre_skip) / 48000 if r["last_granule"] >= 0 else 0.0
    return RepairResult(path=p, kind="ogg", changed=r["changed"], old_size=r["old_size"], new_size=r["new_size"],
                        duration=duration)


def repair(path: str | os.PathLike[str]) -> RepairResult:
    """Repair a recording left by a killed writer (WAV or Ogg, told apart by its first bytes)."""
    p = os.fspath(path)
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic == b"RIFF":
        return repair_wav(p)
    if magic == b"OggS":
        return repair_ogg(p)
    raise ValueError(f"{p}: not a WAV or Ogg file (starts with {magic!r})")
