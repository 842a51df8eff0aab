// Ogg pages (RFC 3533) carrying Opus (RFC 7845), and crash repair.
//
// Page layout (RFC 3533 section 6): "OggS", version 0, header type flags
// (0x01 continued, 0x02 BOS, 0x04 EOS), granule position (int64 LE), stream
// serial number, page sequence number, CRC32, segment count, lacing values,
// body. A packet is laced as 255-byte segments plus one final segment < 255
// (a packet whose size is a multiple of 255 ends with a 0 segment).
// The CRC is the Ogg one: polynomial 0x04C11DB7, initial value 0, no bit
// reflection, no final XOR, computed over the whole page with the CRC field
// set to zero (table driven, the table generated at compile time).
//
// Opus mapping (RFC 7845): the first page holds only the identification header
// "OpusHead" (section 5.1: version 1, channels, pre-skip in 48 kHz samples,
// input sample rate, output gain 0, channel mapping family 0 for 1-2
// channels) with BOS set and granule 0; the comment header "OpusTags"
// (section 5.2: vendor string, user comments "KEY=value") starts a new page and
// its page has granule 0; audio starts on a new page. The granule position of
// an audio page is the 48 kHz sample count at the end of its last completed
// packet (section 4); the last page has EOS set and may carry a smaller
// granule to trim the end (section 4.5).
//
// This writer never splits a packet across pages, so every page ends on a
// packet boundary and a killed writer only ever leaves a partial trailing page.
// repair() truncates that partial page, and marks the last whole page EOS
// (recomputing its CRC) so the file ends as RFC 3533 requires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "byte_source.hpp"

namespace mediacore::ogg {

inline constexpr std::uint8_t kContinued = 0x01;
inline constexpr std::uint8_t kBos = 0x02;
inline constexpr std::uint8_t kEos = 0x04;
inline constexpr std::size_t kHeaderBytes = 27;
inline constexpr std::size_t kMaxSegments = 255;
inline constexpr std::size_t kMaxBody = 255 * 255;
inline constexpr std::size_t kMaxPage = kHeaderBytes + kMaxSegments + kMaxBody;

// Ogg CRC32 of n bytes, continuing from `crc` (0 to start).
std::uint32_t crc32(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0) noexcept;

// Builds pages of one logical stream. Packets are added whole; flush() emits
// the page. Allocates only in the constructor.
class PageWriter {
 public:
  explicit PageWriter(std::uint32_t serial);

  std::uint32_t serial() const noexcept { return serial_; }
  std::uint32_t next_sequence() const noexcept { return seq_; }
  std::size_t pending_packets() const noexcept { return packets_; }
  std::size_t pending_bytes() const noexcept { return body_len_; }

  // Whether a packet of `size` bytes fits on the current page.
  bool fits(std::size_t size) const noexcept;
  // Adds a packet that ends at `granule` (the page's granule is its last
  // packet's). False, and nothing added, if it does not fit.
  bool add_packet(const std::uint8_t* data, std::size_t size, std::int64_t granule) noexcept;
  // Writes the pending packets as one page into out (capacity >= page size;
  // kMaxPage always suffices). `granule_override` >= 0 replaces the granule
  // (end trimming on the last page). Returns the page size, 0 when there is
  // nothing to flush (unless `allow_empty`) or the capacity is too small.
  std::size_t flush(std::uint8_t* out, std::size_t capacity, std::uint8_t flags, bool allow_empty = false,
                    std::int64_t granule_override = -1) noexcept;
  // The bytes flush() would write now.
  std::size_t page_size() const noexcept { return kHeaderBytes + segments_ + body_len_; }
  // Forget the pending packets without writing them (and without using a
  // sequence number).
  void discard() noexcept;

 private:
  std::uint32_t serial_;
  std::uint32_t seq_ = 0;
  std::int64_t granule_ = 0;
  std::size_t segments_ = 0;
  std::size_t packets_ = 0;
  std::size_t body_len_ = 0;
  std::vector<std::uint8_t> lacing_;
  std::vector<std::uint8_t> body_;
};

// RFC 7845 section 5.1 identification header (19 bytes for family 0).
std::size_t opus_head(std::uint8_t* out, std::size_t capacity, int channels, std::uint16_t pre_skip,
                      std::uint32_t input_sample_rate) noexcept;
// RFC 7845 section 5.2 comment header. `comments` are "KEY=value" strings.
std::vector<std::uint8_t> opus_tags(std::string_view vendor, const std::vector<std::string_view>& comments);

enum ScanStatus : int {
  kScanOk = 0,
  kNotOgg = -1,        // the file does not start with a whole, valid page
  kCorrupt = -2,       // an invalid page is followed by valid ones: not a crash tail; left alone
  kIoError = -4,
};

struct ScanResult {
  int status = kNotOgg;
  bool changed = false;          // repair changed (or would change) the file
  std::uint64_t old_size = 0;
  std::uint64_t valid_end = 0;   // end of the last whole, valid page
  std::uint32_t pages = 0;       // whole valid pages
  std::uint32_t serial = 0;      // of the first page
  bool single_stream = true;     // every page has the first page's serial
  bool ends_with_eos = false;    // the last valid page has EOS
  bool set_eos = false;          // repair marks the last page EOS
  std::uint64_t last_page_offset = 0;
  std::uint32_t last_page_size = 0;
  std::int64_t last_granule = -1;  // of the last page that completes a packet
  int sys_errno = 0;
};

// Pure: walks the pages of `src` and decides the repair. Never reads outside it.
ScanResult scan(const ByteSource& src) noexcept;

// Repairs the file at `path` in place: truncate after the last whole page,
// set EOS on it (new CRC), fsync. Idempotent.
ScanResult repair_file(const char* path) noexcept;

}  // namespace mediacore::ogg
