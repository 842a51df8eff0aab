#include "recorder.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string_view>

#include "g711.hpp"
#include "opus_codec.hpp"

namespace mediacore {

// ------------------------------------------------------------------ ByteRing

ByteRing::ByteRing(std::size_t capacity) : buf_(capacity) {
  if (capacity == 0) throw std::invalid_argument("ring capacity must be positive");
}

std::size_t ByteRing::free_space() const noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  const std::uint64_t tail = tail_.load(std::memory_order_acquire);
  return buf_.size() - static_cast<std::size_t>(head - tail);
}

bool ByteRing::write(const std::uint8_t* data, std::size_t n) noexcept {
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  const std::uint64_t tail = tail_.load(std::memory_order_acquire);
  const std::size_t cap = buf_.size();
  if (n > cap - static_cast<std::size_t>(head - tail)) return false;
  const std::size_t at = static_cast<std::size_t>(head % cap);
  const std::size_t first = std::min(n, cap - at);
  if (first != 0) std::memcpy(buf_.data() + at, data, first);
  if (n != first) std::memcpy(buf_.data(), data + first, n - first);
  head_.store(head + n, std::memory_order_release);
  return true;
}

std::size_t ByteRing::readable() const noexcept {
  return static_cast<std::size_t>(head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_relaxed));
}

const std::uint8_t* ByteRing::peek(std::size_t* n) const noexcept {
  const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
  const std::uint64_t head = head_.load(std::memory_order_acquire);
  const std::size_t cap = buf_.size();
  const std::size_t at = static_cast<std::size_t>(tail % cap);
  *n = std::min(static_cast<std::size_t>(head - tail), cap - at);
  return buf_.data() + at;
}

