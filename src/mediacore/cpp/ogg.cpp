#include "ogg.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mediacore::ogg {

namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t r = i << 24;
    for (int k = 0; k < 8; ++k) r = (r & 0x80000000u) ? (r << 1) ^ 0x04C11DB7u : (r << 1);
    t[i] = r;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
std::uint64_t get64(const std::uint8_t* p) noexcept {
  return static_cast<std::uint64_t>(get32(p)) | (static_cast<std::uint64_t>(get32(p + 4)) << 32);
}

std::size_t segments_for(std::size_t size) noexcept { return size / 255 + 1; }

}  // namespace

std::uint32_t crc32(const std::uint8_t* data, std::size_t n, std::uint32_t crc) noexcept {
  for (std::size_t i = 0; i < n; ++i) crc = (crc << 8) ^ kCrcTable[((crc >> 24) ^ data[i]) & 0xFF];
  return crc;
}

// ------------------------------------------------------------------ writer

PageWriter::PageWriter(std::uint32_t serial) : serial_(serial), lacing_(kMaxSegments), body_(kMaxBody) {}

bool PageWriter::fits(std::size_t size) const noexcept {
  return segments_ + segments_for(size) <= kMaxSegments && body_len_ + size <= kMaxBody;
}

bool PageWriter::add_packet(const std::uint8_t* data, std::size_t size, std::int64_t granule) noexcept {
  if (!fits(size) || (data == nullptr && size != 0)) return false;
  std::size_t left = size;
  while (left >= 255) {
    lacing_[segments_++] = 255;
    left -= 255;
  }
  lacing_[segments_++] = static_cast<std::uint8_t>(left);
  if (size != 0) std::memcpy(body_.data() + body_len_, data, size);
  body_len_ += size;
  granule_ = granule;
  ++packets_;
  return true;
}

std::size_t PageWriter::flush(std::uint8_t* out, std::size_t capacity, std::uint8_t flags, bool allow_empty,
                              std::int64_t granule_override) noexcept {
  if (packets_ == 0 && !allow_empty) return 0;
  const std::size_t size = page_size();
  if (out == nullptr || capacity < size) return 0;
  const std::int64_t granule = granule_override >= 0 ? granule_override : granule_;
  std::memcpy(out, "OggS", 4);
  out[4] = 0;
  out[5] = flags;
  put64(out + 6, static_cast<std::uint64_t>(granule));
  put32(out + 14, serial_);
  put32(out + 18, seq_);
  put32(out + 22, 0);
  out[26] = static_cast<std::uint8_t>(segments_);
  std::memcpy(out + kHeaderBytes, lacing_.data(), segments_);
  std::memcpy(out + kHeaderBytes + segments_, body_.data(), body_len_);
  put32(out + 22, crc32(out, size));
  ++seq_;
  segments_ = packets_ = body_len_ = 0;
  return size;
}

void PageWriter::discard() noexcept { segments_ = packets_ = body_len_ = 0; }

// ------------------------------------------------------------------ Opus headers

std::size_t opus_head(std::uint8_t* out, std::size_t capacity, int channels, std::uint16_t pre_skip,
                      std::uint32_t input_sample_rate) noexcept {
  if (out == nullptr || capacity < 19 || channels < 1 || channels > 2) return 0;
  std::memcpy(out, "OpusHead", 8);
  out[8] = 1;  // version
  out[9] = static_cast<std::uint8_t>(channels);
  out[10] = static_cast<std::uint8_t>(pre_skip);
  out[11] = static_cast<std::uint8_t>(pre_skip >> 8);
  put32(out + 12, input_sample_rate);
  out[16] = 0;  // output gain, Q7.8 dB
  out[17] = 0;
  out[18] = 0;  // channel mapping family 0: mono or stereo, no table
  return 19;
}

std::vector<std::uint8_t> opus_tags(std::string_view vendor, const std::vector<std::string_view>& comments) {
  std::vector<std::uint8_t> out(8 + 4 + vendor.size() + 4);
  std::memcpy(out.data(), "OpusTags", 8);
  put32(out.data() + 8, static_cast<std::uint32_t>(vendor.size()));
  std::memcpy(out.data() + 12, vendor.data(), vendor.size());
  put32(out.data() + 12 + vendor.size(), static_cast<std::uint32_t>(comments.size()));
  for (std::string_view c : comments) {
    if (c.find('=') == std::string_view::npos || c.front() == '=')
      throw std::invalid_argument("Opus comments must be KEY=value");
    const std::size_t at = out.size();
    out.resize(at + 4 + c.size());
    put32(out.data() + at, static_cast<std::uint32_t>(c.size()));
    std::memcpy(out.data() + at + 4, c.data(), c.size());
  }
  if (out.size() > kMaxBody - 1) throw std::invalid_argument("Opus comments too long for one page");
  return out;
}

// ------------------------------------------------------------------ scan / repair

