#include "wav.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mediacore::wav {

namespace {

constexpr std::uint64_t kU32Max = 0xFFFFFFFFull;
constexpr int kMaxTailChunks = 1024;

void put16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint16_t get16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t get32(const std::uint8_t* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
bool is_chunk_id(const std::uint8_t* id) noexcept {
  for (int i = 0; i < 4; ++i)
    if (id[i] < 0x20 || id[i] > 0x7E) return false;
  return true;
}

// Whether [off, end) is a chain of well-formed chunks ending exactly at end
// (the last one may lack its pad byte).
bool chunk_chain_to_end(const ByteSource& src, std::uint64_t off, std::uint64_t end) noexcept {
  for (int k = 0; k < kMaxTailChunks; ++k) {
    if (off == end) return true;
    std::uint8_t h[8];
    if (end - off < 8 || !src.read_at(off, h, 8) || !is_chunk_id(h)) return false;
    const std::uint64_t size = get32(h + 4);
    const std::uint64_t body_end = off + 8 + size;
    if (body_end > end) return false;
    if (body_end == end) return true;
    off = body_end + (size & 1);
  }
  return false;
}

}  // namespace

bool valid(const Format& f) noexcept {
  const bool codec_ok = f.codec == Codec::PCM16 || f.codec == Codec::ALAW || f.codec == Codec::ULAW;
  const bool rate_ok = f.sample_rate == 8000 || f.sample_rate == 16000 || f.sample_rate == 48000;
  return codec_ok && rate_ok && (f.channels == 1 || f.channels == 2);
}

std::size_t header_size(const Format& f) noexcept { return f.codec == Codec::PCM16 ? 44 : 58; }

std::uint64_t max_data_bytes(const Format& f) noexcept {
  // The RIFF size (file length - 8) must fit 32 bits, pad byte included.
  const std::uint64_t room = kU32Max - (header_size(f) - 8) - 1;
  const auto align = static_cast<std::uint64_t>(f.block_align());
  return room - room % align;
}

std::size_t write_header(const Format& f, std::uint64_t data_bytes, std::uint8_t* out, std::size_t capacity,
                         bool pad_written) noexcept {
  if (!valid(f) || out == nullptr) return 0;
  const std::size_t hs = header_size(f);
  if (capacity < hs) return 0;
  if (data_bytes > max_data_bytes(f)) data_bytes = max_data_bytes(f);
  const auto data32 = static_cast<std::uint32_t>(data_bytes);
  const bool pcm = f.codec == Codec::PCM16;
  const std::uint32_t pad = pad_written ? (data32 & 1u) : 0u;
  const auto block = static_cast<std::uint16_t>(f.block_align());

  std::uint8_t* p = out;
  std::memcpy(p, "RIFF", 4);
  put32(p + 4, static_cast<std::uint32_t>(hs - 8) + data32 + pad);
  std::memcpy(p + 8, "WAVE", 4);
  std::memcpy(p + 12, "fmt ", 4);
  put32(p + 16, pcm ? 16 : 18);
  put16(p + 20, static_cast<std::uint16_t>(f.codec));
  put16(p + 22, static_cast<std::uint16_t>(f.channels));
  put32(p + 24, static_cast<std::uint32_t>(f.sample_rate));
  put32(p + 28, static_cast<std::uint32_t>(f.sample_rate) * block);
  put16(p + 32, block);
  put16(p + 34, static_cast<std::uint16_t>(8 * f.bytes_per_sample()));
  p += 36;
  if (!pcm) {
    put16(p, 0);  // cbSize
    std::memcpy(p + 2, "fact", 4);
    put32(p + 6, 4);
    put32(p + 10, data32 / block);
    p += 14;
  }
  std::memcpy(p, "data", 4);
  put32(p + 4, data32);
  return hs;
}

RepairPlan plan_repair(const ByteSource& src) noexcept {
  RepairPlan plan;
  const std::uint64_t len = src.size();
  plan.old_size = plan.new_size = len;
  std::uint8_t h[12];
  if (len < 12 || !src.read_at(0, h, 12) || std::memcmp(h, "RIFF", 4) != 0 || std::memcmp(h + 8, "WAVE", 4) != 0) {
    plan.status = kNotWav;
    return plan;
  }
  const std::uint32_t riff_field = get32(h + 4);

  bool have_fmt = false;
  std::uint32_t fact_field = 0;
  std::uint64_t off = 12;
  std::uint64_t declared = 0;
  bool found_data = false;
  while (len - off >= 8) {
    std::uint8_t c[8];
    if (!src.read_at(off, c, 8)) break;
    const std::uint64_t size = get32(c + 4);
    if (std::memcmp(c, "data", 4) == 0) {
      found_data = true;
      plan.data_offset = off + 8;
      declared = size;
      break;
    }
    if (std::memcmp(c, "fmt ", 4) == 0 && size >= 16 && len - (off + 8) >= 16) {
      std::uint8_t f[16];
      if (src.read_at(off + 8, f, 16)) {
        plan.format_tag = get16(f);
        plan.channels = get16(f + 2);
        plan.sample_rate = get32(f + 4);
        plan.block_align = get16(f + 12);
        have_fmt = plan.block_align != 0;
      }
    } else if (std::memcmp(c, "fact", 4) == 0 && size >= 4 && len - (off + 8) >= 4) {
      std::uint8_t f[4];
      if (src.read_at(off + 8, f, 4)) {
        plan.fact_offset = off + 8;
        fact_field = get32(f);
      }
    }
    const std::uint64_t next = off + 8 + size + (size & 1);
    if (next > len) break;  // a chunk before the data runs past the end
    off = next;
  }
  if (!found_data) {
    plan.status = have_fmt ? kNoData : kNoFormat;
    return plan;
  }
  if (!have_fmt) {
    plan.status = kNoFormat;
    return plan;
  }

  const std::uint64_t data_off = plan.data_offset;
  const std::uint64_t avail = len - data_off;
  const std::uint64_t align = plan.block_align;
  bool consistent = false;
  if (declared <= avail) {
    const std::uint64_t after = data_off + declared + (declared & 1);
    consistent = after >= len || chunk_chain_to_end(src, after, len);
  }
  if (consistent) {
    plan.data_bytes = declared;
    plan.new_size = len;
  } else {
    // The data runs to the end of the file: cut a partial frame, keep it
    // describable in 32 bits, and pad to an even length.
    std::uint64_t room = kU32Max - (data_off - 8) - 1;
    room -= room % align;
    std::uint64_t n = avail - avail % align;
    if (n > room) n = room;
    plan.data_bytes = n;
    plan.cut_to_data = true;
    plan.add_pad_byte = (n & 1) != 0;
    plan.new_size = data_off + n + (n & 1);
  }
  const std::uint64_t riff = plan.new_size - 8;
  plan.riff_size = riff > kU32Max ? static_cast<std::uint32_t>(kU32Max) : static_cast<std::uint32_t>(riff);
  if (plan.fact_offset != 0) plan.fact_samples = static_cast<std::uint32_t>(plan.data_bytes / align);
  plan.changed = plan.new_size != len || plan.data_bytes != declared || plan.riff_size != riff_field ||
                 (plan.fact_offset != 0 && plan.fact_samples != fact_field);
  plan.status = kRepairOk;
  return plan;
}

namespace {

bool pwrite_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) noexcept {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
    off += static_cast<std::uint64_t>(w);
  }
  return true;
}

}  // namespace

