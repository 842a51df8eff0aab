# Declarations of the C++ resampler (src/mediacore/cpp/resampler.hpp).
from libc.stdint cimport int16_t
from libcpp.vector cimport vector

cdef extern from "resampler.hpp" namespace "mediacore" nogil:
    cdef enum ResampleKernel "mediacore::ResampleKernel":
        KERNEL_AUTO "mediacore::ResampleKernel::Auto"
        KERNEL_SCALAR "mediacore::ResampleKernel::Scalar"
        KERNEL_BASELINE "mediacore::ResampleKernel::Baseline"
        KERNEL_AVX2 "mediacore::ResampleKernel::Avx2"

    cdef cppclass Resampler:
        Resampler(int from_rate, int to_rate, ResampleKernel kernel) except +
        int from_rate() noexcept
        int to_rate() noexcept
        int delay() noexcept
        ResampleKernel kernel() noexcept
        size_t output_size(size_t n) noexcept
        ptrdiff_t process(const int16_t* inp, size_t n, int16_t* out, size_t capacity) noexcept
        ptrdiff_t flush(int16_t* out, size_t capacity) noexcept
        void reset() noexcept
        const vector[double]& prototype() noexcept

