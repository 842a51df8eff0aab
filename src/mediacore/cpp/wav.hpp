// WAV (RIFF/WAVE) headers for call recordings, and crash repair.
//
// Follows the Microsoft RIFF/WAVE layout (Multimedia Programming Interface and
// Data Specifications 1.0, "WAVE Form"; RFC 2361 for the format tags):
//   "RIFF" <size> "WAVE"
//   "fmt " 16 | 18  wFormatTag, nChannels, nSamplesPerSec, nAvgBytesPerSec,
//                   nBlockAlign, wBitsPerSample [, cbSize = 0]
//   "fact" 4        dwSampleLength            (non-PCM formats only)
//   "data" <size>   interleaved samples, channel 0 (left) first
// Format tags: 1 PCM (16-bit little-endian), 6 A-law, 7 mu-law (ITU-T G.711,
// one byte a sample). Non-PCM formats carry the 18-byte fmt with cbSize = 0
// and a fact chunk, as the WAVE spec requires for compressed formats. All
// multi-byte fields are little-endian; a chunk of odd size is followed by one
// pad byte that its size does not count.
//
// Crash safety: the recorder writes the whole header first and rewrites the
// sizes as the data grows. repair() turns whatever a killed writer left into a
// valid file: the data chunk is taken to run to the end of the file (cut to a
// whole sample frame) unless what follows the declared data is a chain of
// well-formed chunks ending exactly at end of file; then the RIFF, data and
// fact sizes are rewritten. Running it again changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "byte_source.hpp"

namespace mediacore::wav {

enum class Codec : std::uint16_t { PCM16 = 1, ALAW = 6, ULAW = 7 };

struct Format {
  Codec codec = Codec::PCM16;
  int channels = 1;        // 1 or 2 (left = caller, right = agent)
  int sample_rate = 8000;  // 8000, 16000 or 48000

  int bytes_per_sample() const noexcept { return codec == Codec::PCM16 ? 2 : 1; }
  int block_align() const noexcept { return bytes_per_sample() * channels; }
};

// True for the formats the recorder writes (PCM16/A-law/mu-law, 1-2 channels,
// 8/16/48 kHz).
bool valid(const Format& f) noexcept;

// Bytes of the header before the samples: 44 for PCM, 58 for G.711.
std::size_t header_size(const Format& f) noexcept;

// Writes the header for `data_bytes` of samples into out (capacity >=
// header_size). `pad_written`: an odd data chunk is already followed by its
// pad byte (a finished file), which the RIFF size then counts. Sizes that do
// not fit 32 bits are clamped. Returns the bytes written, or 0 if the format
// is invalid or the capacity too small.
std::size_t write_header(const Format& f, std::uint64_t data_bytes, std::uint8_t* out, std::size_t capacity,
                         bool pad_written = true) noexcept;

// The data-size limit a WAV file can describe for this format (whole frames).
std::uint64_t max_data_bytes(const Format& f) noexcept;

enum RepairStatus : int {
  kRepairOk = 0,
  kNotWav = -1,         // no RIFF/WAVE signature
  kNoFormat = -2,       // no usable fmt chunk before the data
  kNoData = -3,         // no data chunk header
  kIoError = -4,        // open/read/write failed (errno is kept)
};

// What repair() decided (and, for repair_file, did).
struct RepairPlan {
  int status = kNotWav;
  bool changed = false;           // false: the file was already valid
  std::uint64_t old_size = 0;     // file length before
  std::uint64_t new_size = 0;     // file length after (truncation / pad byte)
  bool cut_to_data = false;       // the data runs to end of file: cut the file at its end
  bool add_pad_byte = false;      // then append one zero pad byte (odd data size)
  std::uint64_t data_offset = 0;  // first sample byte
  std::uint64_t data_bytes = 0;   // the data chunk's size after repair
  std::uint32_t riff_size = 0;    // RIFF size field after repair
  std::uint64_t fact_offset = 0;  // offset of the fact sample count (0: none)
  std::uint32_t fact_samples = 0;
  std::uint16_t format_tag = 0;
  std::uint16_t channels = 0;
  std::uint32_t sample_rate = 0;
  std::uint16_t block_align = 0;
  int sys_errno = 0;
};

// Pure: decides the repair of the bytes in `src`. Never reads outside them.
RepairPlan plan_repair(const ByteSource& src) noexcept;

// Repairs the file at `path` in place (truncate, pad, patch sizes, fsync).
RepairPlan repair_file(const char* path) noexcept;

}  // namespace mediacore::wav
