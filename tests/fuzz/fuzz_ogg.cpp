// libFuzzer target: Ogg page scan/repair (ogg::scan) and the page writer.
//
// 1. Any bytes: scan stays inside them; when it would repair, applying the
//    repair in memory (truncate at valid_end, set EOS on the last page with a
//    new CRC, as repair_file does) gives bytes that scan accepts unchanged.
// 2. The input cut into packets and written with PageWriter: every page is
//    one scan accepts, the count matches, and the stream needs no repair.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ogg.hpp"

using namespace mediacore;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ogg: %s\n", what);
  std::abort();
}

void check_scan(const std::uint8_t* data, std::size_t size) {
  const ogg::ScanResult r = ogg::scan(MemorySource(data, size));
  if (r.status != ogg::kScanOk) {
    if (r.status != ogg::kNotOgg && r.status != ogg::kCorrupt) fail("unknown status");
    return;
  }
  if (r.valid_end > size || r.pages == 0) fail("scan result out of range");
  if (r.last_page_offset + r.last_page_size != r.valid_end) fail("last page does not end the valid part");
  if (!r.changed) return;
  std::vector<std::uint8_t> file(data, data + r.valid_end);
  if (r.set_eos) {
    std::uint8_t* page = file.data() + r.last_page_offset;
    page[5] |= ogg::kEos;
    std::memset(page + 22, 0, 4);
    const std::uint32_t crc = ogg::crc32(page, r.last_page_size);
    for (int i = 0; i < 4; ++i) page[22 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
  }
  const ogg::ScanResult again = ogg::scan(MemorySource(file.data(), file.size()));
  if (again.status != ogg::kScanOk || again.changed) fail("repair is not idempotent");
  if (again.pages != r.pages) fail("repair lost pages");
}

void check_writer(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  ogg::PageWriter w(0x01020304u);
  std::vector<std::uint8_t> stream;
  std::vector<std::uint8_t> page(ogg::kMaxPage);
  std::uint32_t pages = 0;
  std::int64_t granule = 0;
  std::size_t at = 0;
  while (at < size) {
    // Packet length from the input (0..~1000), then its bytes.
    const std::size_t len = std::min<std::size_t>(size - at - 1 < size ? size - at - 1 : 0, data[at] * 4u);
    const std::uint8_t* pkt = data + at + 1;
    at += 1 + len;
    granule += 960;
    if (!w.fits(len) || data[at - 1 - len] % 7 == 0) {
      const std::size_t n = w.flush(page.data(), page.size(), pages == 0 ? ogg::kBos : 0);
      if (n) {
        stream.insert(stream.end(), page.begin(), page.begin() + static_cast<std::ptrdiff_t>(n));
        ++pages;
      }
    }
    if (!w.add_packet(pkt, len, granule)) fail("a packet did not fit an empty page");
  }
  const std::size_t n = w.flush(page.data(), page.size(), static_cast<std::uint8_t>((pages == 0 ? ogg::kBos : 0) | ogg::kEos));
  if (n == 0) fail("final flush");
  stream.insert(stream.end(), page.begin(), page.begin() + static_cast<std::ptrdiff_t>(n));
  ++pages;
  const ogg::ScanResult r = ogg::scan(MemorySource(stream.data(), stream.size()));
  if (r.status != ogg::kScanOk || r.changed || r.pages != pages || !r.ends_with_eos) fail("writer output rejected");
  if (r.last_granule != granule) fail("granule");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_scan(data, size);
  check_writer(data, size);
  return 0;
}
