// RTCP packets (RFC 3550 section 6): zero-copy readers and a builder for
// SR (6.4.1), RR (6.4.2), SDES (6.5), BYE (6.6), APP (6.7) and compound
// packets with the validity checks of appendix A.2.
//
// Reading: CompoundReader walks the packets of one datagram. Its validate()
// applies A.2 to the whole datagram - every packet version 2, the first one
// an SR or RR (unless reduced-size RTCP, RFC 5506, is allowed), padding only
// on the last packet, and length fields that add up exactly to the datagram.
// A lone packet may carry padding: it is the last one. (A.2's C mask refuses
// P on the first packet even then; we follow the prose of 6.4.1, "padding
// should only be applied ... to the last packet".) The per-type parse functions then check that a
// packet's body holds what its count field announces. Packet types this unit
// does not know (e.g. RTPFB/PSFB/XR) are returned as generic PacketViews.
//
// Writing: Writer appends packets to a caller buffer; each call either writes
// a whole packet or nothing and returns a negative Status.
//
// Nothing here allocates, throws, or touches memory outside the given buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mediacore::rtcp {

enum PacketType : std::uint8_t { kSR = 200, kRR = 201, kSDES = 202, kBYE = 203, kAPP = 204 };

// SDES item types (6.5); kEnd terminates a chunk's item list.
enum SdesType : std::uint8_t {
  kEnd = 0, kCname = 1, kName = 2, kEmail = 3, kPhone = 4, kLoc = 5, kTool = 6, kNote = 7, kPriv = 8,
};

inline constexpr std::size_t kHeaderSize = 4;
inline constexpr std::size_t kReportBlockSize = 24;
inline constexpr std::size_t kSenderInfoSize = 20;
inline constexpr int kMaxCount = 31;  // the 5-bit RC/SC/subtype field

enum Status : int {
  kOk = 0,
  kTooShort = -1,          // under a 4-byte header, or a datagram that is not whole 32-bit words
  kBadVersion = -2,        // a packet's version is not 2
  kBadLength = -3,         // a length field runs past the datagram (lengths must sum to it)
  kFirstNotReport = -4,    // compound packet does not start with SR or RR
  kPaddingNotLast = -5,    // P set on a packet other than the last (or on the first of a compound)
  kBadPadding = -6,        // padding count 0, not a multiple of 4, or larger than the packet
  kBadCount = -7,          // body shorter than the count field announces
  kBadSdes = -8,           // SDES chunk/item malformed (overrun, missing null terminator, bad PRIV)
  kBadBye = -9,            // BYE reason runs past the packet, or non-null padding after it
  kBadApp = -10,           // APP shorter than SSRC + name
  kWrongType = -11,        // parse_X() called on a packet of another type
  kBufferTooSmall = -12,   // builder: capacity exhausted
  kTooManyItems = -13,     // builder: count over 31
  kBadItem = -14,          // builder: SDES item type 0 or over 255 bytes, reason over 255, data not words
  kNothingToPad = -15,     // builder: pad_last() before any packet, or bad padding size
};

const char* status_message(int status) noexcept;

// ---------------------------------------------------------------- common pieces

struct ReportBlock {
  std::uint32_t ssrc = 0;
  std::uint8_t fraction_lost = 0;       // 8-bit fixed point, lost / expected * 256
  std::int32_t cumulative_lost = 0;     // signed 24-bit on the wire (-8388608 .. 8388607)
  std::uint32_t highest_sequence = 0;   // extended highest sequence number received
  std::uint32_t jitter = 0;             // interarrival jitter, timestamp units
  std::uint32_t last_sr = 0;            // LSR: middle 32 bits of the last SR's NTP timestamp
  std::uint32_t delay_since_last_sr = 0;  // DLSR, units of 1/65536 s
};

ReportBlock read_report_block(const std::uint8_t* p) noexcept;         // 24 bytes
void write_report_block(const ReportBlock& b, std::uint8_t* p) noexcept;  // 24 bytes; lost clamped to 24 bits

struct SenderInfo {
  std::uint64_t ntp_timestamp = 0;  // 32.32 fixed point seconds since 1900
  std::uint32_t rtp_timestamp = 0;
  std::uint32_t packet_count = 0;
  std::uint32_t octet_count = 0;
};

// One packet of a compound datagram.
struct PacketView {
  std::uint8_t version = 0;
  bool padding = false;
  std::uint8_t count = 0;            // RC, SC or APP subtype
  std::uint8_t packet_type = 0;
  const std::uint8_t* data = nullptr;  // whole packet: header, body, padding
  std::size_t size = 0;
  const std::uint8_t* body = nullptr;  // after the 4-byte header, padding excluded
  std::size_t body_size = 0;
  std::uint8_t padding_size = 0;
};

