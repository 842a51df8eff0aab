from collections.abc import Buffer

import numpy as np
import numpy.typing as npt

NORMAL: int
CONCEALED: int
EMPTY: int
PUT_OK: int
PUT_DUPLICATE: int
PUT_LATE: int
PUT_DISCARDED: int
PUT_INVALID: int
HISTOGRAM_BUCKETS: int
CODECS: tuple[str, ...]

_FrameTuple = tuple[int, int, int, int, bool, bytes | None, bytes | None, float]

class JitterBuffer:
    def __init__(
        self,
        clock_rate: int,
        frame_samples: int,
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
        adapt_frames: bool,
    ) -> None: ...
    def put(
        self, seq: int, timestamp: int, ssrc: int, marker: bool, payload: Buffer, arrival_ms: float
    ) -> int: ...
    def get(self, now_ms: float) -> _FrameTuple: ...
    def stats(self) -> dict[str, int | float]: ...
    def playout_delay_ms(self, now_ms: float) -> float: ...
    @property
    def target_delay_ms(self) -> float: ...
    @property
    def playing(self) -> bool: ...
    @property
    def buffered_packets(self) -> int: ...
    @property
    def next_ready(self) -> bool: ...
    def reset(self) -> None: ...
    def run_trace(
        self,
        seq: npt.ArrayLike,
        timestamp: npt.ArrayLike,
        marker: npt.ArrayLike,
        arrival_ms: npt.ArrayLike,
        payload_size: int,
        ssrc: int,
        start_ms: float,
        tick_ms: float,
        ticks: int,
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...

def map_buffer_run_trace(
    seq: npt.ArrayLike,
    timestamp: npt.ArrayLike,
    arrival_ms: npt.ArrayLike,
    payload_size: int,
    clock_rate: int,
    frame_samples: int,
    delay_ms: float,
    start_ms: float,
    tick_ms: float,
    ticks: int,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int64]]: ...

class Playout:
    def __init__(
        self,
        codec: str,
        sample_rate: int,
        clock_rate: int,
        frame_samples: int,
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
        time_stretch: bool,
        accelerate_above_ms: float,
        decelerate_below_ms: float,
        accelerate_speech_above_ms: float,
        decelerate_speech_below_ms: float,
        use_fec: bool,
    ) -> None: ...
    def put(
        self, seq: int, timestamp: int, ssrc: int, marker: bool, payload: Buffer, arrival_ms: float
    ) -> int: ...
    def tick(self, now_ms: float) -> tuple[int, npt.NDArray[np.int16]]: ...
    def tick_into(self, now_ms: float, out: npt.NDArray[np.int16]) -> int: ...
    def stats(self) -> dict[str, int | float]: ...
    @property
    def frame_samples(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def target_delay_ms(self) -> float: ...
    def run_trace(
        self,
        seq: npt.ArrayLike,
        timestamp: npt.ArrayLike,
        marker: npt.ArrayLike,
        arrival_ms: npt.ArrayLike,
        payloads: Buffer,
        offsets: npt.ArrayLike,
        ssrc: int,
        start_ms: float,
        tick_ms: float,
        ticks: int,
    ) -> tuple[
        npt.NDArray[np.int16],
        npt.NDArray[np.int8],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
    ]: ...

class G711Plc:
    def __init__(self, sample_rate: int) -> None: ...
    def good(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]: ...
    def conceal(self, samples: int) -> npt.NDArray[np.int16]: ...
    def conceal_before(self, next: npt.NDArray[np.int16], samples: int) -> npt.NDArray[np.int16]: ...
    def reset(self) -> None: ...
    @property
    def pitch(self) -> int: ...
    @property
    def erased(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...

def accelerate(
    pcm: npt.NDArray[np.int16],
    sample_rate: int,
    min_correlation: float,
    quiet_rms: float,
    max_quiet_samples: int,
) -> npt.NDArray[np.int16]: ...
def preemptive_expand(
    pcm: npt.NDArray[np.int16],
    sample_rate: int,
    min_correlation: float,
    quiet_rms: float,
    max_quiet_samples: int,
) -> npt.NDArray[np.int16]: ...
def find_period(pcm: npt.NDArray[np.int16], min_lag: int, max_lag: int, window: int) -> tuple[int, float]: ...

class PacketStore:
    def __init__(self, capacity: int, max_payload: int) -> None: ...
    def insert(self, seq: int, timestamp: int, payload: Buffer, arrival_ms: float = 0.0) -> int: ...
    def find(self, seq: int) -> bytes | None: ...
    def first_from(self, seq: int) -> int: ...
    def take(self, seq: int) -> None: ...
    def was_taken(self, seq: int) -> bool: ...
    def advance(self, new_head: int) -> int: ...
    def clear(self, head: int) -> None: ...
    @property
    def head(self) -> int: ...
    @property
    def held(self) -> int: ...
    @property
    def capacity(self) -> int: ...
