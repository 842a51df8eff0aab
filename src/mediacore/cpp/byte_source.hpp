// Random access to the bytes of a recording being checked or repaired: a file
// (pread) or memory (fuzzing, tests). Part of the recorder unit (wav, ogg).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mediacore {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const noexcept = 0;
  // Reads exactly n bytes at off; false if that is past the end or fails.
  virtual bool read_at(std::uint64_t off, std::uint8_t* dst, std::size_t n) const noexcept = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
  std::uint64_t size() const noexcept override { return size_; }
  bool read_at(std::uint64_t off, std::uint8_t* dst, std::size_t n) const noexcept override {
    if (off > size_ || n > size_ - off) return false;
    if (n != 0) std::memcpy(dst, data_ + off, n);
    return true;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

class FdSource final : public ByteSource {
 public:
  FdSource(int fd, std::uint64_t size) noexcept : fd_(fd), size_(size) {}
  std::uint64_t size() const noexcept override { return size_; }
  bool read_at(std::uint64_t off, std::uint8_t* dst, std::size_t n) const noexcept override {
    if (off > size_ || n > size_ - off) return false;
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      done += static_cast<std::size_t>(r);
    }
    return true;
  }

 private:
  int fd_;
  std::uint64_t size_;
};

}  // namespace mediacore
