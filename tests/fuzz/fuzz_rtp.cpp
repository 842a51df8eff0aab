// libFuzzer target: RTP parse (RFC 3550 5.1, 5.3.1) and RFC 8285 elements.
//
// Whatever parse() accepts must re-serialize to the same bytes (padding
// octets other than the count are normalised to zero) and parse again to the
// same view; walking the extension elements must stay inside the extension.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rtp.hpp"

using namespace mediacore;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_rtp: %s\n", what);
  std::abort();
}

void walk_elements(const rtp::PacketView& v) {
  rtp::ElementReader reader(v);
  rtp::Element e;
  std::vector<rtp::Element> seen;
  int r;
  while ((r = reader.next(&e)) == 1) {
    if (e.data < v.extension_data || e.data + e.size > v.extension_data + v.extension_size) fail("element outside");
    seen.push_back(e);
  }
  if (r != 0 && r != rtp::kBadElement) fail("bad element status");
  // Re-encode what was read: write_elements must accept it (or refuse cleanly) and read back the same.
  // Each element grows by at most one header octet in the two-byte form.
  std::vector<std::uint8_t> buf(2 * v.extension_size + 8);
  std::uint16_t profile = 0;
  const std::ptrdiff_t n = rtp::write_elements(seen.data(), seen.size(), buf.data(), buf.size(), &profile);
  if (n < 0) {
    if (n != rtp::kBadElement && n != rtp::kBadExtensionLength) fail("write_elements status");
    return;
  }
  rtp::ElementReader again(rtp::element_form(profile), buf.data(), static_cast<std::size_t>(n));
  for (const rtp::Element& want : seen) {
    if (again.next(&e) != 1) fail("element lost on rewrite");
    if (e.id != want.id || e.size != want.size || (e.size && std::memcmp(e.data, want.data, e.size) != 0))
      fail("element changed on rewrite");
  }
  if (again.next(&e) != 0) fail("extra element on rewrite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy into an exact-size heap buffer so ASan sees any overread.
  std::vector<std::uint8_t> in(data, data + size);
  rtp::PacketView v;
  if (rtp::parse(in.data(), in.size(), &v) != rtp::kOk) return 0;
  if (v.header_size + v.payload_size + v.padding_size != size) fail("sizes do not add up");
  walk_elements(v);

  std::uint32_t csrc[rtp::kMaxCsrc];
  for (int i = 0; i < v.csrc_count; ++i) csrc[i] = v.csrc(i);
  rtp::PacketSpec spec;
  spec.marker = v.marker;
  spec.payload_type = v.payload_type;
  spec.sequence_number = v.sequence_number;
  spec.timestamp = v.timestamp;
  spec.ssrc = v.ssrc;
  spec.csrc_count = v.csrc_count;
  spec.csrc = csrc;
  spec.extension = v.extension;
  spec.extension_profile = v.extension_profile;
  spec.extension_data = v.extension_data;
  spec.extension_size = v.extension_size;
  spec.payload = v.payload;
  spec.payload_size = v.payload_size;
  spec.padding_size = v.padding_size;
  if (rtp::serialized_size(spec) != static_cast<std::ptrdiff_t>(size)) fail("serialized_size");
  std::vector<std::uint8_t> out(size);
  if (size > 0 && rtp::serialize(spec, out.data(), size - 1) != rtp::kBufferTooSmall) fail("capacity check");
  if (rtp::serialize(spec, out.data(), out.size()) != static_cast<std::ptrdiff_t>(size)) fail("serialize");
  const std::size_t body = size - v.padding_size;
  if (std::memcmp(out.data(), in.data(), body) != 0) fail("bytes differ");
  if (v.padding_size && out[size - 1] != in[size - 1]) fail("padding count differs");
  rtp::PacketView w;
  if (rtp::parse(out.data(), out.size(), &w) != rtp::kOk) fail("reparse");
  if (w.sequence_number != v.sequence_number || w.timestamp != v.timestamp || w.ssrc != v.ssrc ||
      w.payload_size != v.payload_size || w.extension_size != v.extension_size || w.marker != v.marker ||
      w.payload_type != v.payload_type || w.padding_size != v.padding_size)
    fail("reparse differs");
  return 0;
}
