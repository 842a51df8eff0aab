// G.711 mu-law and A-law (ITU-T G.711), and L16 (RFC 3551 section 4.5.11).
//
// Bit-exact with the ITU tables as implemented by the classic Sun reference
// (and by CPython's audioop): mu-law quantizes the 14 most significant bits of a
// 16-bit sample, A-law the 13 most significant. Every function here is
// branch-light, allocation-free and safe for any input value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mediacore::g711 {

std::uint8_t ulaw_from_linear(std::int16_t sample) noexcept;
std::int16_t ulaw_to_linear(std::uint8_t code) noexcept;
std::uint8_t alaw_from_linear(std::int16_t sample) noexcept;
std::int16_t alaw_to_linear(std::uint8_t code) noexcept;

// Buffer kernels: n samples in, n codes out (and the reverse).
void ulaw_encode(const std::int16_t* pcm, std::size_t n, std::uint8_t* out) noexcept;
void ulaw_decode(const std::uint8_t* codes, std::size_t n, std::int16_t* out) noexcept;
void alaw_encode(const std::int16_t* pcm, std::size_t n, std::uint8_t* out) noexcept;
void alaw_decode(const std::uint8_t* codes, std::size_t n, std::int16_t* out) noexcept;

// The plain scalar decoders; the kernels above pick a SIMD build at run time
// and must agree with these for every code (the tests check both).
void ulaw_decode_reference(const std::uint8_t* codes, std::size_t n, std::int16_t* out) noexcept;
void alaw_decode_reference(const std::uint8_t* codes, std::size_t n, std::int16_t* out) noexcept;

// The code a silent (zero) sample encodes to; useful for comfort fill.
inline constexpr std::uint8_t kUlawSilence = 0xFF;
inline constexpr std::uint8_t kAlawSilence = 0xD5;

}  // namespace mediacore::g711

namespace mediacore::l16 {

// Host int16 <-> big-endian (network order) bytes; out holds 2*n bytes.
void encode(const std::int16_t* pcm, std::size_t n, std::uint8_t* out) noexcept;
// in holds 2*n bytes.
void decode(const std::uint8_t* in, std::size_t n, std::int16_t* out) noexcept;

}  // namespace mediacore::l16
