// Native self-check of the RTP unit, run under ASan + UBSan by tests/native/test_native.py.
//
// Every buffer here is an exact-size heap allocation, so a read or write one
// byte past the end is an ASan report, not a silent pass.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "rtp.hpp"

using namespace mediacore;

namespace {

using Bytes = std::vector<std::uint8_t>;

// A packet with 2 CSRCs, a one-byte-form extension, a payload and 4 padding octets.
Bytes full_packet() {
  return Bytes{
      0xB2, 0xE0, 0x12, 0x34,  // V=2 P=1 X=1 CC=2, M=1 PT=96, seq 0x1234
      0xDE, 0xAD, 0xBE, 0xEF,  // timestamp
      0x01, 0x02, 0x03, 0x04,  // SSRC
      0x00, 0x00, 0x00, 0x0A,  // CSRC 1
      0x00, 0x00, 0x00, 0x0B,  // CSRC 2
      0xBE, 0xDE, 0x00, 0x02,  // RFC 8285 one-byte form, 2 words
      0x10, 0xAA, 0x22, 0xBB, 0xCC, 0xDD, 0x00, 0x00,  // id1 len1, id2 len3, padding
      'h',  'e',  'l',  'l',  'o',                     // payload
      0x00, 0x00, 0x00, 0x04,  // padding, count 4
  };
}

void check_full_packet() {
  const Bytes b = full_packet();
  Bytes heap(b);
  rtp::PacketView v;
  REQUIRE(rtp::parse(heap.data(), heap.size(), &v) == rtp::kOk);
  CHECK_EQ(v.version, 2);
  CHECK(v.padding && v.extension && v.marker);
  CHECK_EQ(v.payload_type, 96);
  CHECK_EQ(v.sequence_number, 0x1234);
  CHECK_EQ(v.timestamp, 0xDEADBEEFu);
  CHECK_EQ(v.ssrc, 0x01020304u);
  CHECK_EQ(v.csrc_count, 2);
  CHECK_EQ(v.csrc(0), 10u);
  CHECK_EQ(v.csrc(1), 11u);
  CHECK_EQ(v.csrc(2), 0u);  // out of range reads nothing
  CHECK_EQ(v.extension_profile, 0xBEDE);
  CHECK_EQ(v.extension_size, 8u);
  CHECK_EQ(v.header_size, 32u);
  CHECK_EQ(v.payload_size, 5u);
  CHECK(std::memcmp(v.payload, "hello", 5) == 0);
  CHECK_EQ(v.padding_size, 4);

  rtp::ElementReader reader(v);
  rtp::Element e;
  REQUIRE(reader.next(&e) == 1);
  CHECK_EQ(e.id, 1);
  CHECK_EQ(e.size, 1u);
  CHECK_EQ(e.data[0], 0xAA);
  REQUIRE(reader.next(&e) == 1);
  CHECK_EQ(e.id, 2);
  CHECK_EQ(e.size, 3u);
  CHECK_EQ(e.data[2], 0xDD);
  CHECK_EQ(reader.next(&e), 0);
  CHECK_EQ(reader.next(&e), 0);

  // Every truncation fails cleanly (a shorter buffer, exactly sized).
  for (std::size_t n = 0; n < b.size(); ++n) {
    Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    rtp::PacketView w;
    const int r = rtp::parse(cut.data(), cut.size(), &w);
    // With P set the last byte is read as a count: most prefixes fail on it.
    CHECK(r < 0 || (r == rtp::kOk && w.header_size + w.payload_size + w.padding_size == n));
  }

  // Rebuild it, and check the builder refuses every capacity one short.
  std::uint32_t csrc[2] = {10, 11};
  rtp::PacketSpec s;
  s.marker = true;
  s.payload_type = 96;
  s.sequence_number = 0x1234;
  s.timestamp = 0xDEADBEEF;
  s.ssrc = 0x01020304;
  s.csrc_count = 2;
  s.csrc = csrc;
  s.extension = true;
  s.extension_profile = 0xBEDE;
  s.extension_data = v.extension_data;
  s.extension_size = v.extension_size;
  s.payload = v.payload;
  s.payload_size = v.payload_size;
  s.padding_size = 4;
  CHECK_EQ(rtp::serialized_size(s), static_cast<std::ptrdiff_t>(b.size()));
  for (std::size_t cap = 0; cap < b.size(); ++cap) {
    Bytes out(cap);
    CHECK_EQ(rtp::serialize(s, out.data(), out.size()), static_cast<std::ptrdiff_t>(rtp::kBufferTooSmall));
  }
  Bytes out(b.size());
  CHECK_EQ(rtp::serialize(s, out.data(), out.size()), static_cast<std::ptrdiff_t>(b.size()));
  CHECK(out == b);
}

void check_malformed() {
  rtp::PacketView v;
  Bytes minimal{0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_EQ(rtp::parse(minimal.data(), minimal.size(), &v), static_cast<int>(rtp::kOk));
  CHECK_EQ(v.payload_size, 0u);
  Bytes bad_version(minimal);
  bad_version[0] = 0x40;
  CHECK_EQ(rtp::parse(bad_version.data(), bad_version.size(), &v), static_cast<int>(rtp::kBadVersion));
  Bytes csrc(minimal);
  csrc[0] = 0x81;
  CHECK_EQ(rtp::parse(csrc.data(), csrc.size(), &v), static_cast<int>(rtp::kTruncatedCsrc));
  Bytes ext(minimal);
  ext[0] = 0x90;
  CHECK_EQ(rtp::parse(ext.data(), ext.size(), &v), static_cast<int>(rtp::kTruncatedExtension));
  ext.insert(ext.end(), {0xBE, 0xDE, 0x00, 0x01});
  CHECK_EQ(rtp::parse(ext.data(), ext.size(), &v), static_cast<int>(rtp::kTruncatedExtension));
  Bytes pad(minimal);
  pad[0] = 0xA0;
  pad.push_back(0x00);  // count 0
  CHECK_EQ(rtp::parse(pad.data(), pad.size(), &v), static_cast<int>(rtp::kBadPadding));
  pad.back() = 2;  // count 2 but only 1 octet after the header
  CHECK_EQ(rtp::parse(pad.data(), pad.size(), &v), static_cast<int>(rtp::kBadPadding));
  pad.back() = 1;
  CHECK_EQ(rtp::parse(pad.data(), pad.size(), &v), static_cast<int>(rtp::kOk));
  CHECK_EQ(v.payload_size, 0u);
  CHECK_EQ(rtp::parse(nullptr, 0, &v), static_cast<int>(rtp::kTooShort));
}

void check_elements() {
  const std::uint8_t a[] = {1, 2, 3};
  const std::uint8_t big[20] = {7};
  rtp::Element one[2] = {{1, a, 3}, {14, a, 1}};
  Bytes out(8);
  std::uint16_t profile = 0;
  CHECK_EQ(rtp::write_elements(one, 2, out.data(), out.size(), &profile), std::ptrdiff_t{8});
  CHECK_EQ(profile, rtp::kOneByteProfile);
  CHECK(out == (Bytes{0x12, 1, 2, 3, 0xE0, 1, 0, 0}));
  Bytes small(7);
  CHECK_EQ(rtp::write_elements(one, 2, small.data(), small.size(), &profile),
           static_cast<std::ptrdiff_t>(rtp::kBufferTooSmall));
  // A 20-byte element forces the two-byte form.
  rtp::Element two[2] = {{1, a, 3}, {200, big, 20}};
  Bytes out2(28);
  CHECK_EQ(rtp::write_elements(two, 2, out2.data(), out2.size(), &profile), std::ptrdiff_t{28});
  CHECK_EQ(profile, rtp::kTwoByteProfile);
  rtp::ElementReader r(rtp::ElementForm::kTwoByte, out2.data(), out2.size());
  rtp::Element e;
  REQUIRE(r.next(&e) == 1);
  CHECK_EQ(e.id, 1);
  REQUIRE(r.next(&e) == 1);
  CHECK_EQ(e.id, 200);
  CHECK_EQ(e.size, 20u);
  CHECK_EQ(r.next(&e), 0);
  // Id 15 stops a one-byte walk; an element running past the end is an error.
  Bytes stop{0x10, 0xAA, 0xF0, 0x20, 0xBB, 0, 0, 0};
  rtp::ElementReader rs(rtp::ElementForm::kOneByte, stop.data(), stop.size());
  CHECK_EQ(rs.next(&e), 1);
  CHECK_EQ(rs.next(&e), 0);
  Bytes overrun{0x13, 0xAA, 0xBB};
  rtp::ElementReader ro(rtp::ElementForm::kOneByte, overrun.data(), overrun.size());
  CHECK_EQ(ro.next(&e), static_cast<int>(rtp::kBadElement));
  CHECK_EQ(ro.next(&e), 0);
  Bytes overrun2{0x05};
  rtp::ElementReader ro2(rtp::ElementForm::kTwoByte, overrun2.data(), overrun2.size());
  CHECK_EQ(ro2.next(&e), static_cast<int>(rtp::kBadElement));
  rtp::Element bad{0, a, 1};
  CHECK_EQ(rtp::write_elements(&bad, 1, out.data(), out.size(), &profile),
           static_cast<std::ptrdiff_t>(rtp::kBadElement));
}

void check_rewrite_helpers() {
  Bytes b = full_packet();
  rtp::set_sequence_number(b.data(), 7);
  rtp::set_timestamp(b.data(), 8);
  rtp::set_ssrc(b.data(), 9);
  rtp::set_payload_type(b.data(), 0);
  rtp::PacketView v;
  REQUIRE(rtp::parse(b.data(), b.size(), &v) == rtp::kOk);
  CHECK_EQ(v.sequence_number, 7);
  CHECK_EQ(v.timestamp, 8u);
  CHECK_EQ(v.ssrc, 9u);
  CHECK_EQ(v.payload_type, 0);
  CHECK(v.marker);
}

}  // namespace

int main() {
  check_full_packet();
  check_malformed();
  check_elements();
  check_rewrite_helpers();
  return check::finish("check_rtp");
}
