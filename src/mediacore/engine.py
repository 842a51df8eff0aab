"""The real-time media engine: RTP legs, bridges, conferences, players, recorders.

The engine owns its sockets and threads (one per core by default). Python
drives it with coarse verbs (create a leg, bridge two legs, play a prompt,
record...) and hears back through batched events; no Python runs per packet.

Two ways to consume events:

- plain threads / blocking code: ``engine.poll_events(timeout=1.0)``;
- Trio: ``async for event in engine.events(): ...`` (waits on the engine's
  event file descriptor with ``trio.lowlevel.wait_readable``).

Ids (legs, rooms, players, recorders) are plain ints. Every method is
thread-safe. Bad arguments raise ValueError, unknown ids KeyError, a full RTP
port range RuntimeError.

>>> from mediacore.engine import Engine
>>> with Engine(port_range=(40000, 40099), threads=1) as engine:
...     a = engine.create_leg(codec="PCMU", remote=("127.0.0.1", 40200))
...     b = engine.create_leg(codec="PCMU", remote=("127.0.0.1", 40202))
...     room = engine.bridge(a.id, b.id)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mediacore import _engine

__all__ = [
    "Engine",
    "Leg",
    "LegStats",
    "EngineStats",
    "WorkerStats",
    "Event",
    "CODECS",
    "DIRECTIONS",
]

#: codec name -> (native id, default payload type, default PCM rate)
CODECS: dict[str, tuple[int, int | None, int]] = {
    "PCMU": (0, 0, 8000),
    "PCMA": (1, 8, 8000),
    "L16": (2, None, 8000),
    "opus": (3, None, 16000),
}
#: our direction (what WE do): sendrecv, sendonly, recvonly, inactive
DIRECTIONS = {"sendrecv": 0, "sendonly": 1, "recvonly": 2, "inactive": 3}
_FORMATS = {"wav": 0, "wav-ulaw": 1, "wav-alaw": 2, "opus": 3}
_SUPERVISOR_MODES = {"off": 0, "listen": 1, "whisper": 2, "barge": 3}
_EVENT_TYPES = {
    1: "dtmf_begin",
    2: "dtmf",
    3: "playback_finished",
    4: "media_timeout",
    5: "media_resumed",
    6: "stats",
    7: "recording_finished",
    8: "latched",
    9: "rtcp_bye",
    10: "recording_error",
}
_DTMF_SOURCES = {0: None, 1: "rfc4733", 2: "inband"}
_PLAYBACK_END = {0: "completed", 1: "stopped", 2: "dtmf", 3: "leg_gone"}


class Leg(NamedTuple):
    """A leg as created: its id and the local address to put in our SDP."""

    id: int
    host: str
    rtp_port: int
    rtcp_port: int


@dataclass(frozen=True)
class LegStats:
    """Per-leg counters (RFC 3550 names where it defines them)."""

    leg: int
    local_port: int
    local_ssrc: int
    remote_ssrc: int
    latched: bool
    packets_received: int
    bytes_received: int
    packets_sent: int
    bytes_sent: int
    packets_lost: int
    packets_late: int
    packets_duplicated: int
    packets_relayed: int
    dropped_malformed: int
    dropped_unexpected_source: int
    dropped_oversize: int
    dropped_unknown_payload_type: int
    send_errors: int
    rtcp_received: int
    rtcp_sent: int
    rtcp_malformed: int
    dtmf_digits: int
    concealed_samples: int
    jitter_ms: float
    jitter_buffer_delay_ms: float
    rtt_ms: float
    remote_fraction_lost: float
    remote_jitter_ms: float
    mos: float


@dataclass(frozen=True)
class WorkerStats:
    legs: int
    rooms: int
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    ticks: int
    tick_overruns: int
    load: float
    busy_ns: int


@dataclass(frozen=True)
class EngineStats:
    workers: tuple[WorkerStats, ...]
    legs: int
    rooms: int
    players: int
    recorders: int
    port_pairs_total: int
    port_pairs_in_use: int
    port_exhausted: int
    events_delivered: int
    events_dropped: int
    commands: int
    recorder_bytes_written: int
    recorder_overruns: int


@dataclass(frozen=True)
class Event:
    """One engine event.

    ``type`` is one of: ``dtmf_begin``, ``dtmf`` (digit ended; ``digit``,
    ``duration_ms``, ``source`` = "rfc4733" | "inband"), ``playback_finished``
    (``object`` = player id, ``reason`` = completed | stopped | dtmf |
    leg_gone), ``media_timeout``, ``media_resumed``, ``stats`` (``stats``),
    ``recording_finished`` (``object`` = recorder id, ``value`` = bytes,
    ``duration_ms``), ``latched`` (``text`` = remote address), ``rtcp_bye``,
    ``recording_error``.
    """

    type: str
    leg: int
    object: int
    time_ms: int
    digit: str | None = None
    source: str | None = None
    duration_ms: int = 0
    code: int = 0
    value: int = 0
    text: str = ""
    stats: LegStats | None = None

    @property
    def reason(self) -> str | None:
        return _PLAYBACK_END.get(self.code) if self.type == "playback_finished" else None


def _event(t: tuple) -> Event:
    kind, leg, obj, time_ms, digit, source, duration, code, value, text, stats = t
    return Event(
        type=_EVENT_TYPES.get(kind, f"unknown-{kind}"),
        leg=leg,
        object=obj,
        time_ms=time_ms,
        digit=digit,
        source=_DTMF_SOURCES.get(source),
        duration_ms=duration,
        code=code,
        value=value,
        text=text,
        stats=LegStats(**stats) if stats is not None else None,
    )


@dataclass
class _LegSpec:
    """What create_leg/update_leg were told, so updates can be partial."""

    fields: dict[str, Any] = field(default_factory=dict)


class Engine:
    """A running media engine. Use as a context manager, or call close()."""

    def __init__(
        self,
        *,
        bind_host: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        threads: int = 0,
        tick_ms: int = 20,
        stats_interval: float = 5.0,
        rtcp_interval: float = 5.0,
        event_queue_capacity: int = 65536,
        socket_buffer_bytes: int = 0,
    ) -> None:
        lo, hi = port_range
        self._native = _engine.Engine(
            {
                "bind_host": bind_host,
                "port_min": int(lo),
                "port_max": int(hi),
                "threads": int(threads),
                "tick_ms": int(tick_ms),
                "stats_interval_ms": int(stats_interval * 1000),
                "rtcp_interval_ms": int(rtcp_interval * 1000),
                "event_queue_capacity": int(event_queue_capacity),
                "socket_buffer_bytes": int(socket_buffer_bytes),
            }
        )
        self._legs: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the threads, finalize recordings, free every port. Idempotent."""
        self._native.close()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ events
    def fileno(self) -> int:
        """A file descriptor that is readable while events are pending."""
        return self._native.fileno()

    def drain_events(self) -> list[Event]:
        """Every pending event, without waiting."""
        return [_event(t) for t in self._native.drain_events()]

    def poll_events(self, timeout: float | None = None) -> list[Event]:
        """Wait up to ``timeout`` seconds (None: forever) for events, then return them all."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        return [_event(t) for t in self._native.wait_events(ms)]

    async def events(self) -> AsyncIterator[Event]:
        """Trio: yields events as they come, a batch per wake-up."""
        import trio

        fd = self.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            for t in self._native.drain_events():
                yield _event(t)

    # ------------------------------------------------------------ legs
    @staticmethod
    def _leg_fields(
        *,
        codec: str = "PCMU",
        payload_type: int | None = None,
        sample_rate: int | None = None,
        ptime: int = 20,
        telephone_event: int | None = None,
        remote: tuple[str, int] | None = None,
        remote_rtcp_port: int = 0,
        latch: bool = True,
        direction: str = "sendrecv",
        media_timeout: float = 30.0,
        detect_inband_dtmf: bool = False,
        opus_bitrate: int = 0,
        opus_fec: bool = False,
        opus_dtx: bool = False,
        opus_complexity: int = 5,
        opus_packet_loss_percent: int = 0,
        affinity: int = 0,
    ) -> dict[str, Any]:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
        codec_id, default_pt, default_rate = CODECS[codec]
        if payload_type is None:
            if default_pt is None:
                raise ValueError(f"payload_type is required for {codec} (a dynamic payload type)")
            payload_type = default_pt
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if media_timeout < 0:
            raise ValueError("media_timeout must be >= 0 (0 disables it)")
        host, port = remote if remote is not None else ("", 0)
        return {
            "codec": codec_id,
            "payload_type": int(payload_type),
            "sample_rate": int(sample_rate if sample_rate is not None else default_rate),
            "ptime_ms": int(ptime),
            "telephone_event_pt": -1 if telephone_event is None else int(telephone_event),
            "remote_host": str(host),
            "remote_port": int(port),
            "remote_rtcp_port": int(remote_rtcp_port),
            "latch": bool(latch),
            "direction": DIRECTIONS[direction],
            "media_timeout_ms": int(media_timeout * 1000),
            "detect_inband_dtmf": bool(detect_inband_dtmf),
            "opus_bitrate": int(opus_bitrate),
            "opus_fec": bool(opus_fec),
            "opus_dtx": bool(opus_dtx),
            "opus_complexity": int(opus_complexity),
            "opus_packet_loss_percent": int(opus_packet_loss_percent),
            "affinity": int(affinity) & 0xFFFFFFFF,
        }

    def create_leg(self, **options: Any) -> Leg:
        """Allocate an RTP/RTCP port pair and start a leg.

        Options: ``codec`` (PCMU, PCMA, L16, opus), ``payload_type``,
        ``sample_rate``, ``ptime`` (ms), ``telephone_event`` (RFC 4733 payload
        type), ``remote`` ((host, port) from the far end's SDP, or None until
        known), ``latch`` (symmetric RTP, default True), ``direction``
        (sendrecv, sendonly, recvonly, inactive: what we do), ``media_timeout``
        (s), ``detect_inband_dtmf``, ``opus_*`` encoder settings, ``affinity``
        (legs with the same key share a thread: use the call id).
        """
        fields = self._leg_fields(**options)
        leg = Leg(*self._native.create_leg(fields))
        self._legs[leg.id] = dict(options)
        return leg

    def update_leg(self, leg: int, **changes: Any) -> None:
        """Change some of a leg's options (after an SDP answer or re-INVITE)."""
        if leg not in self._legs:
            raise KeyError(f"no such leg {leg}")
        options = {**self._legs[leg], **changes}
        self._native.update_leg(leg, self._leg_fields(**options))
        self._legs[leg] = options

    def destroy_leg(self, leg: int) -> None:
        self._native.destroy_leg(leg)
        self._legs.pop(leg, None)

    # ------------------------------------------------------------ rooms
    def bridge(self, a: int, b: int, *, sample_rate: int = 8000, forward_dtmf: bool = True) -> int:
        """Connect two legs; returns the room id. Same codec and nothing to
        decode: packets are relayed; otherwise decoded, mixed and re-encoded."""
        return self._native.bridge(a, b, sample_rate, forward_dtmf)

    def create_room(self, *, sample_rate: int = 8000, affinity: int = 0, forward_dtmf: bool = False) -> int:
        """An empty conference room (mix-minus)."""
        return self._native.create_room(sample_rate, affinity & 0xFFFFFFFF, forward_dtmf)

    def join(self, room: int, leg: int, *, member: bool = True) -> None:
        """Put a leg in a room; members hear and are heard by every member."""
        self._native.join(room, leg, member)

    def leave(self, room: int, leg: int) -> None:
        self._native.leave(room, leg)

    def set_edge(self, room: int, from_leg: int, to_leg: int, gain: float) -> None:
        """How loud ``to_leg`` hears ``from_leg`` (0.0 = not at all, 1.0 = as is)."""
        if not 0.0 <= gain <= 8.0:
            raise ValueError("gain must be within 0.0..8.0")
        self._native.set_edge(room, from_leg, to_leg, float(gain))

    def clear_edge(self, room: int, from_leg: int, to_leg: int) -> None:
        self._native.clear_edge(room, from_leg, to_leg)

    def supervise(self, room: int, supervisor: int, caller: int, agent: int, mode: str) -> None:
        """Supervisor modes as edges: off, listen, whisper (agent hears), barge (both hear).
        Switching mode on a live session keeps it."""
        if mode not in _SUPERVISOR_MODES:
            raise ValueError(f"mode must be one of {', '.join(_SUPERVISOR_MODES)}, got {mode!r}")
        self._native.supervise(room, supervisor, caller, agent, _SUPERVISOR_MODES[mode])

    def set_mute(self, room: int, leg: int, muted: bool) -> None:
        self._native.set_mute(room, leg, bool(muted))

    def destroy_room(self, room: int) -> None:
        self._native.destroy_room(room)

    # ------------------------------------------------------------ players
    def play(
        self,
        target: int,
        *,
        file: str | os.PathLike[str] | None = None,
        tone: str | None = None,
        silence: float | None = None,
        digits: str | None = None,
        region: str = "us",
        duration: float = 0.0,
        loops: int = 1,
        stop_on_dtmf: bool = False,
        gain: float = 1.0,
    ) -> int:
        """Play to a leg (only it hears) or a room (every member hears).

        Exactly one of ``file`` (a mono WAV: PCM16, A-law or mu-law at 8, 16 or
        48 kHz; decoded once and shared), ``tone`` (ringback, busy, congestion,
        dial; ``region`` us, eu or cn), ``silence`` (seconds) or ``digits``
        (in-band DTMF). ``loops`` 0 repeats a file forever. With
        ``stop_on_dtmf`` a digit from the target stops it (barge-in). Returns
        the player id; a ``playback_finished`` event follows.
        """
        given = [x is not None for x in (file, tone, silence, digits)]
        if sum(given) != 1:
            raise ValueError("give exactly one of file, tone, silence or digits")
        if loops < 0:
            raise ValueError("loops must be >= 0 (0 = forever)")
        if not 0.0 <= gain <= 8.0:
            raise ValueError("gain must be within 0.0..8.0")
        if file is not None:
            kind, path = 0, os.fspath(file)
        elif tone is not None:
            kind, path = 1, ""
        elif silence is not None:
            if silence < 0:
                raise ValueError("silence must be >= 0 seconds")
            kind, path, duration = 2, "", silence
        else:
            kind, path = 3, ""
        return self._native.play(
            target, kind, path, tone or "", region, digits or "", int(duration * 1000), int(loops),
            bool(stop_on_dtmf), float(gain),
        )

    def stop_playback(self, player: int) -> None:
        self._native.stop_playback(player)

    # ------------------------------------------------------------ recorders
    def record(
        self,
        target: int,
        path: str | os.PathLike[str],
        *,
        format: str = "wav",
        stereo: bool = True,
        sample_rate: int = 0,
        opus_bitrate: int = 0,
    ) -> int:
        """Record a leg (stereo: left what it says, right what it hears) or a
        room (its mix). Formats: wav, wav-ulaw, wav-alaw, opus (Ogg Opus).
        Disk writes happen on the engine's writer thread; a
        ``recording_finished`` event follows stop_recording()."""
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
        return self._native.record(target, os.fspath(path), _FORMATS[format], bool(stereo), int(sample_rate),
                                   int(opus_bitrate))

    def pause_recording(self, recorder: int) -> None:
        """Stop capturing audio (PCI DSS: card numbers never reach the file)."""
        self._native.pause_recording(recorder)

    def resume_recording(self, recorder: int) -> None:
        self._native.resume_recording(recorder)

    def stop_recording(self, recorder: int) -> None:
        self._native.stop_recording(recorder)

    # ------------------------------------------------------------ DTMF
    def send_dtmf(self, leg: int, digits: str, *, duration_ms: int = 100, pause_ms: int = 100) -> None:
        """RFC 4733 events when the leg negotiated telephone-event, in-band tones otherwise."""
        self._native.send_dtmf(leg, digits, int(duration_ms), int(pause_ms))

    # ------------------------------------------------------------ stats
    def leg_stats(self, leg: int) -> LegStats:
        return LegStats(**self._native.leg_stats(leg))

    def leg_stats_many(self, legs: Sequence[int]) -> list[LegStats]:
        """The stats of many legs in the order given, with one round trip per media thread
        (``leg_stats`` in a loop costs one per leg: slow on a busy engine). KeyError, and
        nothing returned, when any of them does not exist."""
        return [LegStats(**d) for d in self._native.leg_stats_many(list(legs))]

    def statistics(self) -> EngineStats:
        raw: Mapping[str, Any] = self._native.stats()
        fields = {f.name for f in dataclasses.fields(EngineStats)}
        values = {k: v for k, v in raw.items() if k in fields and k != "workers"}
        return EngineStats(workers=tuple(WorkerStats(**w) for w in raw["workers"]), **values)