class CompoundReader {
 public:
  // reduced_size: accept a datagram that does not start with SR/RR (RFC 5506).
  CompoundReader(const std::uint8_t* data, std::size_t size, bool reduced_size = false) noexcept
      : data_(data), size_(size), reduced_size_(reduced_size) {}
  // A.2 over the whole datagram: kOk or the first problem found.
  int validate() const noexcept;
  // 1: *out is the next packet; 0: done; negative: malformed (the walk stops).
  // next() checks each packet as it goes, so walking without validate() is
  // safe; validate() adds the whole-datagram rules (first type, padding last).
  int next(PacketView* out) noexcept;

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  bool reduced_size_;
  bool done_ = false;
};

// ---------------------------------------------------------------- per type

struct ReportView {  // SR or RR
  std::uint32_t ssrc = 0;
  bool has_sender_info = false;  // SR
  SenderInfo sender;
  std::uint8_t report_count = 0;
  const std::uint8_t* blocks = nullptr;  // report_count * 24 bytes
  const std::uint8_t* extension = nullptr;  // profile-specific extension (the rest of the body)
  std::size_t extension_size = 0;
  ReportBlock block(int i) const noexcept;  // i in [0, report_count)
};
int parse_report(const PacketView& p, ReportView* out) noexcept;  // SR or RR

struct SdesItem {
  std::uint8_t type = 0;
  const std::uint8_t* data = nullptr;  // for PRIV: prefix length, prefix, value (as on the wire)
  std::size_t size = 0;                // <= 255
};

// Reads SDES chunks and their items in order:
//   while ((r = reader.next_chunk(&ssrc)) == 1) while ((r = reader.next_item(&item)) == 1) ...
// Both return negative on malformed input; after that every call returns it again.
class SdesReader {
 public:
  explicit SdesReader(const PacketView& p) noexcept
      : body_(p.body), size_(p.body_size), chunks_left_(p.packet_type == kSDES ? p.count : 0),
        error_(p.packet_type == kSDES ? 0 : kWrongType) {}
  int next_chunk(std::uint32_t* ssrc) noexcept;
  int next_item(SdesItem* item) noexcept;

 private:
  int fail(int status) noexcept { return error_ = status; }
  const std::uint8_t* body_;
  std::size_t size_;
  std::size_t pos_ = 0;
  int chunks_left_;
  int error_;
  bool in_chunk_ = false;
};
// Validate a whole SDES packet (every chunk and item) without extracting.
int validate_sdes(const PacketView& p) noexcept;
// Split a PRIV item into prefix and value; kBadSdes when the prefix overruns.
int split_priv(const SdesItem& item, const std::uint8_t** prefix, std::size_t* prefix_size,
               const std::uint8_t** value, std::size_t* value_size) noexcept;

struct ByeView {
  std::uint8_t source_count = 0;
  const std::uint8_t* sources = nullptr;
  bool has_reason = false;
  const std::uint8_t* reason = nullptr;
  std::size_t reason_size = 0;
  std::uint32_t source(int i) const noexcept;
};
int parse_bye(const PacketView& p, ByeView* out) noexcept;

struct AppView {
  std::uint8_t subtype = 0;
  std::uint32_t ssrc = 0;
  std::uint8_t name[4] = {0, 0, 0, 0};
  const std::uint8_t* data = nullptr;  // a multiple of 4 bytes
  std::size_t data_size = 0;
};
int parse_app(const PacketView& p, AppView* out) noexcept;

// ---------------------------------------------------------------- building

struct SdesChunk {
  std::uint32_t ssrc = 0;
  const SdesItem* items = nullptr;
  int item_count = 0;
};

class Writer {
 public:
  Writer(std::uint8_t* out, std::size_t capacity) noexcept : out_(out), capacity_(out ? capacity : 0) {}

  int sender_report(std::uint32_t ssrc, const SenderInfo& info, const ReportBlock* blocks, int block_count,
                    const std::uint8_t* extension = nullptr, std::size_t extension_size = 0) noexcept;
  int receiver_report(std::uint32_t ssrc, const ReportBlock* blocks, int block_count,
                      const std::uint8_t* extension = nullptr, std::size_t extension_size = 0) noexcept;
  int sdes(const SdesChunk* chunks, int chunk_count) noexcept;
  // has_reason with reason_size 0 writes an empty reason (a length octet of 0).
  int bye(const std::uint32_t* sources, int source_count, bool has_reason = false,
          const std::uint8_t* reason = nullptr, std::size_t reason_size = 0) noexcept;
  int app(std::uint8_t subtype, std::uint32_t ssrc, const std::uint8_t name[4], const std::uint8_t* data,
          std::size_t data_size) noexcept;
  // Any other packet type, body given as words (RTPFB, PSFB, XR...).
  int raw(std::uint8_t packet_type, std::uint8_t count, const std::uint8_t* body, std::size_t body_size) noexcept;
  // Add `padding` octets (a multiple of 4, 4..252) to the last packet written.
  int pad_last(std::uint8_t padding) noexcept;

  std::size_t size() const noexcept { return pos_; }

 private:
  std::uint8_t* begin(std::size_t body_size, std::uint8_t packet_type, std::uint8_t count) noexcept;
  std::uint8_t* out_;
  std::size_t capacity_;
  std::size_t pos_ = 0;
  std::size_t last_ = 0;
  bool any_ = false;
};

}  // namespace mediacore::rtcp
