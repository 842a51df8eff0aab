"""Adaptive jitter buffer and playout (native, clock-free).

Two layers, both driven by a playout clock that passes the time in:

- :class:`JitterBuffer` holds RTP packets and hands them out in timestamp
  order, one frame per :meth:`~JitterBuffer.get`, each with an explicit
  :class:`FrameKind`: ``NORMAL`` (here is the packet), ``CONCEALED`` (it is
  missing or late: conceal it), ``EMPTY`` (nothing to play: silence). It
  reorders, drops duplicates and late packets, survives sequence-number and
  timestamp wrap, timestamp jumps, SSRC changes and sender clock drift, and
  adapts its delay to a quantile of the measured relative delay (a forgetting
  histogram, as WebRTC NetEQ does).
- :class:`Playout` owns a jitter buffer, a decoder and a PLC, and produces
  exactly one PCM frame per :meth:`~Playout.tick`: decoded, concealed (G.711
  Appendix I style PLC, see :mod:`mediacore.plc`; Opus: its own PLC and FEC),
  or silence. It moves the delay toward the target by time-stretching
  (removing or inserting pitch periods, or cutting silence).

Time is in milliseconds, from any origin, and only ever comes in as an
argument (``arrival_ms``, ``now_ms``): there is no clock inside, so a test
replays ten minutes of network in a fraction of a second.

Statistics use the W3C webrtc-stats names (``JitterBufferStats.w3c()``).

>>> from mediacore.jitter import JitterBuffer, FrameKind
>>> jb = JitterBuffer(initial_delay_ms=0)
>>> jb.put(seq=1, timestamp=160, ssrc=7, marker=True, payload=b"\\xff" * 160, arrival_ms=0.0)
<PutResult.OK: 0>
>>> jb.get(now_ms=20.0).kind
<FrameKind.NORMAL: 0>
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mediacore import _jitter

__all__ = [
    "FrameKind",
    "PutResult",
    "Frame",
    "JitterBufferStats",
    "JitterBuffer",
    "Playout",
    "PlayoutFrame",
    "TraceResult",
    "PlayoutTraceResult",
    "accelerate",
    "preemptive_expand",
    "find_period",
    "CODECS",
]

#: Codecs a :class:`Playout` can decode in this build.
CODECS: tuple[str, ...] = tuple(_jitter.CODECS)


class FrameKind(enum.IntEnum):
    """What a frame from the jitter buffer or the playout is."""

    NORMAL = _jitter.NORMAL
    CONCEALED = _jitter.CONCEALED
    EMPTY = _jitter.EMPTY


class PutResult(enum.IntEnum):
    """What :meth:`JitterBuffer.put` did with a packet."""

    OK = _jitter.PUT_OK
    DUPLICATE = _jitter.PUT_DUPLICATE
    LATE = _jitter.PUT_LATE
    DISCARDED = _jitter.PUT_DISCARDED
    INVALID = _jitter.PUT_INVALID


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame handed out by :meth:`JitterBuffer.get`.

    ``timestamp`` is the RTP timestamp (32 bits) of the frame's first sample
    and ``extended_timestamp`` the same, unwrapped to 64 bits; likewise
    ``sequence`` / ``extended_sequence`` (None when the frame has no packet).
    ``payload`` is the packet for NORMAL frames; for CONCEALED frames
    ``next_payload`` is the packet right after the missing one when it is
    already here (what Opus FEC needs).
    """

    kind: FrameKind
    timestamp: int
    extended_timestamp: int
    sequence: int | None
    extended_sequence: int | None
    samples: int
    marker: bool = False
    payload: bytes | None = None
    next_payload: bytes | None = None
    arrival_ms: float | None = None


