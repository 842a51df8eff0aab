"""DTMF: RFC 4733 telephone-events and in-band (Goertzel) detection.

Three native objects, one per stream, each the Python face of what the media
engine runs per packet or per frame:

- ``TelephoneEventSender`` turns digits into RFC 4733 payloads, one packet per
  tick: a start packet with the marker bit, updates with the same timestamp and
  a growing duration, the final packet (E bit) three times, events longer than
  0xFFFF timestamp units cut into segments (RFC 4733 section 2.5.1).
- ``TelephoneEventReceiver`` consumes (timestamp, marker, payload) and reports
  one ``DigitStart`` and one ``DigitEnd`` per event whatever the network did to
  the packets: repeated, lost or reordered packets, retransmitted ends, a lost
  end (the next event ends it), no end at all (a timeout), segments (2.5.2).
- ``DtmfDetector`` finds digits in PCM (ITU-T Q.23 frequencies, Q.24 receiver
  figures): down to -25 dBm0 per tone, twist up to 8 dB normal / 4 dB reverse,
  +-1.5 % frequency error accepted and +-3.5 % rejected, tones of 40 ms found
  and of 23 ms or less ignored, speech not taken for digits. See
  ``src/mediacore/cpp/dtmf.hpp`` for how.

Digits are the characters ``0-9 * # A-D``; RFC 4733 event 16 (flash) is ``"!"``.
Levels are dBm0 with the G.711 reference: a 0 dBm0 sine has a peak of
``ZERO_DBM0_PEAK`` (22748.35) in int16.

>>> from mediacore import dtmf, tones
>>> pcm = tones.dtmf_sequence("12#", sample_rate=8000)
>>> [d.digit for d in dtmf.DtmfDetector(8000).process(pcm)]
['1', '2', '#']
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from mediacore import _dtmf

__all__ = [
    "DIGITS",
    "FLASH",
    "ZERO_DBM0_PEAK",
    "MAX_SEGMENT_DURATION",
    "event_code",
    "event_digit",
    "EventBlock",
    "parse_payload",
    "build_payload",
    "TelephoneEventPacket",
    "TelephoneEventSender",
    "TelephoneEventSenderStatistics",
    "DigitStart",
    "DigitEnd",
    "TelephoneEventReceiver",
    "TelephoneEventReceiverStatistics",
    "DtmfDigit",
    "DtmfDetector",
    "DtmfDetectorStatistics",
    "detect",
]

#: The 16 DTMF digits in RFC 4733 event-code order (code = index).
DIGITS = "0123456789*#ABCD"
#: RFC 4733 event 16, hook flash.
FLASH = "!"
#: Peak int16 amplitude of a 0 dBm0 sine (G.711: 3.17 dB below full scale).
ZERO_DBM0_PEAK: float = _dtmf.ZERO_DBM0_PEAK
#: Longest duration one RFC 4733 packet can carry; longer events are segmented.
MAX_SEGMENT_DURATION: int = _dtmf.MAX_SEGMENT_DURATION

_END_REASONS = {1: "end", 2: "new-event", 3: "timeout", 4: "flush"}


def event_code(digit: str) -> int:
    """The RFC 4733 event code of a digit (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``, ``"!"``)."""
    if not isinstance(digit, str):
        raise ValueError(f"digit must be a one-character str, got {type(digit).__name__}")
    code = _dtmf.event_from_digit(digit)
    if code < 0:
        raise ValueError(f"digit must be one of 0-9 * # A-D or ! (flash), got {digit!r}")
    return code


def event_digit(code: int) -> str | None:
    """The digit of an RFC 4733 event code, or None for codes other than 0-16."""
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 16:
        return None
    return _dtmf.digit_from_event(code)


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be within {lo} ... {hi}, got {value}")
    return value


def _number(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be within {lo} ... {hi}, got {value}")
    return float(value)


# ---------------------------------------------------------------- payloads

@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventBlock:
    """One 4-byte block of a telephone-event payload (RFC 4733 section 2.3)."""

    event: int
    end: bool
    volume: int  # 0-63, meaning 0 to -63 dBm0
    duration: int  # timestamp units

    @property
    def digit(self) -> str | None:
        return event_digit(self.event)


def parse_payload(payload: bytes | bytearray | memoryview) -> list[EventBlock]:
    """The event blocks of a payload; ValueError if it is not 4*n bytes (1 <= n <= 16)."""
    return [EventBlock(event=e, end=end, volume=v, duration=d) for e, end, v, d in _dtmf.parse_payload(payload)]


def build_payload(event: int | str, *, end: bool = False, volume: int = 10, duration: int) -> bytes:
    """One event block: ``event`` is a code 0-255 or a digit; R is sent as 0."""
    code = event_code(event) if isinstance(event, str) else _int("event", event, 0, 255)
    return _dtmf.serialize_block(code, bool(end), _int("volume", volume, 0, 63),
                                 _int("duration", duration, 0, 0xFFFF))


# ---------------------------------------------------------------- sender

@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEventPacket:
    """A packet to send: the RTP header fields it needs and its payload."""

    payload_type: int
    marker: bool
    timestamp: int
    payload: bytes
    event: int
    end: bool
    volume: int
    duration: int
    retransmission: bool  # a repeat of the final packet (send it as a new RTP packet)

    @property
    def digit(self) -> str | None:
        return event_digit(self.event)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEventSenderStatistics:
    packets: int
    events: int
    segments: int
    rejected: int


class TelephoneEventSender:
    """RFC 4733 sender for one RTP stream.

    Queue digits with ``send()``, then call ``tick(timestamp)`` once per packet
    interval (``ptime_ms``) with the RTP timestamp of that interval's start,
    the one an audio packet sent now would carry; it returns the packet to send
    or None. Give each returned packet its own RTP sequence number, including
    the repeats of the final packet.
    """

    def __init__(self, payload_type: int, clock_rate: int = 8000, *, ptime_ms: int = 20, end_repeats: int = 3,
                 volume: int = 10, min_gap_ms: int = 0) -> None:
        self._payload_type = _int("payload_type", payload_type, 0, 127)
        self._clock_rate = _int("clock_rate", clock_rate, 1000, 192000)
        ptime = _int("ptime_ms", ptime_ms, 1, 1000)
        interval = ptime * clock_rate // 1000
        if interval * 1000 != ptime * clock_rate or interval > 0xFFFF:
            raise ValueError(f"ptime_ms {ptime_ms} is not a whole number of timestamp units at {clock_rate} Hz "
                             "(or exceeds 0xFFFF of them)")
        self._volume = _int("volume", volume, 0, 63)
        gap = _int("min_gap_ms", min_gap_ms, 0, 60000) * clock_rate // 1000
        self._native = _dtmf.TelephoneEventSender(clock_rate, interval, _int("end_repeats", end_repeats, 1, 10), gap)
        self.packet_interval = interval

    @property
    def payload_type(self) -> int:
        return self._payload_type

    @property
    def clock_rate(self) -> int:
        return self._clock_rate

    def send(self, digits: str, *, duration_ms: int = 100, volume: int | None = None) -> None:
        """Queue ``digits`` (each ``0-9 * # A-D !``), ``duration_ms`` each."""
        if not isinstance(digits, str) or not digits:
            raise ValueError(f"digits must be a non-empty str, got {digits!r}")
        codes = [event_code(d) for d in digits]
        duration = _int("duration_ms", duration_ms, 1, 3_600_000) * self._clock_rate // 1000
        level = self._volume if volume is None else _int("volume", volume, 0, 63)
        if len(codes) > 64 - self._native.queued:
            raise ValueError(f"the queue holds 64 events and has {64 - self._native.queued} free; "
                             f"cannot queue {len(codes)}")
        for code in codes:
            self.send_event(code, duration=max(duration, 1), volume=level)

    def send_event(self, event: int, *, duration: int, volume: int | None = None) -> None:
        """Queue one event by code (0-255), ``duration`` in timestamp units."""
        rc = self._native.enqueue(_int("event", event, 0, 255), _int("duration", duration, 1, 0x7FFFFFFF),
                                  self._volume if volume is None else _int("volume", volume, 0, 63))
        if rc == -1:
            raise ValueError("the event queue is full (64 events)")

    def tick(self, timestamp: int) -> TelephoneEventPacket | None:
        """The packet for the interval starting at RTP ``timestamp``, or None."""
        out = self._native.tick(_int("timestamp", timestamp, 0, 0xFFFFFFFF))
        if out is None:
            return None
        ts, marker, payload, event, end, volume, duration, retransmission = out
        return TelephoneEventPacket(payload_type=self._payload_type, marker=marker, timestamp=ts, payload=payload,
                                    event=event, end=end, volume=volume, duration=duration,
                                    retransmission=retransmission)

    def cancel(self) -> None:
        """Drop queued events; the event being sent ends with its next packet."""
        self._native.cancel()

    @property
    def idle(self) -> bool:
        """Nothing being sent and nothing queued."""
        return self._native.idle

    @property
    def queued(self) -> int:
        return self._native.queued

    def statistics(self) -> TelephoneEventSenderStatistics:
        s = self._native.stats()
        return TelephoneEventSenderStatistics(packets=s.packets, events=s.events, segments=s.segments,
                                              rejected=s.rejected)


# ---------------------------------------------------------------- receiver

@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DigitStart:
    """An event began: ``timestamp`` is its RTP start, ``volume`` 0-63 (-dBm0)."""

    digit: str
    event: int
    timestamp: int
    volume: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DigitEnd:
    """An event ended after ``duration`` timestamp units.

    ``reason``: ``"end"`` (E bit), ``"new-event"`` (its end packets were lost
    and a later event began), ``"timeout"`` (no update for ``timeout_ms``),
    ``"flush"`` (``flush()``).
    """

    digit: str
    event: int
    timestamp: int
    volume: int
    duration: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEventReceiverStatistics:
    packets: int
    malformed: int
    unknown_events: int
    duplicates: int
    stale: int
    events: int
    lost_ends: int
    timeouts: int
    segments: int


def _report(kind: int, reason: int, event: int, volume: int, timestamp: int, duration: int) -> DigitStart | DigitEnd:
    digit = _dtmf.digit_from_event(event)
    if kind == 0:
        return DigitStart(digit=digit, event=event, timestamp=timestamp, volume=volume)
    return DigitEnd(digit=digit, event=event, timestamp=timestamp, volume=volume, duration=duration,
                    reason=_END_REASONS[reason])


class TelephoneEventReceiver:
    """RFC 4733 receiver for one RTP stream (one SSRC): one digit per event.

    ``receive()`` takes the RTP timestamp, marker bit and payload of each
    packet of the telephone-event payload type and returns the ``DigitStart``
    and ``DigitEnd`` it causes. Give ``now_ms`` (arrival time, any monotonic
    millisecond clock) to have an event without an end time out; ``poll(now_ms)``
    does the same between packets. A malformed payload returns ``[]`` and is
    counted in ``statistics().malformed``; event codes above 16 are counted and
    ignored. Call ``reset()`` when the SSRC changes.
    """

    def __init__(self, clock_rate: int = 8000, *, timeout_ms: int = 500) -> None:
        self._native = _dtmf.TelephoneEventReceiver(_int("clock_rate", clock_rate, 1000, 192000),
                                                    _int("timeout_ms", timeout_ms, 1, 3_600_000))

    def receive(self, timestamp: int, marker: bool, payload: bytes | bytearray | memoryview, *,
                now_ms: int | None = None) -> list[DigitStart | DigitEnd]:
        # Per packet: the checks are inlined (a helper call costs as much as the native work).
        if type(timestamp) is not int or not 0 <= timestamp <= 0xFFFFFFFF:
            _int("timestamp", timestamp, 0, 0xFFFFFFFF)
        if now_ms is not None and (type(now_ms) is not int or not -(2**62) <= now_ms <= 2**62):
            _int("now_ms", now_ms, -(2**62), 2**62)
        reports = self._native.receive(timestamp, marker is True or bool(marker), payload, now_ms)
        if not reports:
            return []
        return [_report(*r) for r in reports]

    def poll(self, now_ms: int) -> list[DigitEnd]:
        """End the current event if it has not been updated for ``timeout_ms``."""
        return [_report(*r) for r in self._native.poll(_int("now_ms", now_ms, -(2**62), 2**62))]

    def flush(self) -> list[DigitEnd]:
        """End the current event, if any (the stream is closing)."""
        return [_report(*r) for r in self._native.flush()]

    def reset(self) -> None:
        """Forget all events (a new SSRC); statistics are kept."""
        self._native.reset()

    @property
    def active_digit(self) -> str | None:
        """The digit of the event in progress, or None."""
        event = self._native.active_event
        return None if event is None else _dtmf.digit_from_event(event)

    def statistics(self) -> TelephoneEventReceiverStatistics:
        s = self._native.stats()
        return TelephoneEventReceiverStatistics(
            packets=s.packets, malformed=s.malformed, unknown_events=s.unknown_events, duplicates=s.duplicates,
            stale=s.stale, events=s.events, lost_ends=s.lost_ends, timeouts=s.timeouts, segments=s.segments)


# ---------------------------------------------------------------- in-band detector

class DtmfDigit(NamedTuple):
    """A digit found in PCM: samples ``[start_sample, end_sample)`` since the detector began."""

    digit: str
    start_sample: int
    end_sample: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDetectorStatistics:
    """Counters of the detector; each rejected window counts under the first test it failed."""

    samples: int
    windows: int
    valid_windows: int
    masked_windows: int
    rejected_level: int
    rejected_twist: int
    rejected_relative_peak: int
    rejected_tone_ratio: int
    rejected_fill: int
    rejected_frequency: int
    rejected_harmonic: int
    digits: int


class DtmfDetector:
    """In-band DTMF receiver for one stream of mono int16 PCM at 8, 16 or 48 kHz.

    ``process(pcm)`` takes frames of any length and returns the digits that
    ended within them; ``digit_in_progress`` tells a digit that has started but
    not ended (for barge-in); ``flush()`` ends it at the end of a stream. The
    keyword arguments move the acceptance limits (defaults in dtmf.hpp).
    """

    def __init__(self, sample_rate: int = 8000, *, min_level_dbm0: float = -30.0, max_normal_twist_db: float = 10.0,
                 max_reverse_twist_db: float = 6.0, max_frequency_deviation: float = 0.025,
                 min_tone_energy_ratio: float = 0.6, min_harmonic_rejection_db: float = 12.0) -> None:
        if sample_rate not in (8000, 16000, 48000):
            raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate!r}")
        self._native = _dtmf.DtmfDetector(
            sample_rate,
            _number("min_level_dbm0", min_level_dbm0, -60.0, 0.0),
            _number("max_normal_twist_db", max_normal_twist_db, 0.0, 20.0),
            _number("max_reverse_twist_db", max_reverse_twist_db, 0.0, 20.0),
            _number("max_frequency_deviation", max_frequency_deviation, 1e-6, 0.05),
            _number("min_tone_energy_ratio", min_tone_energy_ratio, 1e-6, 1.0),
            _number("min_harmonic_rejection_db", min_harmonic_rejection_db, 0.0, 60.0))

    @property
    def sample_rate(self) -> int:
        return self._native.sample_rate

    def process(self, pcm) -> list[DtmfDigit]:
        """Analyse ``pcm`` (numpy int16 or any int16 buffer); the digits that ended in it."""
        return [DtmfDigit(digit, start, end) for kind, digit, start, end in self._native.process(pcm) if kind == 1]

    def flush(self) -> list[DtmfDigit]:
        """End the digit in progress, if any."""
        return [DtmfDigit(digit, start, end) for _, digit, start, end in self._native.flush()]

    def reset(self) -> None:
        """Back to the initial state (sample count and statistics too)."""
        self._native.reset()

    @property
    def digit_in_progress(self) -> str | None:
        return self._native.digit_in_progress

    def statistics(self) -> DtmfDetectorStatistics:
        s = self._native.stats()
        return DtmfDetectorStatistics(**{f.name: getattr(s, f.name) for f in dataclasses.fields(DtmfDetectorStatistics)})


def detect(pcm, sample_rate: int = 8000, **limits) -> list[DtmfDigit]:
    """All digits in a whole recording (a fresh detector, flushed at the end)."""
    detector = DtmfDetector(sample_rate, **limits)
    return detector.process(pcm) + detector.flush()
