// RTP packets: a zero-copy parser and a builder (RFC 3550 section 5.1 fixed
// header and CSRC list, 5.3.1 header extension, padding), and the RFC 8285
// one-byte / two-byte header extension elements as a parsed view.
//
// The parser never copies and never reads outside [data, data + size): the
// view it fills points into the caller's buffer, which must outlive it. The
// builder writes into a caller buffer and checks its capacity first. Neither
// allocates or throws; bad input is a negative Status.
//
// Validity rules applied by parse() (RFC 3550 5.1 and appendix A.1):
//   - at least the 12-byte fixed header;
//   - version == 2;
//   - room for CC CSRC identifiers;
//   - with X set, room for the 4-byte extension header and its length words;
//   - with P set, a padding count >= 1 that fits in what follows the headers
//     (RFC 3550: the last octet "contains a count of how many padding octets
//     should be ignored, including itself", so 0 is invalid).
// The payload type is not checked against RTCP's 72-76 range here: that is a
// demultiplexing decision (RFC 5761) for the caller.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mediacore::rtp {

// Network byte order loads and stores (also used by rtcp.cpp and rtp_stats.cpp).
namespace be {
inline std::uint16_t load16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t load32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline void store16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void store32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}
}  // namespace be

inline constexpr std::size_t kFixedHeaderSize = 12;
inline constexpr int kMaxCsrc = 15;
// RFC 8285 section 4.2 (one-byte) and 4.3 (two-byte) profile values.
inline constexpr std::uint16_t kOneByteProfile = 0xBEDE;
inline constexpr std::uint16_t kTwoByteProfileMask = 0xFFF0;
inline constexpr std::uint16_t kTwoByteProfile = 0x1000;  // low 4 bits: appbits

enum Status : int {
  kOk = 0,
  kTooShort = -1,           // under the 12-byte fixed header
  kBadVersion = -2,         // version field is not 2
  kTruncatedCsrc = -3,      // CC says more CSRCs than the packet holds
  kTruncatedExtension = -4, // X set, extension header or its data cut short
  kBadPadding = -5,         // P set, padding count 0 or larger than what follows the headers
  kBufferTooSmall = -6,     // builder: capacity below the packet size
  kTooManyCsrc = -7,        // builder: more than 15 CSRCs
  kBadExtensionLength = -8, // builder: extension data not a multiple of 4, or over 65535 words
  kBadPayloadType = -9,     // builder: payload type over 127
  kBadPaddingSize = -10,    // builder: padding size over 255
  kBadElement = -11,        // RFC 8285: element runs past the extension, or bad id/length to write
  kBadArgument = -12,       // builder: a null pointer with a non-zero count or size
};

// Human-readable meaning of a Status (static storage).
const char* status_message(int status) noexcept;

// A parsed packet: fields are host-order values; pointers are into the parsed buffer.
struct PacketView {
  std::uint8_t version = 0;
  bool padding = false;
  bool extension = false;
  bool marker = false;
  std::uint8_t payload_type = 0;
  std::uint16_t sequence_number = 0;
  std::uint32_t timestamp = 0;
  std::uint32_t ssrc = 0;
  std::uint8_t csrc_count = 0;
  const std::uint8_t* csrc_data = nullptr;  // csrc_count big-endian 32-bit words
  std::uint16_t extension_profile = 0;      // "defined by profile" field (5.3.1)
  const std::uint8_t* extension_data = nullptr;
  std::size_t extension_size = 0;           // bytes, a multiple of 4
  const std::uint8_t* payload = nullptr;
  std::size_t payload_size = 0;
  std::uint8_t padding_size = 0;            // includes the count octet itself; 0 when P is clear
  std::size_t header_size = 0;              // fixed header + CSRCs + extension

  std::uint32_t csrc(int i) const noexcept;  // i in [0, csrc_count)
};

// Parse one RTP packet. Returns kOk and fills *out, or a negative Status
// (*out is then unspecified).
int parse(const std::uint8_t* data, std::size_t size, PacketView* out) noexcept;

// Everything needed to write a packet. Pointers are borrowed for the call.
struct PacketSpec {
  bool marker = false;
  std::uint8_t payload_type = 0;
  std::uint16_t sequence_number = 0;
  std::uint32_t timestamp = 0;
  std::uint32_t ssrc = 0;
  int csrc_count = 0;
  const std::uint32_t* csrc = nullptr;      // host-order values
  bool extension = false;                   // write X and the extension header
  std::uint16_t extension_profile = 0;
  const std::uint8_t* extension_data = nullptr;
  std::size_t extension_size = 0;           // bytes, multiple of 4, <= 4 * 65535
  const std::uint8_t* payload = nullptr;
  std::size_t payload_size = 0;
  std::uint8_t padding_size = 0;            // 0: P clear; else zero octets then the count
};

// Size serialize() would write, or a negative Status if the spec is invalid.
std::ptrdiff_t serialized_size(const PacketSpec& spec) noexcept;
// Write the packet into out[0, capacity). Returns bytes written or a negative
// Status; nothing is written on error.
std::ptrdiff_t serialize(const PacketSpec& spec, std::uint8_t* out, std::size_t capacity) noexcept;

// Rewrite helpers for relaying (the B2BUA forwards without re-serializing).
// They assume a packet that parse() accepted and at least 12 bytes.
void set_sequence_number(std::uint8_t* packet, std::uint16_t seq) noexcept;
void set_timestamp(std::uint8_t* packet, std::uint32_t ts) noexcept;
void set_ssrc(std::uint8_t* packet, std::uint32_t ssrc) noexcept;
void set_payload_type(std::uint8_t* packet, std::uint8_t pt) noexcept;  // keeps the marker bit

// ---------------------------------------------------------------- RFC 8285

enum class ElementForm : std::uint8_t { kNone, kOneByte, kTwoByte };

// Which RFC 8285 form an extension profile value announces.
ElementForm element_form(std::uint16_t profile) noexcept;

struct Element {
  std::uint8_t id = 0;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

// Walks the elements of a header extension's data. Padding octets (id 0) are
// skipped; a one-byte id of 15 stops the walk (RFC 8285 4.2).
class ElementReader {
 public:
  ElementReader(ElementForm form, const std::uint8_t* data, std::size_t size) noexcept
      : form_(form), data_(data), size_(size) {}
  explicit ElementReader(const PacketView& packet) noexcept
      : ElementReader(element_form(packet.extension_profile), packet.extension_data,
                      packet.extension_size) {}
  // 1: *out holds the next element; 0: no more elements; kBadElement: an
  // element's length runs past the data (the walk then stays finished).
  int next(Element* out) noexcept;

 private:
  ElementForm form_;
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Write elements as extension data (padded with zero octets to a multiple of
// 4). Uses the one-byte form when every id is 1..14 and every size 1..16, the
// two-byte form otherwise (ids 1..255, sizes 0..255). Returns the bytes
// written and sets *profile (0xBEDE or 0x1000), or a negative Status
// (kBadElement for an id/size no form allows, kBufferTooSmall).
std::ptrdiff_t write_elements(const Element* elements, std::size_t count, std::uint8_t* out,
                              std::size_t capacity, std::uint16_t* profile) noexcept;

}  // namespace mediacore::rtp