_W3C_NAMES = {
    "jitter_buffer_delay": "jitterBufferDelay",
    "jitter_buffer_target_delay": "jitterBufferTargetDelay",
    "jitter_buffer_minimum_delay": "jitterBufferMinimumDelay",
    "jitter_buffer_emitted_count": "jitterBufferEmittedCount",
    "total_samples_received": "totalSamplesReceived",
    "concealed_samples": "concealedSamples",
    "silent_concealed_samples": "silentConcealedSamples",
    "concealment_events": "concealmentEvents",
    "inserted_samples_for_deceleration": "insertedSamplesForDeceleration",
    "removed_samples_for_acceleration": "removedSamplesForAcceleration",
    "packets_received": "packetsReceived",
    "packets_duplicated": "packetsDuplicated",
    "packets_discarded": "packetsDiscarded",
    "packets_lost": "packetsLost",
}


@dataclass(frozen=True, slots=True)
class JitterBufferStats:
    """Counters of a jitter buffer or playout (W3C webrtc-stats, snake_case).

    Delays (``jitter_buffer_delay`` and the like) are sums in seconds over
    emitted samples, as the W3C defines them: divide by
    ``jitter_buffer_emitted_count`` for the mean. Sample counters are in RTP
    clock units for a :class:`JitterBuffer` and in PCM samples for a
    :class:`Playout`. ``packets_late``, ``packets_reordered``,
    ``packets_invalid`` and ``buffer_resets`` have no W3C name; the last two
    fields are the current target and playout delay in ms.
    """

    jitter_buffer_delay: float
    jitter_buffer_target_delay: float
    jitter_buffer_minimum_delay: float
    jitter_buffer_emitted_count: int
    total_samples_received: int
    concealed_samples: int
    silent_concealed_samples: int
    concealment_events: int
    inserted_samples_for_deceleration: int
    removed_samples_for_acceleration: int
    packets_received: int
    packets_duplicated: int
    packets_late: int
    packets_reordered: int
    packets_lost: int
    packets_discarded: int
    packets_invalid: int
    buffer_resets: int
    target_delay_ms: float
    playout_delay_ms: float
    fec_recovered_samples: int = 0
    decode_errors: int = 0

    @classmethod
    def _from_native(cls, d: dict[str, Any]) -> JitterBufferStats:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def w3c(self) -> dict[str, float | int]:
        """The counters that have a W3C webrtc-stats name, under that name."""
        return {w3c: getattr(self, name) for name, w3c in _W3C_NAMES.items()}

    @property
    def mean_delay_ms(self) -> float:
        """Mean time an emitted sample waited in the buffer (ms), or 0."""
        n = self.jitter_buffer_emitted_count
        return 1000.0 * self.jitter_buffer_delay / n if n else 0.0


# ----------------------------------------------------------------- validation


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return int(value)


