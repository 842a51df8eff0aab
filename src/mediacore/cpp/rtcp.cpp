#include "rtcp.hpp"

#include <cstring>

#include "rtp.hpp"  // rtp::be byte-order helpers

namespace mediacore::rtcp {

using rtp::be::load16;
using rtp::be::load32;
using rtp::be::store16;
using rtp::be::store32;

namespace {

constexpr std::size_t kMaxPacketSize = 4u * (0xFFFFu + 1u);  // length field is 16 bits of words minus one

// The null octets that end an SDES chunk or pad a BYE reason: up to the next
// 32-bit boundary of the body (which itself starts on one).
constexpr std::size_t next_word(std::size_t pos) { return (pos & ~std::size_t{3}) + 4; }

bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

}  // namespace

const char* status_message(int status) noexcept {
  switch (status) {
    case kOk: return "ok";
    case kTooShort: return "RTCP datagram too short or not a whole number of 32-bit words";
    case kBadVersion: return "RTCP version is not 2";
    case kBadLength: return "RTCP length field runs past the end of the datagram";
    case kFirstNotReport: return "compound RTCP packet does not start with SR or RR";
    case kPaddingNotLast: return "RTCP padding bit set on a packet that is not the last";
    case kBadPadding: return "RTCP padding count is 0, not a multiple of 4, or larger than the packet";
    case kBadCount: return "RTCP packet shorter than its count field announces";
    case kBadSdes: return "malformed SDES chunk or item";
    case kBadBye: return "malformed BYE reason";
    case kBadApp: return "APP packet shorter than SSRC and name";
    case kWrongType: return "RTCP packet is not of the expected type";
    case kBufferTooSmall: return "output buffer too small";
    case kTooManyItems: return "RTCP count field exceeds 31";
    case kBadItem: return "bad item for RTCP builder (SDES item type 0 or over 255 bytes, data not 32-bit words, "
                          "reason over 255 bytes, or packet over 65536 words)";
    case kNothingToPad: return "padding must be a positive multiple of 4 added once to a written packet";
    default: return "unknown RTCP status";
  }
}

// ---------------------------------------------------------------- report blocks

ReportBlock read_report_block(const std::uint8_t* p) noexcept {
  ReportBlock b;
  b.ssrc = load32(p);
  b.fraction_lost = p[4];
  // Signed 24-bit, sign-extended.
  std::uint32_t lost = (std::uint32_t{p[5]} << 16) | (std::uint32_t{p[6]} << 8) | p[7];
  if (lost & 0x800000u) lost |= 0xFF000000u;
  b.cumulative_lost = static_cast<std::int32_t>(lost);
  b.highest_sequence = load32(p + 8);
  b.jitter = load32(p + 12);
  b.last_sr = load32(p + 16);
  b.delay_since_last_sr = load32(p + 20);
  return b;
}

void write_report_block(const ReportBlock& b, std::uint8_t* p) noexcept {
  store32(p, b.ssrc);
  p[4] = b.fraction_lost;
  std::int32_t lost = b.cumulative_lost;
  if (lost > 0x7FFFFF) lost = 0x7FFFFF;
  if (lost < -0x800000) lost = -0x800000;
  const auto wire = static_cast<std::uint32_t>(lost) & 0xFFFFFFu;
  p[5] = static_cast<std::uint8_t>(wire >> 16);
  p[6] = static_cast<std::uint8_t>(wire >> 8);
  p[7] = static_cast<std::uint8_t>(wire);
  store32(p + 8, b.highest_sequence);
  store32(p + 12, b.jitter);
  store32(p + 16, b.last_sr);
  store32(p + 20, b.delay_since_last_sr);
}

// ---------------------------------------------------------------- compound

int CompoundReader::next(PacketView* out) noexcept {
  if (done_) return 0;
  if (pos_ == size_) {
    done_ = true;
    return 0;
  }
  done_ = true;  // until this packet proves good
  const std::size_t left = size_ - pos_;
  if (left < kHeaderSize) return kTooShort;
  const std::uint8_t* h = data_ + pos_;
  PacketView v;
  v.version = static_cast<std::uint8_t>(h[0] >> 6);
  if (v.version != 2) return kBadVersion;
  v.padding = (h[0] & 0x20) != 0;
  v.count = static_cast<std::uint8_t>(h[0] & 0x1F);
  v.packet_type = h[1];
  const std::size_t len = 4u * (std::size_t{load16(h + 2)} + 1u);
  if (len > left) return kBadLength;
  v.data = h;
  v.size = len;
  v.body = h + kHeaderSize;
  v.body_size = len - kHeaderSize;
  if (v.padding) {
    const std::uint8_t pad = h[len - 1];
    if (pad == 0 || pad % 4 != 0 || pad > v.body_size) return kBadPadding;
    v.padding_size = pad;
    v.body_size -= pad;
  }
  pos_ += len;
  done_ = false;
  *out = v;
  return 1;
}

int CompoundReader::validate() const noexcept {
  if (size_ == 0) return kTooShort;
  CompoundReader walk(data_, size_, reduced_size_);
  PacketView p;
  int r;
  int index = 0;
  bool padded = false;
  while ((r = walk.next(&p)) == 1) {
    if (padded) return kPaddingNotLast;  // a packet follows a padded one
    if (index == 0 && !reduced_size_ && p.packet_type != kSR && p.packet_type != kRR) return kFirstNotReport;
    padded = p.padding;
    ++index;
  }
  return r;  // 0 when the lengths summed exactly to the datagram
}

// ---------------------------------------------------------------- SR / RR

ReportBlock ReportView::block(int i) const noexcept {
  if (i < 0 || i >= report_count) return ReportBlock{};
  return read_report_block(blocks + kReportBlockSize * static_cast<std::size_t>(i));
}

int parse_report(const PacketView& p, ReportView* out) noexcept {
  if (p.packet_type != kSR && p.packet_type != kRR) return kWrongType;
  ReportView v;
  v.has_sender_info = p.packet_type == kSR;
  v.report_count = p.count;
  const std::size_t fixed = 4 + (v.has_sender_info ? kSenderInfoSize : 0);
  const std::size_t need = fixed + kReportBlockSize * p.count;
  if (p.body_size < need) return kBadCount;
  v.ssrc = load32(p.body);
  if (v.has_sender_info) {
    v.sender.ntp_timestamp = (std::uint64_t{load32(p.body + 4)} << 32) | load32(p.body + 8);
    v.sender.rtp_timestamp = load32(p.body + 12);
    v.sender.packet_count = load32(p.body + 16);
    v.sender.octet_count = load32(p.body + 20);
  }
  v.blocks = p.body + fixed;
  v.extension = p.body + need;
  v.extension_size = p.body_size - need;
  *out = v;
  return kOk;
}

// ---------------------------------------------------------------- SDES

int SdesReader::next_chunk(std::uint32_t* ssrc) noexcept {
  if (error_) return error_;
  if (in_chunk_) {  // skip the rest of the current chunk
    SdesItem item;
    int r;
    while ((r = next_item(&item)) == 1) {
    }
    if (r < 0) return r;
  }
  if (chunks_left_ == 0) return pos_ == size_ ? 0 : fail(kBadSdes);  // data after the announced chunks
  if (size_ - pos_ < 4) return fail(kBadSdes);
  *ssrc = load32(body_ + pos_);
  pos_ += 4;
  --chunks_left_;
  in_chunk_ = true;
  return 1;
}

int SdesReader::next_item(SdesItem* item) noexcept {
  if (error_) return error_;
  if (!in_chunk_) return 0;
  if (pos_ >= size_) return fail(kBadSdes);  // no null terminator
  const std::uint8_t type = body_[pos_];
  if (type == kEnd) {
    const std::size_t end = next_word(pos_);
    if (end > size_ || !all_zero(body_ + pos_, end - pos_)) return fail(kBadSdes);
    pos_ = end;
    in_chunk_ = false;
    return 0;
  }
  if (size_ - pos_ < 2) return fail(kBadSdes);
  const std::size_t len = body_[pos_ + 1];
  if (size_ - pos_ - 2 < len) return fail(kBadSdes);
  if (type == kPriv && (len < 1 || body_[pos_ + 2] > len - 1)) return fail(kBadSdes);
  item->type = type;
  item->data = body_ + pos_ + 2;
  item->size = len;
  pos_ += 2 + len;
  return 1;
}

int validate_sdes(const PacketView& p) noexcept {
  SdesReader reader(p);
  std::uint32_t ssrc;
  SdesItem item;
  int r;
  while ((r = reader.next_chunk(&ssrc)) == 1) {
    while ((r = reader.next_item(&item)) == 1) {
    }
    if (r < 0) return r;
  }
  return r < 0 ? r : kOk;
}

int split_priv(const SdesItem& item, const std::uint8_t** prefix, std::size_t* prefix_size,
               const std::uint8_t** value, std::size_t* value_size) noexcept {
  if (item.type != kPriv || item.size < 1 || item.data[0] > item.size - 1) return kBadSdes;
  *prefix = item.data + 1;
  *prefix_size = item.data[0];
  *value = item.data + 1 + item.data[0];
  *value_size = item.size - 1 - item.data[0];
  return kOk;
}

// ---------------------------------------------------------------- BYE / APP

std::uint32_t ByeView::source(int i) const noexcept {
  if (i < 0 || i >= source_count) return 0;
  return load32(sources + 4 * static_cast<std::size_t>(i));
}

int parse_bye(const PacketView& p, ByeView* out) noexcept {
  if (p.packet_type != kBYE) return kWrongType;
  ByeView v;
  v.source_count = p.count;
  const std::size_t need = 4u * p.count;
  if (p.body_size < need) return kBadCount;
  v.sources = p.body;
  const std::size_t rest = p.body_size - need;
  if (rest > 0) {
    const std::size_t len = p.body[need];
    if (1 + len > rest) return kBadBye;
    const std::size_t end = need + 1 + len;
    // Null octets up to the next 32-bit boundary, and nothing after.
    const std::size_t padded = (end + 3) & ~std::size_t{3};
    if (padded != p.body_size || !all_zero(p.body + end, padded - end)) return kBadBye;
    v.has_reason = true;
    v.reason = p.body + need + 1;
    v.reason_size = len;
  }
  *out = v;
  return kOk;
}

int parse_app(const PacketView& p, AppView* out) noexcept {
  if (p.packet_type != kAPP) return kWrongType;
  if (p.body_size < 8) return kBadApp;
  AppView v;
  v.subtype = p.count;
  v.ssrc = load32(p.body);
  std::memcpy(v.name, p.body + 4, 4);
  v.data = p.body + 8;
  v.data_size = p.body_size - 8;
  *out = v;
  return kOk;
}

// ---------------------------------------------------------------- Writer

std::uint8_t* Writer::begin(std::size_t body_size, std::uint8_t packet_type, std::uint8_t count) noexcept {
  const std::size_t total = kHeaderSize + body_size;
  if (total > capacity_ - pos_) return nullptr;
  std::uint8_t* h = out_ + pos_;
  h[0] = static_cast<std::uint8_t>(0x80 | count);
  h[1] = packet_type;
  store16(h + 2, static_cast<std::uint16_t>(total / 4 - 1));
  last_ = pos_;
  pos_ += total;
  any_ = true;
  return h + kHeaderSize;
}

int Writer::sender_report(std::uint32_t ssrc, const SenderInfo& info, const ReportBlock* blocks, int block_count,
                          const std::uint8_t* extension, std::size_t extension_size) noexcept {
  if (block_count < 0 || block_count > kMaxCount) return kTooManyItems;
  if ((block_count > 0 && !blocks) || extension_size % 4 || (extension_size && !extension)) return kBadItem;
  const std::size_t n = static_cast<std::size_t>(block_count);
  const std::size_t body = 4 + kSenderInfoSize + kReportBlockSize * n + extension_size;
  if (kHeaderSize + body > kMaxPacketSize) return kBadItem;
  std::uint8_t* p = begin(body, kSR, static_cast<std::uint8_t>(block_count));
  if (!p) return kBufferTooSmall;
  store32(p, ssrc);
  store32(p + 4, static_cast<std::uint32_t>(info.ntp_timestamp >> 32));
  store32(p + 8, static_cast<std::uint32_t>(info.ntp_timestamp));
  store32(p + 12, info.rtp_timestamp);
  store32(p + 16, info.packet_count);
  store32(p + 20, info.octet_count);
  p += 4 + kSenderInfoSize;
  for (std::size_t i = 0; i < n; ++i, p += kReportBlockSize) write_report_block(blocks[i], p);
  if (extension_size) std::memcpy(p, extension, extension_size);
  return kOk;
}

int Writer::receiver_report(std::uint32_t ssrc, const ReportBlock* blocks, int block_count,
                            const std::uint8_t* extension, std::size_t extension_size) noexcept {
  if (block_count < 0 || block_count > kMaxCount) return kTooManyItems;
  if ((block_count > 0 && !blocks) || extension_size % 4 || (extension_size && !extension)) return kBadItem;
  const std::size_t n = static_cast<std::size_t>(block_count);
  const std::size_t body = 4 + kReportBlockSize * n + extension_size;
  if (kHeaderSize + body > kMaxPacketSize) return kBadItem;
  std::uint8_t* p = begin(body, kRR, static_cast<std::uint8_t>(block_count));
  if (!p) return kBufferTooSmall;
  store32(p, ssrc);
  p += 4;
  for (std::size_t i = 0; i < n; ++i, p += kReportBlockSize) write_report_block(blocks[i], p);
  if (extension_size) std::memcpy(p, extension, extension_size);
  return kOk;
}

int Writer::sdes(const SdesChunk* chunks, int chunk_count) noexcept {
  if (chunk_count < 0 || chunk_count > kMaxCount) return kTooManyItems;
  if (chunk_count > 0 && !chunks) return kBadItem;
  std::size_t body = 0;
  for (int c = 0; c < chunk_count; ++c) {
    const SdesChunk& ch = chunks[c];
    if (ch.item_count < 0 || (ch.item_count > 0 && !ch.items)) return kBadItem;
    std::size_t items = 0;
    for (int i = 0; i < ch.item_count; ++i) {
      const SdesItem& it = ch.items[i];
      if (it.type == kEnd || it.size > 255 || (it.size && !it.data)) return kBadItem;
      if (it.type == kPriv && (it.size < 1 || it.data[0] > it.size - 1)) return kBadItem;
      items += 2 + it.size;
      if (items > kMaxPacketSize) return kBadItem;
    }
    body += 4 + next_word(items);  // items, then 1..4 null octets to the boundary
    if (body > kMaxPacketSize) return kBadItem;
  }
  if (kHeaderSize + body > kMaxPacketSize) return kBadItem;
  std::uint8_t* p = begin(body, kSDES, static_cast<std::uint8_t>(chunk_count));
  if (!p) return kBufferTooSmall;
  for (int c = 0; c < chunk_count; ++c) {
    const SdesChunk& ch = chunks[c];
    store32(p, ch.ssrc);
    std::uint8_t* q = p + 4;
    for (int i = 0; i < ch.item_count; ++i) {
      const SdesItem& it = ch.items[i];
      q[0] = it.type;
      q[1] = static_cast<std::uint8_t>(it.size);
      if (it.size) std::memcpy(q + 2, it.data, it.size);
      q += 2 + it.size;
    }
    const std::size_t items = static_cast<std::size_t>(q - (p + 4));
    const std::size_t end = next_word(items);
    std::memset(q, 0, end - items);
    p += 4 + end;
  }
  return kOk;
}

int Writer::bye(const std::uint32_t* sources, int source_count, bool has_reason, const std::uint8_t* reason,
                std::size_t reason_size) noexcept {
  if (source_count < 0 || source_count > kMaxCount) return kTooManyItems;
  if ((source_count > 0 && !sources) || reason_size > 255 || (reason_size && !reason)) return kBadItem;
  if (reason_size && !has_reason) return kBadItem;
  const std::size_t n = static_cast<std::size_t>(source_count);
  const std::size_t reason_bytes = has_reason ? ((1 + reason_size + 3) & ~std::size_t{3}) : 0;
  std::uint8_t* p = begin(4 * n + reason_bytes, kBYE, static_cast<std::uint8_t>(source_count));
  if (!p) return kBufferTooSmall;
  for (std::size_t i = 0; i < n; ++i, p += 4) store32(p, sources[i]);
  if (has_reason) {
    p[0] = static_cast<std::uint8_t>(reason_size);
    if (reason_size) std::memcpy(p + 1, reason, reason_size);
    std::memset(p + 1 + reason_size, 0, reason_bytes - 1 - reason_size);
  }
  return kOk;
}

int Writer::app(std::uint8_t subtype, std::uint32_t ssrc, const std::uint8_t name[4], const std::uint8_t* data,
                std::size_t data_size) noexcept {
  if (subtype > kMaxCount) return kTooManyItems;
  if (!name || data_size % 4 || (data_size && !data)) return kBadItem;
  if (kHeaderSize + 8 + data_size > kMaxPacketSize) return kBadItem;
  std::uint8_t* p = begin(8 + data_size, kAPP, subtype);
  if (!p) return kBufferTooSmall;
  store32(p, ssrc);
  std::memcpy(p + 4, name, 4);
  if (data_size) std::memcpy(p + 8, data, data_size);
  return kOk;
}

int Writer::raw(std::uint8_t packet_type, std::uint8_t count, const std::uint8_t* body,
                std::size_t body_size) noexcept {
  if (count > kMaxCount) return kTooManyItems;
  if (body_size % 4 || (body_size && !body) || kHeaderSize + body_size > kMaxPacketSize) return kBadItem;
  std::uint8_t* p = begin(body_size, packet_type, count);
  if (!p) return kBufferTooSmall;
  if (body_size) std::memcpy(p, body, body_size);
  return kOk;
}

int Writer::pad_last(std::uint8_t padding) noexcept {
  if (!any_ || padding == 0 || padding % 4 != 0) return kNothingToPad;
  std::uint8_t* h = out_ + last_;
  if (h[0] & 0x20) return kNothingToPad;  // already padded
  const std::size_t total = (pos_ - last_) + padding;
  if (total > kMaxPacketSize) return kBadItem;
  if (padding > capacity_ - pos_) return kBufferTooSmall;
  std::memset(out_ + pos_, 0, padding - 1u);
  out_[pos_ + padding - 1u] = padding;
  h[0] = static_cast<std::uint8_t>(h[0] | 0x20);
  store16(h + 2, static_cast<std::uint16_t>(total / 4 - 1));
  pos_ += padding;
  return kOk;
}

}  // namespace mediacore::rtcp