void ByteRing::consume(std::size_t n) noexcept {
  tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

// ------------------------------------------------------------------ Recorder

namespace {

constexpr std::size_t kChunk = 960;  // samples per channel handled at a time (20 ms at 48 kHz)
constexpr std::size_t kMinOggBuffer = 2 * ogg::kMaxPage;
constexpr std::string_view kVendor = "Hotline mediacore";

inline std::int16_t sat_add(std::int16_t a, std::int16_t b) noexcept {
  return static_cast<std::int16_t>(std::clamp<std::int32_t>(std::int32_t{a} + b, -32768, 32767));
}

// Mono mix or stereo interleave of n samples per channel (nullptr = silence).
void interleave(const std::int16_t* left, const std::int16_t* right, std::size_t n, int channels,
                std::int16_t* out) noexcept {
  if (channels == 1) {
    if (left && right) {
      for (std::size_t i = 0; i < n; ++i) out[i] = sat_add(left[i], right[i]);
    } else if (left || right) {
      std::memcpy(out, left ? left : right, n * sizeof(std::int16_t));
    } else {
      std::fill(out, out + n, std::int16_t{0});
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = left ? left[i] : std::int16_t{0};
    out[2 * i + 1] = right ? right[i] : std::int16_t{0};
  }
}

wav::Codec wav_codec(RecordingFormat f) noexcept {
  switch (f) {
    case RecordingFormat::WAV_ULAW: return wav::Codec::ULAW;
    case RecordingFormat::WAV_ALAW: return wav::Codec::ALAW;
    default: return wav::Codec::PCM16;
  }
}

void validate(const RecorderConfig& c) {
  const auto f = c.format;
  if (f != RecordingFormat::WAV_PCM16 && f != RecordingFormat::WAV_ULAW && f != RecordingFormat::WAV_ALAW &&
      f != RecordingFormat::OGG_OPUS)
    throw std::invalid_argument("recorder format is not one of WAV_PCM16, WAV_ULAW, WAV_ALAW, OGG_OPUS");
  if (c.sample_rate != 8000 && c.sample_rate != 16000 && c.sample_rate != 48000)
    throw std::invalid_argument("recorder sample_rate must be 8000, 16000 or 48000");
  if ((f == RecordingFormat::WAV_ULAW || f == RecordingFormat::WAV_ALAW) && c.sample_rate != 8000)
    throw std::invalid_argument("recorder sample_rate must be 8000 for G.711 (ulaw/alaw)");
  if (c.channels != 1 && c.channels != 2) throw std::invalid_argument("recorder channels must be 1 or 2");
  if (c.pause_mode != PauseMode::SILENCE && c.pause_mode != PauseMode::GAP)
    throw std::invalid_argument("recorder pause_mode must be SILENCE or GAP");
  if (f == RecordingFormat::OGG_OPUS) {
    if (c.page_ms < 20 || c.page_ms > 10000) throw std::invalid_argument("recorder page_ms must be 20..10000");
    if (c.bitrate != 0 && (c.bitrate < 6000 || c.bitrate > 510000))
      throw std::invalid_argument("recorder bitrate must be 0 or 6000..510000");
    if (c.complexity < 0 || c.complexity > 10) throw std::invalid_argument("recorder complexity must be 0..10");
    if (c.buffer_bytes != 0 && c.buffer_bytes < kMinOggBuffer)
      throw std::invalid_argument("recorder buffer_bytes must be 0 or at least 130816 for Ogg (two pages)");
  }
}

std::size_t ring_size(const RecorderConfig& c) {
  if (c.format == RecordingFormat::OGG_OPUS) return c.buffer_bytes ? c.buffer_bytes : 256 * 1024;
  const wav::Format f{wav_codec(c.format), c.channels, c.sample_rate};
  const std::size_t min = wav::header_size(f) + kChunk * static_cast<std::size_t>(f.block_align());
  if (c.buffer_bytes != 0) {
    if (c.buffer_bytes < min) throw std::invalid_argument("recorder buffer_bytes too small for one chunk of audio");
    return c.buffer_bytes;
  }
  return std::max<std::size_t>(64 * 1024, 4 * static_cast<std::size_t>(c.sample_rate * f.block_align()));
}

}  // namespace

Recorder::Recorder(const RecorderConfig& config)
    : cfg_((validate(config), config)),
      is_wav_(config.format != RecordingFormat::OGG_OPUS),
      ring_(ring_size(config)) {
  zeros_.assign(kChunk, 0);
  if (is_wav_) {
    wav_fmt_ = wav::Format{wav_codec(cfg_.format), cfg_.channels, cfg_.sample_rate};
    header_bytes_ = wav::header_size(wav_fmt_);
    wav_data_limit_ = wav::max_data_bytes(wav_fmt_);
    scratch_.assign(kChunk * 2 * sizeof(std::int16_t), 0);
    frame_.assign(kChunk * 2, 0);
    std::uint8_t header[64];
    const std::size_t n = wav::write_header(wav_fmt_, 0, header, sizeof header, false);
    push(header, n);
    return;
  }

  opus::EncoderSettings s;
  s.sample_rate = cfg_.sample_rate;
  s.channels = cfg_.channels;
  s.application = opus::Application::Voip;
  s.bitrate = cfg_.bitrate ? cfg_.bitrate : (cfg_.channels == 2 ? 32000 : 24000);
  s.complexity = cfg_.complexity;
  s.frame_ms = 20;
  encoder_ = std::make_unique<OpusEncoder>(s);
  frame_samples_ = static_cast<std::size_t>(cfg_.sample_rate / 50);
  samples_48k_per_frame_ = 960;
  pre_skip_ = encoder_->lookahead() * (48000 / cfg_.sample_rate);
  page_ms_samples_48k_ = static_cast<std::int64_t>(cfg_.page_ms) * 48;
  frame_.assign(frame_samples_ * static_cast<std::size_t>(cfg_.channels), 0);
  packet_.assign(opus::kMaxPacketBytes, 0);
  page_buf_.assign(ogg::kMaxPage, 0);

  std::uint32_t serial = cfg_.serial;
  if (serial == 0) {
    std::random_device rd;
    while (serial == 0) serial = rd();
  }
  pages_ = std::make_unique<ogg::PageWriter>(serial);

  // RFC 7845 section 3: OpusHead alone on the first page (BOS), OpusTags on
  // the next page(s), both with granule position 0.
  std::uint8_t head[19];
  const std::size_t head_len = ogg::opus_head(head, sizeof head, cfg_.channels,
                                              static_cast<std::uint16_t>(pre_skip_),
                                              static_cast<std::uint32_t>(cfg_.sample_rate));
  pages_->add_packet(head, head_len, 0);
  ogg_flush_page(ogg::kBos, 0);
  std::vector<std::string_view> comments(cfg_.comments.begin(), cfg_.comments.end());
  const std::vector<std::uint8_t> tags = ogg::opus_tags(kVendor, comments);
  pages_->add_packet(tags.data(), tags.size(), 0);
  ogg_flush_page(0, 0);
}

Recorder::~Recorder() = default;

bool Recorder::push(const std::uint8_t* data, std::size_t n) noexcept {
  if (!ring_.write(data, n)) return false;
  bytes_buffered_.fetch_add(n, std::memory_order_relaxed);
  return true;
}

long Recorder::write(const std::int16_t* left, const std::int16_t* right, std::size_t samples) noexcept {
  if (stop_done_) return -1;
  if (samples == 0) return 0;
  samples_in_.fetch_add(samples, std::memory_order_relaxed);
  if (paused_) {
    samples_paused_.fetch_add(samples, std::memory_order_relaxed);
    if (cfg_.pause_mode == PauseMode::GAP) return static_cast<long>(samples);
    // Silence: the paused audio itself is never read.
    left = right = nullptr;
  }
  for (std::size_t off = 0; off < samples; off += kChunk) {
    const std::size_t n = std::min(kChunk, samples - off);
    const std::int16_t* l = left ? left + off : nullptr;
    const std::int16_t* r = right ? right + off : nullptr;
    if (is_wav_) {
      wav_chunk(l, r, n);
    } else {
      ogg_feed(l, r, n);
    }
  }
  return static_cast<long>(samples);
}

void Recorder::wav_chunk(const std::int16_t* left, const std::int16_t* right, std::size_t n) noexcept {
  const std::size_t values = n * static_cast<std::size_t>(cfg_.channels);
  const std::size_t bytes = n * static_cast<std::size_t>(wav_fmt_.block_align());
  if (wav_data_queued_ + bytes > wav_data_limit_) {
    samples_dropped_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  interleave(left, right, n, cfg_.channels, frame_.data());
  std::uint8_t* out = scratch_.data();
  switch (wav_fmt_.codec) {
    case wav::Codec::PCM16:
      for (std::size_t i = 0; i < values; ++i) {
        const auto v = static_cast<std::uint16_t>(frame_[i]);
        out[2 * i] = static_cast<std::uint8_t>(v);
        out[2 * i + 1] = static_cast<std::uint8_t>(v >> 8);
      }
      break;
    case wav::Codec::ULAW: g711::ulaw_encode(frame_.data(), values, out); break;
    case wav::Codec::ALAW: g711::alaw_encode(frame_.data(), values, out); break;
  }
  if (push(out, bytes)) {
    wav_data_queued_ += bytes;
    samples_recorded_.fetch_add(n, std::memory_order_relaxed);
  } else {
    overruns_.fetch_add(1, std::memory_order_relaxed);
    samples_dropped_.fetch_add(n, std::memory_order_relaxed);
  }
}

void Recorder::ogg_feed(const std::int16_t* left, const std::int16_t* right, std::size_t n) noexcept {
  const auto ch = static_cast<std::size_t>(cfg_.channels);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t take = std::min(n - done, frame_samples_ - frame_fill_);
    interleave(left ? left + done : nullptr, right ? right + done : nullptr, take, cfg_.channels,
               frame_.data() + frame_fill_ * ch);
    frame_fill_ += take;
    done += take;
    if (frame_fill_ == frame_samples_) {
      ogg_encode_frame(frame_samples_);
      frame_fill_ = 0;
    }
  }
}

void Recorder::ogg_encode_frame(std::size_t real_samples) noexcept {
  const int len = encoder_->encode(frame_.data(), frame_samples_, packet_.data(), packet_.size());
  if (len <= 0) {
    samples_dropped_.fetch_add(real_samples, std::memory_order_relaxed);
    return;
  }
  const auto size = static_cast<std::size_t>(len);
  if (!pages_->fits(size)) ogg_flush_page(0, -1);
  granule_ += samples_48k_per_frame_;
  pages_->add_packet(packet_.data(), size, granule_);
  page_samples_48k_ += samples_48k_per_frame_;
  page_real_samples_ += static_cast<std::int64_t>(real_samples);
  page_real_48k_ += static_cast<std::int64_t>(real_samples) * (48000 / cfg_.sample_rate);
  if (!stop_done_ && page_samples_48k_ >= page_ms_samples_48k_) ogg_flush_page(0, -1);
}

bool Recorder::ogg_flush_page(std::uint8_t flags, std::int64_t granule_override) noexcept {
  if (pages_->pending_packets() == 0) return true;
  if (ring_.free_space() < pages_->page_size()) {
    // No room: drop this page's audio. The stream stays valid: no sequence
    // number is used and the granule goes back to the last page written.
    overruns_.fetch_add(1, std::memory_order_relaxed);
    samples_dropped_.fetch_add(static_cast<std::uint64_t>(page_real_samples_), std::memory_order_relaxed);
    granule_ -= page_samples_48k_;
    pages_->discard();
    page_samples_48k_ = page_real_48k_ = page_real_samples_ = 0;
    return false;
  }
  const std::size_t n = pages_->flush(page_buf_.data(), page_buf_.size(), flags, false, granule_override);
  push(page_buf_.data(), n);
  pages_made_.fetch_add(1, std::memory_order_relaxed);
  samples_recorded_.fetch_add(static_cast<std::uint64_t>(page_real_samples_), std::memory_order_relaxed);
  file_real_48k_ += page_real_48k_;
  page_samples_48k_ = page_real_48k_ = page_real_samples_ = 0;
  return true;
}

int Recorder::stop() noexcept {
  if (stop_queued_.load(std::memory_order_relaxed)) return 0;
  if (is_wav_) {
    stop_done_ = true;
    stop_queued_.store(true, std::memory_order_release);
    return 0;
  }
  if (!stop_done_) {
    // Pages so far end on whole frames of real audio; the tail (the partial
    // frame padded with silence, then frames that flush the encoder's
    // look-ahead) goes on the final page, whose granule trims the padding.
    ogg_flush_page(0, -1);
    stop_done_ = true;
    if (frame_fill_ > 0) {
      const auto ch = static_cast<std::size_t>(cfg_.channels);
      std::fill(frame_.begin() + static_cast<std::ptrdiff_t>(frame_fill_ * ch), frame_.end(), std::int16_t{0});
      ogg_encode_frame(frame_fill_);
      frame_fill_ = 0;
    }
    std::fill(frame_.begin(), frame_.end(), std::int16_t{0});
    const std::int64_t want = pre_skip_ + file_real_48k_ + page_real_48k_;
    for (int guard = 0; guard < 16 && granule_ < want; ++guard) ogg_encode_frame(0);
  }
  if (ring_.free_space() < pages_->page_size()) return 1;
  const std::int64_t final_granule = pre_skip_ + file_real_48k_ + page_real_48k_;
  if (pages_->pending_packets() == 0) {
    // Nothing left to carry the EOS flag (every tail frame failed to encode):
    // an empty EOS page ends the stream.
    const std::size_t n = pages_->flush(page_buf_.data(), page_buf_.size(), ogg::kEos, true,
                                        std::min(final_granule, granule_));
    push(page_buf_.data(), n);
    pages_made_.fetch_add(1, std::memory_order_relaxed);
  } else {
    ogg_flush_page(ogg::kEos, std::min(final_granule, granule_));
  }
  stop_queued_.store(true, std::memory_order_release);
  return 0;
}

bool Recorder::write_wav_header(int fd, bool final_header) noexcept {
  std::uint8_t header[64];
  const std::uint64_t data = file_off_ - header_bytes_;
  const std::size_t n = wav::write_header(wav_fmt_, data, header, sizeof header, final_header);
  const ssize_t w = ::pwrite(fd, header, n, 0);
  if (w != static_cast<ssize_t>(n)) return false;
  header_data_bytes_ = data;
  header_updates_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

long Recorder::drain(int fd, bool sync) noexcept {
  if (complete_.load(std::memory_order_relaxed)) return 0;
  // Read before draining: if the formatter had stopped, its last bytes are
  // already in the ring and this drain writes them all.
  const bool stopped = stop_queued_.load(std::memory_order_acquire);
  long total = 0;
  for (;;) {
    std::size_t n = 0;
    const std::uint8_t* p = ring_.peek(&n);
    if (n == 0) break;
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(file_off_));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      return -err;
    }
    ring_.consume(static_cast<std::size_t>(w));
    file_off_ += static_cast<std::uint64_t>(w);
    total += static_cast<long>(w);
    bytes_written_.fetch_add(static_cast<std::uint64_t>(w), std::memory_order_relaxed);
  }
  const bool finishing = stopped && ring_.readable() == 0;
  if (is_wav_ && file_off_ >= header_bytes_) {
    if (finishing && ((file_off_ - header_bytes_) & 1)) {
      const std::uint8_t pad = 0;
      if (::pwrite(fd, &pad, 1, static_cast<off_t>(file_off_)) != 1) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        return -errno;
      }
    }
    if (finishing || file_off_ - header_bytes_ != header_data_bytes_ || !header_written_) {
      if (!write_wav_header(fd, finishing)) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        return -errno;
      }
      header_written_ = true;
    }
  }
  if ((sync || finishing) && (total > 0 || finishing)) {
    if (::fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      return -errno;
    }
  }
  if (finishing) complete_.store(true, std::memory_order_release);
  return total;
}

RecorderStats Recorder::stats() const noexcept {
  RecorderStats s;
  s.samples_in = samples_in_.load(std::memory_order_relaxed);
  s.samples_recorded = samples_recorded_.load(std::memory_order_relaxed);
  s.samples_paused = samples_paused_.load(std::memory_order_relaxed);
  s.samples_dropped = samples_dropped_.load(std::memory_order_relaxed);
  s.overruns = overruns_.load(std::memory_order_relaxed);
  s.bytes_buffered = bytes_buffered_.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  s.pages = pages_made_.load(std::memory_order_relaxed);
  s.header_updates = header_updates_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mediacore
