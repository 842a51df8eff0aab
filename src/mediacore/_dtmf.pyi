from collections.abc import Buffer

import numpy as np
import numpy.typing as npt

MAX_BLOCKS: int
MAX_SEGMENT_DURATION: int
ZERO_DBM0_PEAK: float

def event_from_digit(digit: str) -> int: ...
def digit_from_event(event: int) -> str: ...
def parse_payload(payload: Buffer) -> list[tuple[int, bool, int, int]]: ...
def serialize_block(event: int, end: bool, volume: int, duration: int) -> bytes: ...

class TelephoneEventSenderStats:
    packets: int
    events: int
    segments: int
    rejected: int

class TelephoneEventSender:
    def __init__(self, clock_rate: int = 8000, packet_interval: int = 160, end_repeats: int = 3,
                 min_gap: int = 0) -> None: ...
    def enqueue(self, event: int, duration: int, volume: int) -> int: ...
    # (timestamp, marker, payload, event, end, volume, duration, retransmission)
    def tick(self, now: int) -> tuple[int, bool, bytes, int, bool, int, int, bool] | None: ...
    def cancel(self) -> None: ...
    @property
    def idle(self) -> bool: ...
    @property
    def queued(self) -> int: ...
    def stats(self) -> TelephoneEventSenderStats: ...

class TelephoneEventReceiverStats:
    packets: int
    malformed: int
    unknown_events: int
    duplicates: int
    stale: int
    events: int
    lost_ends: int
    timeouts: int
    segments: int
    reports_dropped: int

# Reports: (kind 0 start / 1 end, reason 0 none / 1 E bit / 2 new event / 3 timeout / 4 flush,
#           event, volume, timestamp, duration)
_Report = tuple[int, int, int, int, int, int]

class TelephoneEventReceiver:
    def __init__(self, clock_rate: int = 8000, timeout_ms: int = 500) -> None: ...
    def receive(self, timestamp: int, marker: bool, payload: Buffer, now_ms: int | None = None) -> tuple[_Report, ...] | None: ...
    def poll(self, now_ms: int) -> tuple[_Report, ...]: ...
    def flush(self) -> tuple[_Report, ...]: ...
    def reset(self) -> None: ...
    @property
    def active(self) -> bool: ...
    @property
    def active_event(self) -> int | None: ...
    def stats(self) -> TelephoneEventReceiverStats: ...

class DtmfDetectorStats:
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
    events_dropped: int

# Events: (kind 0 start / 1 end, digit, start_sample, end_sample)
class DtmfDetector:
    def __init__(self, sample_rate: int = 8000, min_level_dbm0: float = -30.0, max_normal_twist_db: float = 10.0,
                 max_reverse_twist_db: float = 6.0, max_frequency_deviation: float = 0.025,
                 min_tone_energy_ratio: float = 0.6, min_harmonic_rejection_db: float = 12.0) -> None: ...
    def process(self, pcm: Buffer | npt.NDArray[np.int16]) -> list[tuple[int, str, int, int]]: ...
    def flush(self) -> list[tuple[int, str, int, int]]: ...
    def reset(self) -> None: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def digit_in_progress(self) -> str | None: ...
    def stats(self) -> DtmfDetectorStats: ...
