// Native self-check of the RTP, RTCP, receive-statistics and E-model units, run under ASan + UBSan by tests/native/test_native.py.
//
// Every buffer here is an exact-size heap allocation, so a read or write one
// byte past the end is an ASan report, not a silent pass.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "emodel.hpp"
#include "rtcp.hpp"
#include "rtp.hpp"
#include "rtp_stats.hpp"

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
  CHECK_EQ(rtp::write_elements(nullptr, 1, out.data(), out.size(), &profile),
           static_cast<std::ptrdiff_t>(rtp::kBadArgument));
  rtp::PacketSpec null_payload;
  null_payload.payload_size = 4;
  CHECK_EQ(rtp::serialized_size(null_payload), static_cast<std::ptrdiff_t>(rtp::kBadArgument));
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


// ---------------------------------------------------------------- RTCP

// SR (2 blocks) + SDES (CNAME, PRIV) + BYE (reason) + APP + a raw RTPFB, written by Writer.
std::size_t write_compound(std::uint8_t* out, std::size_t cap, int* failed_at) {
  rtcp::Writer w(out, cap);
  rtcp::SenderInfo info{0xE1234567'80000000ull, 160000, 1000, 172000};
  rtcp::ReportBlock blocks[2];
  blocks[0].ssrc = 0x55667788;
  blocks[0].fraction_lost = 64;
  blocks[0].cumulative_lost = -3;
  blocks[0].highest_sequence = 0x10005;
  blocks[1].ssrc = 7;
  blocks[1].cumulative_lost = 1 << 30;  // clamped to 0x7FFFFF on the wire
  const std::uint8_t cname[] = "alice@example.com";
  const std::uint8_t priv[] = {3, 'p', 'f', 'x', 'v', 'a', 'l'};
  rtcp::SdesItem items[2] = {{rtcp::kCname, cname, sizeof cname - 1}, {rtcp::kPriv, priv, sizeof priv}};
  rtcp::SdesChunk chunk{0x11223344, items, 2};
  const std::uint32_t sources[2] = {1, 2};
  const std::uint8_t reason[] = "hangup";
  const std::uint8_t name[4] = {'H', 'T', 'L', 'N'};
  const std::uint8_t app_data[4] = {'d', 'a', 't', 'a'};
  const std::uint8_t nack[8] = {0, 0, 0, 1, 0, 0x10, 0, 1};
  int steps[6];
  steps[0] = w.sender_report(0x11223344, info, blocks, 2);
  steps[1] = w.sdes(&chunk, 1);
  steps[2] = w.bye(sources, 2, true, reason, sizeof reason - 1);
  steps[3] = w.app(3, 7, name, app_data, 4);
  steps[4] = w.raw(205, 1, nack, 8);
  steps[5] = w.pad_last(8);
  *failed_at = -1;
  for (int i = 0; i < 6; ++i) {
    if (steps[i] != rtcp::kOk) {
      *failed_at = i;
      break;
    }
  }
  return w.size();
}

void check_rtcp() {
  int failed_at = 0;
  Bytes big(1024);
  const std::size_t n = write_compound(big.data(), big.size(), &failed_at);
  REQUIRE(failed_at == -1);
  Bytes dgram(big.begin(), big.begin() + static_cast<std::ptrdiff_t>(n));
  CHECK_EQ(n % 4, 0u);

  rtcp::CompoundReader reader(dgram.data(), dgram.size());
  CHECK_EQ(reader.validate(), static_cast<int>(rtcp::kOk));
  rtcp::PacketView p;
  int count = 0;
  while (reader.next(&p) == 1) {
    ++count;
    if (p.packet_type == rtcp::kSR) {
      rtcp::ReportView v;
      REQUIRE(rtcp::parse_report(p, &v) == rtcp::kOk);
      CHECK(v.has_sender_info);
      CHECK_EQ(v.sender.ntp_timestamp, 0xE1234567'80000000ull);
      CHECK_EQ(v.report_count, 2);
      CHECK_EQ(v.block(0).cumulative_lost, -3);
      CHECK_EQ(v.block(1).cumulative_lost, 0x7FFFFF);
      CHECK_EQ(v.block(5).ssrc, 0u);  // out of range reads nothing
    } else if (p.packet_type == rtcp::kSDES) {
      rtcp::SdesReader sdes(p);
      std::uint32_t ssrc = 0;
      rtcp::SdesItem item;
      REQUIRE(sdes.next_chunk(&ssrc) == 1);
      CHECK_EQ(ssrc, 0x11223344u);
      REQUIRE(sdes.next_item(&item) == 1);
      CHECK_EQ(item.size, 17u);
      REQUIRE(sdes.next_item(&item) == 1);
      const std::uint8_t *prefix, *value;
      std::size_t np, nv;
      REQUIRE(rtcp::split_priv(item, &prefix, &np, &value, &nv) == rtcp::kOk);
      CHECK_EQ(np, 3u);
      CHECK_EQ(nv, 3u);
      CHECK(std::memcmp(value, "val", 3) == 0);
      CHECK_EQ(sdes.next_item(&item), 0);
      CHECK_EQ(sdes.next_chunk(&ssrc), 0);
    } else if (p.packet_type == rtcp::kBYE) {
      rtcp::ByeView v;
      REQUIRE(rtcp::parse_bye(p, &v) == rtcp::kOk);
      CHECK(v.has_reason);
      CHECK_EQ(v.reason_size, 6u);
      CHECK_EQ(v.source(1), 2u);
    } else if (p.packet_type == rtcp::kAPP) {
      rtcp::AppView v;
      REQUIRE(rtcp::parse_app(p, &v) == rtcp::kOk);
      CHECK_EQ(v.subtype, 3);
      CHECK(std::memcmp(v.name, "HTLN", 4) == 0);
    } else {
      CHECK_EQ(p.packet_type, 205);
      CHECK(p.padding);
      CHECK_EQ(p.padding_size, 8);
      CHECK_EQ(p.body_size, 8u);
      rtcp::ReportView wrong;
      CHECK_EQ(rtcp::parse_report(p, &wrong), static_cast<int>(rtcp::kWrongType));
    }
  }
  CHECK_EQ(count, 5);

  // Every capacity short of the whole compound fails somewhere, writing nothing past it.
  for (std::size_t cap = 0; cap < n; ++cap) {
    Bytes small(cap);
    const std::size_t wrote = write_compound(small.data(), small.size(), &failed_at);
    CHECK(failed_at >= 0 && wrote <= cap);
  }
  // Every prefix that does not end on a packet boundary is refused.
  std::vector<std::size_t> boundaries;
  {
    rtcp::CompoundReader r2(dgram.data(), dgram.size());
    std::size_t at = 0;
    while (r2.next(&p) == 1) boundaries.push_back(at += p.size);
  }
  for (std::size_t cut = 0; cut < n; ++cut) {
    Bytes prefix(dgram.begin(), dgram.begin() + static_cast<std::ptrdiff_t>(cut));
    rtcp::CompoundReader r3(prefix.data(), prefix.size());
    const bool boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (!boundary) CHECK(r3.validate() != rtcp::kOk);
  }
  // A.2: a compound that starts with SDES is refused unless reduced-size.
  const std::size_t sr_len = boundaries[0];
  Bytes sdes_first(dgram.begin() + static_cast<std::ptrdiff_t>(sr_len), dgram.end());
  CHECK_EQ(rtcp::CompoundReader(sdes_first.data(), sdes_first.size()).validate(),
           static_cast<int>(rtcp::kFirstNotReport));
  CHECK_EQ(rtcp::CompoundReader(sdes_first.data(), sdes_first.size(), true).validate(), static_cast<int>(rtcp::kOk));
  // Builder refusals.
  Bytes out(64);
  rtcp::Writer w(out.data(), out.size());
  rtcp::ReportBlock many[32];
  CHECK_EQ(w.receiver_report(1, many, 32), static_cast<int>(rtcp::kTooManyItems));
  CHECK_EQ(w.pad_last(4), static_cast<int>(rtcp::kNothingToPad));
  CHECK_EQ(w.receiver_report(1, nullptr, 0), static_cast<int>(rtcp::kOk));
  CHECK_EQ(w.pad_last(3), static_cast<int>(rtcp::kNothingToPad));
  CHECK_EQ(w.pad_last(4), static_cast<int>(rtcp::kOk));
  CHECK_EQ(w.pad_last(4), static_cast<int>(rtcp::kNothingToPad));  // once only
  rtcp::SdesItem end_item{rtcp::kEnd, nullptr, 0};
  rtcp::SdesChunk bad_chunk{1, &end_item, 1};
  CHECK_EQ(w.sdes(&bad_chunk, 1), static_cast<int>(rtcp::kBadItem));
  CHECK_EQ(w.size(), 12u);
  rtcp::Writer null_writer(nullptr, 100);
  CHECK_EQ(null_writer.receiver_report(1, nullptr, 0), static_cast<int>(rtcp::kBufferTooSmall));
}

// ---------------------------------------------------------------- receive statistics

void check_stats() {
  rtp_stats::Config c;
  c.min_sequential = 1;
  rtp_stats::ReceiveStats s(42, c);
  for (int i = 0; i < 20; ++i) {
    const auto seq = static_cast<std::uint16_t>(65530 + i);
    if (i == 7) continue;  // one loss, across the wrap
    CHECK_EQ(s.on_packet(seq, 160u * static_cast<std::uint32_t>(i), 20'000'000LL * i), 1);
  }
  const rtp_stats::ReceiveSnapshot snap = s.snapshot();
  CHECK_EQ(snap.cycles, 65536u);
  CHECK_EQ(snap.extended_max, 65536u + 13u);
  CHECK_EQ(snap.expected, 20);
  CHECK_EQ(snap.lost, 1);
  CHECK_EQ(snap.jitter, 0u);
  s.on_sender_report(0x0000B705'20000000ull, 1'000'000'000);
  const rtcp::ReportBlock b = s.report_block(1'000'000'000 + 5'250'000'000LL);
  CHECK_EQ(b.fraction_lost, 256 / 20);
  CHECK_EQ(b.cumulative_lost, 1);
  CHECK_EQ(b.last_sr, 0xB7052000u);
  CHECK_EQ(b.delay_since_last_sr, 0x54000u);
  // RFC 3550 Figure 2.
  CHECK_EQ(rtp_stats::rtt_q16(0xB7108000u, 0xB7052000u, 0x00054000u), std::int64_t{0x62000});
  CHECK_EQ(rtp_stats::rtt_q16(0xB7108000u, 0, 0x00054000u), std::int64_t{-1});
  // Extreme clock values stay defined (UBSan watches the arithmetic).
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  const std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  CHECK(rtp_stats::ReceiveStats::timestamp_units(hi, 0xFFFFFFFFu) > 0);
  CHECK(rtp_stats::ReceiveStats::timestamp_units(lo, 0xFFFFFFFFu) < 0);
  CHECK_EQ(rtp_stats::ReceiveStats::timestamp_units(-1, 8000), std::int64_t{-1});
  (void)rtp_stats::ntp_from_unix_ns(lo);
  (void)rtp_stats::ntp_from_unix_ns(hi);
  (void)rtp_stats::unix_ns_from_ntp(~0ull);
  CHECK_EQ(rtp_stats::ntp_from_unix_ns(0), 2208988800ull << 32);
  rtp_stats::ReceiveStats t(1, c);
  t.on_packet(1, 0, lo);
  t.on_packet(2, 0xFFFFFFFFu, hi);
  t.on_sender_report(~0ull, hi);
  (void)t.report_block(lo);
  (void)t.report_block(hi);
  rtp_stats::SendStats send(5, 48000);
  send.on_sent(0xFFFFFFF0u, 100, 0);
  CHECK_EQ(send.sender_info(1, 1'000'000).rtp_timestamp, 0xFFFFFFF0u + 48u);
  (void)send.sender_info(1, hi);
  bool threw = false;
  try {
    rtp_stats::Config bad;
    bad.clock_rate = 0;
    rtp_stats::ReceiveStats x(1, bad);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
}

// ---------------------------------------------------------------- E-model

void check_emodel() {
  const emodel::Result r = emodel::compute(emodel::Params{});
  CHECK(std::fabs(r.R - 93.2) < 0.01);
  CHECK(std::fabs(r.mos - 4.41) < 0.005);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const double base = emodel::estimate_mos(emodel::Codec::G711_PLC, 0, 0);
  CHECK_EQ(emodel::estimate_mos(emodel::Codec::G711_PLC, nan, nan, nan), base);
  CHECK_EQ(emodel::estimate_mos(emodel::Codec::OPUS, inf, inf, inf), 1.0);
  CHECK(std::isfinite(emodel::estimate_mos(emodel::Codec::G729A, 1e300, 100, 1e300)));
  CHECK(std::isnan(emodel::mos_from_r(nan)));
  emodel::BurstEstimator b;
  CHECK_EQ(b.burst_ratio(), 1.0);
  b.on_lost(0xFFFFFFFFu);
  CHECK_EQ(b.burst_ratio(), 1.0);  // all lost: nothing to estimate from
  b.on_received();
  CHECK(b.burst_ratio() >= 1.0);
  b.reset();
  for (std::uint16_t seq : {65534, 65535, 2, 1, 3}) b.on_sequence(seq);
  CHECK_EQ(b.lost(), 2u);
  CHECK_EQ(b.received(), 4u);
}

}  // namespace

int main() {
  check_full_packet();
  check_malformed();
  check_elements();
  check_rewrite_helpers();
  check_rtcp();
  check_stats();
  check_emodel();
  return check::finish("check_rtp");
}
