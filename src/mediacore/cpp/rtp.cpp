#include "rtp.hpp"

#include <cstring>

namespace mediacore::rtp {

const char* status_message(int status) noexcept {
  switch (status) {
    case kOk: return "ok";
    case kTooShort: return "shorter than the 12-byte RTP fixed header";
    case kBadVersion: return "RTP version is not 2";
    case kTruncatedCsrc: return "CSRC count exceeds the packet length";
    case kTruncatedExtension: return "header extension exceeds the packet length";
    case kBadPadding: return "padding count is 0 or exceeds the packet length";
    case kBufferTooSmall: return "output buffer too small";
    case kTooManyCsrc: return "more than 15 CSRC identifiers";
    case kBadExtensionLength: return "extension data length is not a multiple of 4 or exceeds 65535 words";
    case kBadPayloadType: return "payload type exceeds 127";
    case kBadPaddingSize: return "padding size exceeds 255";
    case kBadElement: return "bad RFC 8285 header extension element";
    case kBadArgument: return "null pointer with a non-zero count or size";
    default: return "unknown RTP status";
  }
}

std::uint32_t PacketView::csrc(int i) const noexcept {
  if (i < 0 || i >= csrc_count) return 0;
  return be::load32(csrc_data + 4 * static_cast<std::size_t>(i));
}

int parse(const std::uint8_t* data, std::size_t size, PacketView* out) noexcept {
  if (size < kFixedHeaderSize) return kTooShort;
  const std::uint8_t b0 = data[0];
  const std::uint8_t b1 = data[1];
  PacketView v;
  v.version = static_cast<std::uint8_t>(b0 >> 6);
  if (v.version != 2) return kBadVersion;
  v.padding = (b0 & 0x20) != 0;
  v.extension = (b0 & 0x10) != 0;
  v.csrc_count = static_cast<std::uint8_t>(b0 & 0x0F);
  v.marker = (b1 & 0x80) != 0;
  v.payload_type = static_cast<std::uint8_t>(b1 & 0x7F);
  v.sequence_number = be::load16(data + 2);
  v.timestamp = be::load32(data + 4);
  v.ssrc = be::load32(data + 8);

  std::size_t pos = kFixedHeaderSize;
  const std::size_t csrc_bytes = 4u * v.csrc_count;
  if (size - pos < csrc_bytes) return kTruncatedCsrc;
  v.csrc_data = data + pos;
  pos += csrc_bytes;

  if (v.extension) {
    if (size - pos < 4) return kTruncatedExtension;
    v.extension_profile = be::load16(data + pos);
    const std::size_t ext_bytes = 4u * be::load16(data + pos + 2);
    pos += 4;
    if (size - pos < ext_bytes) return kTruncatedExtension;
    v.extension_data = data + pos;
    v.extension_size = ext_bytes;
    pos += ext_bytes;
  }
  v.header_size = pos;

  std::size_t end = size;
  if (v.padding) {
    // The count octet is the packet's last; it counts itself.
    const std::uint8_t count = data[size - 1];
    if (count == 0 || count > size - pos) return kBadPadding;
    v.padding_size = count;
    end -= count;
  }
  v.payload = data + pos;
  v.payload_size = end - pos;
  *out = v;
  return kOk;
}

std::ptrdiff_t serialized_size(const PacketSpec& spec) noexcept {
  if (spec.payload_type > 127) return kBadPayloadType;
  if (spec.csrc_count < 0 || spec.csrc_count > kMaxCsrc) return kTooManyCsrc;
  if (spec.csrc_count > 0 && spec.csrc == nullptr) return kBadArgument;
  std::size_t n = kFixedHeaderSize + 4u * static_cast<std::size_t>(spec.csrc_count);
  if (spec.extension) {
    if (spec.extension_size % 4 != 0 || spec.extension_size > 4u * 0xFFFFu) return kBadExtensionLength;
    if (spec.extension_size > 0 && spec.extension_data == nullptr) return kBadArgument;
    n += 4 + spec.extension_size;
  } else if (spec.extension_size != 0) {
    return kBadExtensionLength;
  }
  // A payload pointer is only needed when there are payload bytes.
  if (spec.payload_size > 0 && spec.payload == nullptr) return kBadArgument;
  if (spec.payload_size > static_cast<std::size_t>(PTRDIFF_MAX) / 2) return kBufferTooSmall;
  n += spec.payload_size + spec.padding_size;
  return static_cast<std::ptrdiff_t>(n);
}

std::ptrdiff_t serialize(const PacketSpec& spec, std::uint8_t* out, std::size_t capacity) noexcept {
  const std::ptrdiff_t total = serialized_size(spec);
  if (total < 0) return total;
  if (out == nullptr || static_cast<std::size_t>(total) > capacity) return kBufferTooSmall;

  std::uint8_t* p = out;
  p[0] = static_cast<std::uint8_t>(0x80 | (spec.padding_size ? 0x20 : 0) | (spec.extension ? 0x10 : 0) |
                                   spec.csrc_count);
  p[1] = static_cast<std::uint8_t>((spec.marker ? 0x80 : 0) | spec.payload_type);
  be::store16(p + 2, spec.sequence_number);
  be::store32(p + 4, spec.timestamp);
  be::store32(p + 8, spec.ssrc);
  p += kFixedHeaderSize;
  for (int i = 0; i < spec.csrc_count; ++i, p += 4) be::store32(p, spec.csrc[i]);
  if (spec.extension) {
    be::store16(p, spec.extension_profile);
    be::store16(p + 2, static_cast<std::uint16_t>(spec.extension_size / 4));
    p += 4;
    if (spec.extension_size) std::memcpy(p, spec.extension_data, spec.extension_size);
    p += spec.extension_size;
  }
  if (spec.payload_size) std::memcpy(p, spec.payload, spec.payload_size);
  p += spec.payload_size;
  if (spec.padding_size) {
    std::memset(p, 0, spec.padding_size - 1u);
    p[spec.padding_size - 1u] = spec.padding_size;
    p += spec.padding_size;
  }
  return p - out;
}

void set_sequence_number(std::uint8_t* packet, std::uint16_t seq) noexcept { be::store16(packet + 2, seq); }
void set_timestamp(std::uint8_t* packet, std::uint32_t ts) noexcept { be::store32(packet + 4, ts); }
void set_ssrc(std::uint8_t* packet, std::uint32_t ssrc) noexcept { be::store32(packet + 8, ssrc); }
void set_payload_type(std::uint8_t* packet, std::uint8_t pt) noexcept {
  packet[1] = static_cast<std::uint8_t>((packet[1] & 0x80) | (pt & 0x7F));
}

// ---------------------------------------------------------------- RFC 8285

ElementForm element_form(std::uint16_t profile) noexcept {
  if (profile == kOneByteProfile) return ElementForm::kOneByte;
  if ((profile & kTwoByteProfileMask) == kTwoByteProfile) return ElementForm::kTwoByte;
  return ElementForm::kNone;
}

int ElementReader::next(Element* out) noexcept {
  if (form_ == ElementForm::kNone || data_ == nullptr) return 0;
  while (pos_ < size_) {
    const std::uint8_t b = data_[pos_];
    if (b == 0) {  // padding octet (both forms)
      ++pos_;
      continue;
    }
    std::size_t id, len, head;
    if (form_ == ElementForm::kOneByte) {
      id = b >> 4;
      if (id == 0) {  // id 0 is padding whatever its length nibble says
        ++pos_;
        continue;
      }
      if (id == 15) break;  // reserved: stop processing the extension (RFC 8285 4.2)
      len = (b & 0x0Fu) + 1u;
      head = 1;
    } else {
      if (size_ - pos_ < 2) {
        pos_ = size_;
        return kBadElement;
      }
      id = b;
      len = data_[pos_ + 1];
      head = 2;
    }
    if (size_ - pos_ - head < len) {
      pos_ = size_;
      return kBadElement;
    }
    out->id = static_cast<std::uint8_t>(id);
    out->data = data_ + pos_ + head;
    out->size = len;
    pos_ += head + len;
    return 1;
  }
  pos_ = size_;
  return 0;
}

std::ptrdiff_t write_elements(const Element* elements, std::size_t count, std::uint8_t* out,
                              std::size_t capacity, std::uint16_t* profile) noexcept {
  if (count > 0 && elements == nullptr) return kBadArgument;
  bool one_byte = true;
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Element& e = elements[i];
    if (e.size > 0 && e.data == nullptr) return kBadArgument;
    if (e.id == 0 || e.size > 255) return kBadElement;
    if (e.id > 14 || e.size == 0 || e.size > 16) one_byte = false;
  }
  for (std::size_t i = 0; i < count; ++i) total += (one_byte ? 1u : 2u) + elements[i].size;
  const std::size_t padded = (total + 3u) & ~std::size_t{3};
  if (padded > 4u * 0xFFFFu) return kBadExtensionLength;
  if (padded > capacity || (padded > 0 && out == nullptr)) return kBufferTooSmall;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Element& e = elements[i];
    if (one_byte) {
      out[pos++] = static_cast<std::uint8_t>((e.id << 4) | (e.size - 1u));
    } else {
      out[pos++] = e.id;
      out[pos++] = static_cast<std::uint8_t>(e.size);
    }
    if (e.size) std::memcpy(out + pos, e.data, e.size);
    pos += e.size;
  }
  if (padded > pos) std::memset(out + pos, 0, padded - pos);
  if (profile) *profile = one_byte ? kOneByteProfile : kTwoByteProfile;
  return static_cast<std::ptrdiff_t>(padded);
}

}  // namespace mediacore::rtp
