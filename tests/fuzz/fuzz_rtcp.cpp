// libFuzzer target: RTCP compound parsing (RFC 3550 6, A.2) and rebuilding.
//
// Every packet a reader accepts is rebuilt with rtcp::Writer; the result must
// be byte-identical to the input packet (padding octets other than the count
// excepted), which checks the readers and the writer against each other.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "rtcp.hpp"

using namespace mediacore;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_rtcp: %s\n", what);
  std::abort();
}

// Rebuild one packet; returns false when a per-type reader refused it.
bool rebuild(const rtcp::PacketView& p, std::vector<std::uint8_t>& out) {
  out.assign(p.size + 8, 0xEE);
  rtcp::Writer w(out.data(), out.size());
  int r = rtcp::kOk;
  switch (p.packet_type) {
    case rtcp::kSR:
    case rtcp::kRR: {
      rtcp::ReportView v;
      if (rtcp::parse_report(p, &v) != rtcp::kOk) return false;
      rtcp::ReportBlock blocks[rtcp::kMaxCount];
      for (int i = 0; i < v.report_count; ++i) blocks[i] = v.block(i);
      r = v.has_sender_info
              ? w.sender_report(v.ssrc, v.sender, blocks, v.report_count, v.extension, v.extension_size)
              : w.receiver_report(v.ssrc, blocks, v.report_count, v.extension, v.extension_size);
      break;
    }
    case rtcp::kSDES: {
      rtcp::SdesReader reader(p);
      std::vector<std::vector<rtcp::SdesItem>> items;
      std::vector<std::uint32_t> ssrcs;
      std::uint32_t ssrc;
      int c;
      while ((c = reader.next_chunk(&ssrc)) == 1) {
        ssrcs.push_back(ssrc);
        items.emplace_back();
        rtcp::SdesItem item;
        int i;
        while ((i = reader.next_item(&item)) == 1) {
          if (item.data < p.body || item.data + item.size > p.body + p.body_size) fail("SDES item outside body");
          if (item.type == rtcp::kPriv) {
            const std::uint8_t *prefix, *value;
            std::size_t np, nv;
            if (rtcp::split_priv(item, &prefix, &np, &value, &nv) != rtcp::kOk) fail("PRIV accepted then refused");
            if (np + nv + 1 != item.size) fail("PRIV sizes");
          }
          items.back().push_back(item);
        }
        if (i < 0) return false;
      }
      if (c < 0) return false;
      if (rtcp::validate_sdes(p) != rtcp::kOk) fail("validate_sdes disagrees with the reader");
      std::vector<rtcp::SdesChunk> chunks(ssrcs.size());
      for (std::size_t k = 0; k < ssrcs.size(); ++k)
        chunks[k] = {ssrcs[k], items[k].data(), static_cast<int>(items[k].size())};
      r = w.sdes(chunks.data(), static_cast<int>(chunks.size()));
      break;
    }
    case rtcp::kBYE: {
      rtcp::ByeView v;
      if (rtcp::parse_bye(p, &v) != rtcp::kOk) return false;
      std::uint32_t sources[rtcp::kMaxCount];
      for (int i = 0; i < v.source_count; ++i) sources[i] = v.source(i);
      r = w.bye(sources, v.source_count, v.has_reason, v.reason, v.reason_size);
      break;
    }
    case rtcp::kAPP: {
      rtcp::AppView v;
      if (rtcp::parse_app(p, &v) != rtcp::kOk) return false;
      r = w.app(v.subtype, v.ssrc, v.name, v.data, v.data_size);
      break;
    }
    default:
      r = w.raw(p.packet_type, p.count, p.body, p.body_size);
  }
  if (r == rtcp::kOk && p.padding) r = w.pad_last(p.padding_size);
  if (r != rtcp::kOk) fail("writer refused what a reader accepted");
  if (w.size() != p.size) fail("rebuilt size differs");
  out.resize(w.size());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> in(data, data + size);  // exact-size heap copy: ASan sees overreads
  for (bool reduced : {false, true}) {
    rtcp::CompoundReader reader(in.data(), in.size(), reduced);
    const int valid = reader.validate();
    rtcp::PacketView p;
    int r;
    std::size_t total = 0;
    std::vector<std::uint8_t> out;
    while ((r = reader.next(&p)) == 1) {
      if (p.data < in.data() || p.data + p.size > in.data() + in.size()) fail("packet outside datagram");
      if (p.body_size + p.padding_size + rtcp::kHeaderSize != p.size) fail("packet sizes");
      total += p.size;
      if (!rebuild(p, out)) continue;
      const std::size_t keep = p.size - p.padding_size;
      if (std::memcmp(out.data(), p.data, keep) != 0) fail("rebuilt bytes differ");
      if (p.padding && out[p.size - 1] != p.data[p.size - 1]) fail("padding count differs");
    }
    if (reader.next(&p) != 0 && r == 0) fail("reader restarted after the end");
    if (r == 0 && total != size) fail("walk ended before the datagram");
    if (valid == rtcp::kOk && r != 0) fail("validate() accepted what next() refused");
  }
  return 0;
}
