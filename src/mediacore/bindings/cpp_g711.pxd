# Declarations of the C++ G.711 / L16 kernels (src/mediacore/cpp/g711.hpp).
from libc.stdint cimport int16_t, uint8_t

cdef extern from "g711.hpp" namespace "mediacore::g711" nogil:
    void ulaw_encode(const int16_t* pcm, size_t n, uint8_t* out) noexcept
    void ulaw_decode(const uint8_t* codes, size_t n, int16_t* out) noexcept
    void alaw_encode(const int16_t* pcm, size_t n, uint8_t* out) noexcept
    void alaw_decode(const uint8_t* codes, size_t n, int16_t* out) noexcept

cdef extern from "g711.hpp" namespace "mediacore::l16" nogil:
    void l16_encode "mediacore::l16::encode"(const int16_t* pcm, size_t n, uint8_t* out) noexcept
    void l16_decode "mediacore::l16::decode"(const uint8_t* data, size_t n, int16_t* out) noexcept

cdef extern from "g711.hpp" namespace "mediacore::g711" nogil:
    void ulaw_decode_reference(const uint8_t* codes, size_t n, int16_t* out) noexcept
    void alaw_decode_reference(const uint8_t* codes, size_t n, int16_t* out) noexcept