RepairPlan repair_file(const char* path) noexcept {
  RepairPlan plan;
  const int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    plan.status = kIoError;
    plan.sys_errno = errno;
    return plan;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    plan.status = kIoError;
    plan.sys_errno = errno;
    ::close(fd);
    return plan;
  }
  plan = plan_repair(FdSource(fd, static_cast<std::uint64_t>(st.st_size)));
  if (plan.status == kRepairOk && plan.changed) {
    std::uint8_t v[4];
    bool ok = true;
    const std::uint64_t data_end = plan.data_offset + plan.data_bytes;
    // Cut first (drops a partial frame), then grow by the zero pad byte.
    // Chunks after a consistent data chunk are kept as they are.
    if (plan.cut_to_data) {
      if (plan.old_size != data_end) ok = ::ftruncate(fd, static_cast<off_t>(data_end)) == 0;
      if (ok && plan.new_size != data_end) ok = ::ftruncate(fd, static_cast<off_t>(plan.new_size)) == 0;
    }
    put32(v, plan.riff_size);
    ok = ok && pwrite_all(fd, v, 4, 4);
    put32(v, static_cast<std::uint32_t>(plan.data_bytes));
    ok = ok && pwrite_all(fd, v, 4, plan.data_offset - 4);
    if (plan.fact_offset != 0) {
      put32(v, plan.fact_samples);
      ok = ok && pwrite_all(fd, v, 4, plan.fact_offset);
    }
    ok = ok && ::fsync(fd) == 0;
    if (!ok) {
      plan.status = kIoError;
      plan.sys_errno = errno;
    }
  }
  ::close(fd);
  return plan;
}

}  // namespace mediacore::wav