def _check_time(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number of milliseconds, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_number(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok or math.isnan(value):
        left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value}")
    return value


def _check_payload(payload: Any) -> Any:
    if isinstance(payload, str):
        raise ValueError("payload must be bytes-like, got str")
    try:
        memoryview(payload)
    except TypeError:
        raise ValueError(f"payload must be bytes-like, got {type(payload).__name__}") from None
    return payload


def _frame_samples(clock_rate: int, ptime_ms: float) -> int:
    samples = ptime_ms * clock_rate / 1000.0
    if abs(samples - round(samples)) > 1e-9 or round(samples) < 1:
        raise ValueError(f"ptime_ms {ptime_ms} is not a whole number of samples at {clock_rate} Hz")
    return int(round(samples))


def _buffer_options(
    clock_rate: int,
    ptime_ms: float,
    capacity: int,
    max_payload: int,
    min_delay_ms: float,
    max_delay_ms: float,
    initial_delay_ms: float,
    quantile: float,
    forget_factor: float,
    reference_window_ms: float,
    margin_ms: float,
    max_hold_ms: float,
) -> dict[str, Any]:
    clock_rate = _check_int("clock_rate", clock_rate, 1000, 192000)
    ptime_ms = _check_number("ptime_ms", ptime_ms, 0, 1000, lo_open=True)
    min_delay_ms = _check_number("min_delay_ms", min_delay_ms, 0, 10000)
    max_delay_ms = _check_number("max_delay_ms", max_delay_ms, 0, 10000)
    if max_delay_ms < min_delay_ms:
        raise ValueError(f"max_delay_ms ({max_delay_ms}) must be >= min_delay_ms ({min_delay_ms})")
    return dict(
        clock_rate=clock_rate,
        frame_samples=_frame_samples(clock_rate, ptime_ms),
        capacity=_check_int("capacity", capacity, 2, 32768),
        max_payload=_check_int("max_payload", max_payload, 1, 65535),
        min_delay_ms=min_delay_ms,
        max_delay_ms=max_delay_ms,
        initial_delay_ms=_check_number("initial_delay_ms", initial_delay_ms, 0, 10000),
        quantile=_check_number("quantile", quantile, 0, 1, lo_open=True, hi_open=True),
        forget_factor=_check_number("forget_factor", forget_factor, 0.5, 1, lo_open=True, hi_open=True),
        reference_window_ms=_check_number("reference_window_ms", reference_window_ms, 0, 60000, lo_open=True),
        margin_ms=_check_number("margin_ms", margin_ms, 0, 1000),
        max_hold_ms=_check_number("max_hold_ms", max_hold_ms, 0, 10000),
    )


_KINDS = {k.value: k for k in FrameKind}
_PUT_RESULTS = {r.value: r for r in PutResult}
_U32 = 2**32 - 1
_isfinite = math.isfinite


def _put(
    native: Any, seq: Any, timestamp: Any, ssrc: Any, marker: Any, payload: Any, arrival_ms: Any
) -> PutResult:
    # Per-packet path: plain ints, bytes and a finite float skip the general checks.
    if (
        type(seq) is int
        and type(timestamp) is int
        and type(ssrc) is int
        and type(payload) is bytes
        and type(arrival_ms) is float
        and 0 <= seq <= 65535
        and 0 <= timestamp <= _U32
        and 0 <= ssrc <= _U32
        and _isfinite(arrival_ms)
    ):
        return _PUT_RESULTS[native.put(seq, timestamp, ssrc, bool(marker), payload, arrival_ms)]
    return _PUT_RESULTS[
        native.put(
            _check_int("seq", seq, 0, 65535),
            _check_int("timestamp", timestamp, 0, _U32),
            _check_int("ssrc", ssrc, 0, _U32),
            bool(marker),
            _check_payload(payload),
            _check_time("arrival_ms", arrival_ms),
        )
    ]


def _now(now_ms: Any) -> float:
    if type(now_ms) is float and _isfinite(now_ms):
        return now_ms
    return _check_time("now_ms", now_ms)


def _frame(t: tuple) -> Frame:
    kind, ts64, seq64, samples, marker, payload, next_payload, arrival = t
    kind = _KINDS[kind]
    has_packet = kind is FrameKind.NORMAL or (kind is FrameKind.CONCEALED and seq64 >= 0)
    return Frame(
        kind=kind,
        timestamp=ts64 % 2**32,
        extended_timestamp=ts64,
        sequence=seq64 % 65536 if has_packet else None,
        extended_sequence=seq64 if has_packet else None,
        samples=samples,
        marker=marker,
        payload=payload,
        next_payload=next_payload,
        arrival_ms=arrival if kind is FrameKind.NORMAL else None,
    )


def _trace_columns(trace: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rx = trace.received()
    return (
        np.ascontiguousarray(rx.seq, np.uint16),
        np.ascontiguousarray(rx.timestamp, np.uint32),
        np.ascontiguousarray(rx.marker, np.uint8),
        np.ascontiguousarray(rx.arrival_ms, np.float64),
    )


# ----------------------------------------------------------------- jitter buffer


@dataclass(frozen=True)
class TraceResult:
    """A trace replayed through a :class:`JitterBuffer`: per tick, the frame
    kind, the extended sequence number played (-1 if none) and how long that
    packet waited in the buffer (ms, -1 if none)."""

    kinds: np.ndarray
    sequences: np.ndarray
    waits_ms: np.ndarray
    stats: JitterBufferStats


class JitterBuffer:
    """Adaptive RTP jitter buffer (the packet layer; see the module doc).

    Parameters (all keyword-only): ``clock_rate`` (RTP clock, Hz) and
    ``ptime_ms`` (one frame per :meth:`get`); ``capacity`` (packets held at
    most, allocated once) and ``max_payload`` (bytes; bigger packets are
    refused); ``min_delay_ms`` / ``max_delay_ms`` bound the target delay;
    ``initial_delay_ms`` is its floor until 20 packets have been measured;
    the target is the ``quantile`` of the relative delays in a histogram that
    forgets by ``forget_factor`` per packet, plus ``margin_ms``;
    ``reference_window_ms`` is the window of the smallest transit time the
    relative delay is measured against; after ``max_hold_ms`` of underrun the
    buffer stops concealing and plays silence until the next packet;
    ``adapt_frames`` lets it drop frames when far above the target (a
    :class:`Playout` time-stretches instead).
    """

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        ptime_ms: float = 20.0,
        capacity: int = 64,
        max_payload: int = 1500,
        min_delay_ms: float = 0.0,
        max_delay_ms: float = 500.0,
        initial_delay_ms: float = 40.0,
        quantile: float = 0.99,
        forget_factor: float = 0.998,
        reference_window_ms: float = 2000.0,
        margin_ms: float = 0.0,
        max_hold_ms: float = 80.0,
        adapt_frames: bool = True,
    ) -> None:
        opts = _buffer_options(
            clock_rate,
            ptime_ms,
            capacity,
            max_payload,
            min_delay_ms,
            max_delay_ms,
            initial_delay_ms,
            quantile,
            forget_factor,
            reference_window_ms,
            margin_ms,
            max_hold_ms,
        )
        self._native = _jitter.JitterBuffer(**opts, adapt_frames=bool(adapt_frames))
        self.clock_rate: int = opts["clock_rate"]
        self.frame_samples: int = opts["frame_samples"]
        self.max_payload: int = opts["max_payload"]
        self.max_delay_ms: float = opts["max_delay_ms"]

    def put(
        self, seq: int, timestamp: int, ssrc: int, marker: bool, payload: bytes, arrival_ms: float
    ) -> PutResult:
        """Add one received packet. Malformed packets (empty, over
        ``max_payload``) are refused with ``PutResult.INVALID`` and counted."""
        return _put(self._native, seq, timestamp, ssrc, marker, payload, arrival_ms)

    def put_packet(self, packet: Any, arrival_ms: float) -> PutResult:
        """Add an RTP packet object (``mediacore.rtp.RtpPacket`` or anything with
        ``sequence_number``, ``timestamp``, ``ssrc``, ``marker``, ``payload``)."""
        return self.put(
            packet.sequence_number, packet.timestamp, packet.ssrc, packet.marker, packet.payload, arrival_ms
        )

    def get(self, now_ms: float) -> Frame:
        """The next frame to play at ``now_ms``."""
        return _frame(self._native.get(_now(now_ms)))

    def stats(self) -> JitterBufferStats:
        return JitterBufferStats._from_native(self._native.stats())

    def playout_delay_ms(self, now_ms: float) -> float:
        """Delay of the next frame if played at ``now_ms``, against the transit reference."""
        return self._native.playout_delay_ms(_check_time("now_ms", now_ms))

    @property
    def target_delay_ms(self) -> float:
        return self._native.target_delay_ms

    @property
    def playing(self) -> bool:
        """True inside a talkspurt; False while waiting for packets."""
        return self._native.playing

    @property
    def buffered_packets(self) -> int:
        return self._native.buffered_packets

    def reset(self) -> None:
        """Forget the stream (packets, sequence state); keep the statistics."""
        self._native.reset()

    def run_trace(
        self,
        trace: Any,
        *,
        ticks: int | None = None,
        start_ms: float = 0.0,
        tick_ms: float | None = None,
        ssrc: int = 1,
        payload_size: int = 160,
    ) -> TraceResult:
        """Replay a :class:`mediacore.netsim.Trace` natively (no Python per
        packet): before each tick every packet that has arrived is put, then
        one frame is got. Payloads are ``payload_size`` filler bytes."""
        seq, ts, marker, arrival = _trace_columns(trace)
        tick_ms = _check_number(
            "tick_ms", tick_ms if tick_ms is not None else trace.ptime_ms, 0, 1000, lo_open=True
        )
        if ticks is None:  # until the last packet has had time to play
            last = float(arrival[-1]) if len(arrival) else start_ms
            ticks = int((last - start_ms + self.max_delay_ms) / tick_ms) + 2
        ticks = _check_int("ticks", ticks, 0, 2**40)
        kinds, seqs, waits = self._native.run_trace(
            seq,
            ts,
            marker,
            arrival,
            _check_int("payload_size", payload_size, 1, self.max_payload),
            _check_int("ssrc", ssrc, 0, 2**32 - 1),
            _check_time("start_ms", start_ms),
            tick_ms,
            ticks,
        )
        return TraceResult(kinds, seqs, waits, self.stats())


# ----------------------------------------------------------------- playout


@dataclass(frozen=True, slots=True)
class PlayoutFrame:
    kind: FrameKind
    pcm: np.ndarray


@dataclass(frozen=True)
class PlayoutTraceResult:
    """A trace replayed through a :class:`Playout`: the PCM played, the kind
    of each tick's frame, and for each packet played, when it arrived and
    when its first sample was played (ms)."""

    pcm: np.ndarray
    kinds: np.ndarray
    played_sequences: np.ndarray
    arrival_ms: np.ndarray
    played_ms: np.ndarray
    stats: JitterBufferStats

    @property
    def added_delay_ms(self) -> np.ndarray:
        """Per played packet: from its arrival to its first sample's playout."""
        return self.played_ms - self.arrival_ms


class Playout:
    """Jitter buffer + decoder + PLC + time-stretching: one PCM frame per tick.

    ``codec`` is ``"PCMU"``, ``"PCMA"``, ``"L16"`` (``sample_rate`` 8000,
    16000 or 48000) or, when this build has it, ``"opus"`` (RTP clock 48 kHz,
    PCM at ``sample_rate``). ``time_stretch`` enables acceleration and
    deceleration; ``accelerate_above_ms`` is how far above the target plus one
    frame the delay must be before silence is removed and
    ``decelerate_below_ms`` how far below the target before silence is
    inserted; ``accelerate_speech_above_ms`` and ``decelerate_speech_below_ms``
    are the (wider) margins before pitch periods of voiced speech are removed
    or repeated, which costs quality; ``use_fec`` uses Opus in-band FEC.
    Other keyword arguments are those of :class:`JitterBuffer`.
    """

    def __init__(
        self,
        codec: str = "PCMU",
        *,
        sample_rate: int | None = None,
        ptime_ms: float = 20.0,
        time_stretch: bool = True,
        accelerate_above_ms: float = 5.0,
        decelerate_below_ms: float = 0.0,
        accelerate_speech_above_ms: float = 60.0,
        decelerate_speech_below_ms: float = 25.0,
        use_fec: bool = True,
        capacity: int = 64,
        max_payload: int = 1500,
        min_delay_ms: float = 0.0,
        max_delay_ms: float = 500.0,
        initial_delay_ms: float = 40.0,
        quantile: float = 0.99,
        forget_factor: float = 0.998,
        reference_window_ms: float = 2000.0,
        margin_ms: float = 0.0,
        max_hold_ms: float = 80.0,
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
        if codec in ("PCMU", "PCMA"):
            if sample_rate not in (None, 8000):
                raise ValueError(f"sample_rate of {codec} is 8000, got {sample_rate}")
            sample_rate, clock_rate = 8000, 8000
        else:
            sample_rate = 8000 if sample_rate is None else sample_rate
            if sample_rate not in (8000, 16000, 48000):
                raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate}")
            clock_rate = 48000 if codec == "opus" else sample_rate
        opts = _buffer_options(
            clock_rate,
            ptime_ms,
            capacity,
            max_payload,
            min_delay_ms,
            max_delay_ms,
            initial_delay_ms,
            quantile,
            forget_factor,
            reference_window_ms,
            margin_ms,
            max_hold_ms,
        )
        self._native = _jitter.Playout(
            codec=codec,
            sample_rate=sample_rate,
            **opts,
            time_stretch=bool(time_stretch),
            accelerate_above_ms=_check_number("accelerate_above_ms", accelerate_above_ms, 0, 1000),
            decelerate_below_ms=_check_number("decelerate_below_ms", decelerate_below_ms, 0, 1000),
            accelerate_speech_above_ms=_check_number("accelerate_speech_above_ms", accelerate_speech_above_ms, 0, 1000),
            decelerate_speech_below_ms=_check_number("decelerate_speech_below_ms", decelerate_speech_below_ms, 0, 1000),
            use_fec=bool(use_fec),
        )
        self.codec = codec
        self.clock_rate = clock_rate
        self.max_delay_ms: float = opts["max_delay_ms"]
        self.ptime_ms = float(ptime_ms)

    @property
    def sample_rate(self) -> int:
        return self._native.sample_rate

    @property
    def frame_samples(self) -> int:
        """PCM samples per tick."""
        return self._native.frame_samples

    @property
    def target_delay_ms(self) -> float:
        return self._native.target_delay_ms

    def put(
        self, seq: int, timestamp: int, ssrc: int, marker: bool, payload: bytes, arrival_ms: float
    ) -> PutResult:
        """Add one received packet (see :meth:`JitterBuffer.put`)."""
        return _put(self._native, seq, timestamp, ssrc, marker, payload, arrival_ms)

    def put_packet(self, packet: Any, arrival_ms: float) -> PutResult:
        return self.put(
            packet.sequence_number, packet.timestamp, packet.ssrc, packet.marker, packet.payload, arrival_ms
        )

    def tick(self, now_ms: float, out: np.ndarray | None = None) -> PlayoutFrame:
        """Play one frame at ``now_ms``; ``out=`` (int16, ``frame_samples`` long)
        saves the allocation."""
        now_ms = _now(now_ms)
        if out is None:
            kind, pcm = self._native.tick(now_ms)
            return PlayoutFrame(_KINDS[kind], pcm)
        if (
            not isinstance(out, np.ndarray)
            or out.dtype != np.int16
            or out.ndim != 1
            or not out.flags.c_contiguous
        ):
            raise ValueError("out must be a C-contiguous one-dimensional numpy int16 array")
        if out.shape[0] != self.frame_samples:
            raise ValueError(f"out has {out.shape[0]} samples, need {self.frame_samples}")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
        return PlayoutFrame(_KINDS[self._native.tick_into(now_ms, out)], out)

    def stats(self) -> JitterBufferStats:
        return JitterBufferStats._from_native(self._native.stats())

    def run_trace(
        self,
        trace: Any,
        payloads: Any,
        *,
        ticks: int | None = None,
        start_ms: float = 0.0,
        tick_ms: float | None = None,
        ssrc: int = 1,
    ) -> PlayoutTraceResult:
        """Replay a :class:`mediacore.netsim.Trace` natively (no Python per
        packet or frame). ``payloads[i]`` is the payload of the trace's packet
        ``i`` (send order, as in ``trace.seq``); duplicates and losses are
        taken from the trace."""
        if len(payloads) != len(trace):
            raise ValueError(f"payloads has {len(payloads)} items, the trace {len(trace)} packets")
        tick_ms = _check_number(
            "tick_ms", tick_ms if tick_ms is not None else self.ptime_ms, 0, 1000, lo_open=True
        )
        keep = ~trace.lost
        order = np.flatnonzero(keep)[np.argsort(trace.arrival_ms[keep], kind="stable")]
        rx = trace.take(order)
        chunks = [bytes(_check_payload(payloads[i])) for i in order]
        offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in chunks], out=offsets[1:])
        if ticks is None:  # until the last packet has had time to play
            last = float(rx.arrival_ms[-1]) if len(rx) else start_ms
            ticks = int((last - start_ms + self.max_delay_ms) / tick_ms) + 2
        ticks = _check_int("ticks", ticks, 0, 2**40)
        pcm, kinds, seqs, arrival, played = self._native.run_trace(
            np.ascontiguousarray(rx.seq, np.uint16),
            np.ascontiguousarray(rx.timestamp, np.uint32),
            np.ascontiguousarray(rx.marker, np.uint8),
            np.ascontiguousarray(rx.arrival_ms, np.float64),
            b"".join(chunks),
            offsets,
            _check_int("ssrc", ssrc, 0, 2**32 - 1),
            _check_time("start_ms", start_ms),
            tick_ms,
            ticks,
        )
        return PlayoutTraceResult(pcm, kinds, seqs, arrival, played, self.stats())


