# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Native polyphase resampler between 8, 16 and 48 kHz (see mediacore.resample for the API)."""

cimport numpy as cnp
from libc.stdint cimport int16_t
from libc.string cimport memmove

cimport cpp_resample as k
from pcm_buffers cimport NOGIL_THRESHOLD, Borrowed, borrow_pcm, new_pcm, release

import numpy as np

cnp.import_array()

RATES = (8000, 16000, 48000)

_KERNELS = {
    "auto": <int>k.KERNEL_AUTO,
    "scalar": <int>k.KERNEL_SCALAR,
    "baseline": <int>k.KERNEL_BASELINE,
    "avx2": <int>k.KERNEL_AVX2,
}
_KERNEL_NAMES = {v: name for name, v in _KERNELS.items()}


cdef int _check_rate(object rate, str name) except -1:
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise ValueError(f"{name} must be an int (8000, 16000 or 48000), got {rate!r}")
    if rate not in RATES:
        raise ValueError(f"{name} must be 8000, 16000 or 48000, got {rate}")
    return 0


cdef k.ResampleKernel _kernel(object kernel) except *:
    cdef int value
    try:
        value = _KERNELS[kernel]
        return <k.ResampleKernel>value
    except (KeyError, TypeError):
        raise ValueError(f"kernel must be one of {', '.join(_KERNELS)}, got {kernel!r}") from None


cdef class Resampler:
    """Stateful resampler from ``from_rate`` to ``to_rate`` (8000, 16000 or 48000 Hz).

    ``process(pcm)`` takes any number of int16 samples and returns the
    resampled samples so far; the filter history is carried across calls, so
    chunked and one-shot processing give identical samples. The output lags the
    input by ``delay`` output samples; ``flush()`` returns the last ``delay``
    samples (as if the input were followed by silence) and resets.
    """

    cdef k.Resampler* _r

    def __cinit__(self, from_rate, to_rate, *, kernel="auto"):
        _check_rate(from_rate, "from_rate")
        _check_rate(to_rate, "to_rate")
        cdef k.ResampleKernel which = _kernel(kernel)
        self._r = new k.Resampler(from_rate, to_rate, which)

    def __dealloc__(self):
        del self._r

    @property
    def from_rate(self) -> int:
        return self._r.from_rate()

    @property
    def to_rate(self) -> int:
        return self._r.to_rate()

    @property
    def delay(self) -> int:
        """Group delay of the filter, in output samples."""
        return self._r.delay()

    @property
    def kernel(self) -> str:
        """The dot-product kernel in use: "scalar", "baseline" (SSE2) or "avx2"."""
        return _KERNEL_NAMES[<int>self._r.kernel()]

    def output_size(self, Py_ssize_t n) -> int:
        """How many samples ``process`` of ``n`` samples returns from the current state."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self._r.output_size(<size_t>n)

    def process(self, pcm):
        """Resample a chunk of int16 samples; returns a new int16 array."""
        cdef Borrowed src
        borrow_pcm(pcm, &src, "pcm")
        cdef size_t n = <size_t>src.n
        cdef size_t need
        cdef ptrdiff_t got
        cdef cnp.ndarray out
        cdef int16_t* dst
        try:
            need = self._r.output_size(n)
            out = new_pcm(<Py_ssize_t>need)
            dst = <int16_t*>cnp.PyArray_DATA(out)
            if src.n >= NOGIL_THRESHOLD:
                with nogil:
                    got = self._r.process(<const int16_t*>src.data, n, dst, need)
            else:
                got = self._r.process(<const int16_t*>src.data, n, dst, need)
            if got < 0 or <size_t>got != need:
                raise RuntimeError(f"resampler wrote {got} samples, expected {need}")
            return out
        finally:
            release(&src)

    def flush(self):
        """The last ``delay`` samples still in the filter; then the state is reset."""
        cdef cnp.ndarray out = new_pcm(self._r.delay())
        cdef ptrdiff_t got = self._r.flush(<int16_t*>cnp.PyArray_DATA(out), <size_t>self._r.delay())
        if got != self._r.delay():
            raise RuntimeError(f"resampler flushed {got} samples, expected {self._r.delay()}")
        return out

    def reset(self):
        """Forget the history, as if freshly constructed."""
        self._r.reset()

    def prototype(self):
        """The prototype low-pass filter (float64, at the higher rate)."""
        cdef const double* p = self._r.prototype().data()
        cdef size_t n = self._r.prototype().size()
        return np.array([p[i] for i in range(n)], dtype=np.float64)

    def __repr__(self):
        return (f"Resampler(from_rate={self.from_rate}, to_rate={self.to_rate}, delay={self.delay}, "
                f"kernel={self.kernel!r})")


def resample(pcm, from_rate, to_rate, *, kernel="auto"):
    """Resample a whole signal; the output is aligned with the input (no delay).

    Returns ``ceil(len(pcm) * to_rate / from_rate)`` samples: the filter's
    delay is removed and its tail flushed, as ``scipy.signal.resample_poly``
    aligns its output.
    """
    _check_rate(from_rate, "from_rate")
    _check_rate(to_rate, "to_rate")
    cdef k.ResampleKernel which = _kernel(kernel)
    cdef Borrowed src
    borrow_pcm(pcm, &src, "pcm")
    cdef k.Resampler* r = NULL
    cdef size_t n = <size_t>src.n
    cdef size_t body, delay, total
    cdef ptrdiff_t got_body = 0, got_tail = 0
    cdef cnp.ndarray out
    cdef int16_t* dst
    try:
        r = new k.Resampler(from_rate, to_rate, which)
        body = r.output_size(n)
        delay = <size_t>r.delay()
        total = body + delay
        out = new_pcm(<Py_ssize_t>total)
        dst = <int16_t*>cnp.PyArray_DATA(out)
        with nogil:
            got_body = r.process(<const int16_t*>src.data, n, dst, body) if n > 0 else 0
            got_tail = r.flush(dst + body, delay)
            if got_body == <ptrdiff_t>body and got_tail == <ptrdiff_t>delay:
                memmove(dst, dst + delay, body * sizeof(int16_t))
        if got_body != <ptrdiff_t>body or got_tail != <ptrdiff_t>delay:
            raise RuntimeError("resampler wrote an unexpected number of samples")
        out.resize(<Py_ssize_t>body, refcheck=False)
        return out
    finally:
        del r
        release(&src)