namespace {

struct Page {
  std::uint8_t flags = 0;
  std::int64_t granule = 0;
  std::uint32_t serial = 0;
  std::uint32_t size = 0;
  std::uint8_t last_lacing = 0;
  std::uint8_t segments = 0;
};

// Reads and checks the page at off into buf (kMaxPage bytes). False if it is
// not a whole page with a correct CRC.
bool read_page(const ByteSource& src, std::uint64_t off, std::uint8_t* buf, Page* page) noexcept {
  const std::uint64_t len = src.size();
  if (off > len || len - off < kHeaderBytes) return false;
  if (!src.read_at(off, buf, kHeaderBytes)) return false;
  if (std::memcmp(buf, "OggS", 4) != 0 || buf[4] != 0 || (buf[5] & ~0x07) != 0) return false;
  const std::size_t nseg = buf[26];
  if (len - off - kHeaderBytes < nseg || !src.read_at(off + kHeaderBytes, buf + kHeaderBytes, nseg)) return false;
  std::size_t body = 0;
  for (std::size_t i = 0; i < nseg; ++i) body += buf[kHeaderBytes + i];
  const std::size_t size = kHeaderBytes + nseg + body;
  if (len - off < size || !src.read_at(off + kHeaderBytes + nseg, buf + kHeaderBytes + nseg, body)) return false;
  const std::uint32_t stored = get32(buf + 22);
  std::memset(buf + 22, 0, 4);
  const std::uint32_t crc = crc32(buf, size);
  put32(buf + 22, stored);
  if (crc != stored) return false;
  page->flags = buf[5];
  page->granule = static_cast<std::int64_t>(get64(buf + 6));
  page->serial = get32(buf + 14);
  page->size = static_cast<std::uint32_t>(size);
  page->segments = static_cast<std::uint8_t>(nseg);
  page->last_lacing = nseg ? buf[kHeaderBytes + nseg - 1] : 0;
  return true;
}

// Whether a whole valid page starts anywhere in [from, len).
bool valid_page_after(const ByteSource& src, std::uint64_t from, std::uint8_t* buf) noexcept {
  const std::uint64_t len = src.size();
  std::uint8_t window[4096];
  std::uint64_t off = from;
  while (off + 4 <= len) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof window, len - off));
    if (!src.read_at(off, window, want)) return false;
    for (std::size_t i = 0; i + 4 <= want; ++i) {
      if (std::memcmp(window + i, "OggS", 4) == 0) {
        Page p;
        if (read_page(src, off + i, buf, &p)) return true;
      }
    }
    if (want < 4) break;
    off += want - 3;
  }
  return false;
}

}  // namespace

ScanResult scan(const ByteSource& src) noexcept {
  ScanResult r;
  r.old_size = src.size();
  static thread_local std::uint8_t buf[kMaxPage];
  std::uint64_t off = 0;
  Page page;
  Page last;
  while (read_page(src, off, buf, &page)) {
    if (r.pages == 0) r.serial = page.serial;
    if (page.serial != r.serial) r.single_stream = false;
    if (page.granule != -1) r.last_granule = page.granule;
    r.last_page_offset = off;
    r.last_page_size = page.size;
    last = page;
    ++r.pages;
    off += page.size;
  }
  r.valid_end = off;
  if (r.pages == 0) {
    r.status = kNotOgg;
    return r;
  }
  if (off < r.old_size && valid_page_after(src, off + 1, buf)) {
    r.status = kCorrupt;
    return r;
  }
  r.ends_with_eos = (last.flags & kEos) != 0;
  // EOS only on a single stream's last page that ends a packet.
  r.set_eos = !r.ends_with_eos && r.single_stream && r.pages > 1 && last.segments > 0 && last.last_lacing < 255 &&
              last.granule != -1;
  r.changed = r.valid_end != r.old_size || r.set_eos;
  r.status = kScanOk;
  return r;
}

ScanResult repair_file(const char* path) noexcept {
  ScanResult r;
  const int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    r.status = kIoError;
    r.sys_errno = errno;
    return r;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    r.status = kIoError;
    r.sys_errno = errno;
    ::close(fd);
    return r;
  }
  r = scan(FdSource(fd, static_cast<std::uint64_t>(st.st_size)));
  if (r.status == kScanOk && r.changed) {
    bool ok = true;
    if (r.valid_end != r.old_size) ok = ::ftruncate(fd, static_cast<off_t>(r.valid_end)) == 0;
    if (ok && r.set_eos) {
      static thread_local std::uint8_t page[kMaxPage];
      const FdSource src(fd, r.valid_end);
      ok = src.read_at(r.last_page_offset, page, r.last_page_size);
      if (ok) {
        page[5] |= kEos;
        std::memset(page + 22, 0, 4);
        put32(page + 22, crc32(page, r.last_page_size));
        ok = ::pwrite(fd, page + 5, 1, static_cast<off_t>(r.last_page_offset + 5)) == 1 &&
             ::pwrite(fd, page + 22, 4, static_cast<off_t>(r.last_page_offset + 22)) == 4;
      }
      if (ok) r.ends_with_eos = true;
    }
    ok = ok && ::fsync(fd) == 0;
    if (!ok) {
      r.status = kIoError;
      r.sys_errno = errno;
    }
  }
  ::close(fd);
  return r;
}

}  // namespace mediacore::ogg