# ----------------------------------------------------------------- time-stretch


def _check_pcm(pcm: Any) -> np.ndarray:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("pcm must be a one-dimensional numpy int16 array")
    return np.ascontiguousarray(pcm)


def accelerate(
    pcm: np.ndarray,
    sample_rate: int = 8000,
    *,
    min_correlation: float = 0.85,
    quiet_rms: float = 150.0,
    max_quiet_samples: int = 0,
) -> np.ndarray:
    """Remove one pitch period from ``pcm`` (at least 30 ms of it), or, if it is
    quiet, up to ``max_quiet_samples`` (default 10 ms). Returns ``pcm``'s
    length unchanged when the signal is neither periodic nor quiet."""
    return _jitter.accelerate(
        _check_pcm(pcm),
        _check_int("sample_rate", sample_rate, 8000, 48000),
        _check_number("min_correlation", min_correlation, -1, 1),
        _check_number("quiet_rms", quiet_rms, 0, 32768),
        _check_int("max_quiet_samples", max_quiet_samples, 0, 2048),
    )


def preemptive_expand(
    pcm: np.ndarray,
    sample_rate: int = 8000,
    *,
    min_correlation: float = 0.85,
    quiet_rms: float = 150.0,
    max_quiet_samples: int = 0,
) -> np.ndarray:
    """Insert one pitch period into ``pcm`` (or, if quiet, up to
    ``max_quiet_samples``)."""
    return _jitter.preemptive_expand(
        _check_pcm(pcm),
        _check_int("sample_rate", sample_rate, 8000, 48000),
        _check_number("min_correlation", min_correlation, -1, 1),
        _check_number("quiet_rms", quiet_rms, 0, 32768),
        _check_int("max_quiet_samples", max_quiet_samples, 0, 2048),
    )


def find_period(pcm: np.ndarray, min_lag: int, max_lag: int, window: int) -> tuple[int, float]:
    """The lag in ``[min_lag, max_lag]`` where ``pcm`` best repeats itself over
    ``window`` samples, and its normalized correlation."""
    return _jitter.find_period(_check_pcm(pcm), min_lag, max_lag, window)
