// Call recorder: WAV (PCM16, A-law, mu-law) and Ogg Opus, crash-safe, split
// so that the media thread never touches the disk.
//
// File formats: see wav.hpp (RIFF/WAVE; RFC 2361 tags) and ogg.hpp (RFC 3533
// pages, RFC 7845 Opus mapping).
//
//   media thread                         writer thread
//   Recorder::write(left, right, n) ---> ByteRing ---> Recorder::drain(fd)
//   pause() / resume() / stop()          (bounded)     (appends, rewrites the
//                                                        WAV sizes, finalizes)
//
// - The *formatter* side (write, pause, resume, stop) turns PCM frames into
//   file bytes in memory: interleaved/G.711-encoded WAV samples, or whole Ogg
//   pages of Opus packets. It never blocks and never allocates: when the
//   bounded buffer lacks room, the frame (WAV) or page (Ogg) is dropped and
//   counted (stats().overruns, samples_dropped); the file stays valid.
// - The *sink* side (drain) runs on another thread: it appends the buffered
//   bytes with pwrite and, for WAV, rewrites the RIFF/data/fact sizes after
//   every drain that added data, so a killed process leaves a file whose
//   header is at most one drain behind (wav::repair_file fixes even that). Ogg
//   pages are flushed every `page_ms` of audio, so a killed writer loses at
//   most that much; ogg::repair_file cuts a partial trailing page.
// - The two sides share only a single-producer single-consumer ring (two
//   atomic counters) and a few atomic flags and counters.
//
// Channels: mono records left + right mixed (saturating); stereo records the
// caller on the left and the agent on the right (right == nullptr: silence).
//
// Pause (PCI DSS): no audio received while paused ever reaches the buffer or
// the encoder. PauseMode::SILENCE (the default) records digital silence in its
// place, so the file's timeline stays the call's; PauseMode::GAP records
// nothing, so the file is shorter than the call by the paused time.
//
// Ogg Opus: 20 ms frames through mediacore::OpusEncoder (opus_codec.hpp) at
// the recorder's rate, OpusHead pre-skip = the encoder's lookahead in 48 kHz
// samples; at stop() the last partial frame is padded with silence and the
// encoder flushed, and the EOS page's granule trims the padding (RFC 7845
// section 4.5), so the decoded length is exactly the samples recorded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ogg.hpp"
#include "wav.hpp"

namespace mediacore {

class OpusEncoder;

// Single-producer single-consumer byte ring. write() is all-or-nothing.
class ByteRing {
 public:
  explicit ByteRing(std::size_t capacity);
  std::size_t capacity() const noexcept { return buf_.size(); }
  // Producer side.
  std::size_t free_space() const noexcept;
  bool write(const std::uint8_t* data, std::size_t n) noexcept;
  // Consumer side: the readable bytes up to the end of the buffer, then consume.
  std::size_t readable() const noexcept;
  const std::uint8_t* peek(std::size_t* n) const noexcept;
  void consume(std::size_t n) noexcept;

 private:
  std::vector<std::uint8_t> buf_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // bytes ever written
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // bytes ever read
};

enum class RecordingFormat : std::uint8_t { WAV_PCM16 = 0, WAV_ULAW = 1, WAV_ALAW = 2, OGG_OPUS = 3 };
enum class PauseMode : std::uint8_t { SILENCE = 0, GAP = 1 };

struct RecorderConfig {
  RecordingFormat format = RecordingFormat::WAV_PCM16;
  int sample_rate = 8000;  // 8000, 16000 or 48000 (G.711: 8000 only)
  int channels = 1;        // 1 (both parties mixed) or 2 (caller left, agent right)
  PauseMode pause_mode = PauseMode::SILENCE;
  std::size_t buffer_bytes = 0;  // ring capacity; 0 = 4 s of audio (WAV) / 256 KiB (Ogg)
  // Ogg Opus only.
  int bitrate = 0;                 // b/s; 0 = 24000 mono / 32000 stereo
  int complexity = 5;              // 0..10
  int page_ms = 1000;              // audio per Ogg page (the crash-loss bound), 20..10000
  std::uint32_t serial = 0;        // Ogg stream serial; 0 = random
  std::vector<std::string> comments;  // OpusTags "KEY=value" (e.g. "CALL_ID=...")
};

struct RecorderStats {
  std::uint64_t samples_in = 0;        // per channel, given to write()
  std::uint64_t samples_recorded = 0;  // per channel, in the file (silence while paused included)
  std::uint64_t samples_paused = 0;    // per channel, received while paused
  std::uint64_t samples_dropped = 0;   // per channel, lost to overruns or the WAV size limit
  std::uint64_t overruns = 0;          // frames (WAV) or pages (Ogg) the buffer could not take
  std::uint64_t bytes_buffered = 0;    // file bytes put in the buffer
  std::uint64_t bytes_written = 0;     // file bytes written by drain()
  std::uint64_t pages = 0;             // Ogg pages made (headers included)
  std::uint64_t header_updates = 0;    // WAV size rewrites
  std::uint64_t write_errors = 0;      // failed drains
};

class Recorder {
 public:
  // Throws std::invalid_argument naming the bad setting.
  explicit Recorder(const RecorderConfig& config);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  const RecorderConfig& config() const noexcept { return cfg_; }

  // ---- media thread ----
  // Records `samples` (per channel) of caller (left) and agent (right) audio;
  // either may be nullptr (silence). Returns samples consumed, or -1 when
  // stopped. Never blocks, never allocates.
  long write(const std::int16_t* left, const std::int16_t* right, std::size_t samples) noexcept;
  void pause() noexcept { paused_ = true; }
  void resume() noexcept { paused_ = false; }
  bool paused() const noexcept { return paused_; }
  // Ends the recording: flushes the Opus encoder and queues the EOS page (Ogg).
  // 0 when everything is queued; 1 when the buffer was full: drain, then call
  // stop() again. Idempotent.
  int stop() noexcept;
  bool stopped() const noexcept { return stop_queued_.load(std::memory_order_acquire); }

  // ---- writer thread ----
  // Appends the buffered bytes to fd (at its own offset, from 0) and updates
  // the WAV header; after stop(), the last drain writes the final header (and
  // WAV pad byte). Returns bytes appended, or -errno (the bytes stay buffered).
  long drain(int fd, bool sync = false) noexcept;
  // stop() has queued everything and drain() has written it all.
  bool complete() const noexcept { return complete_.load(std::memory_order_acquire); }
  std::size_t buffered_bytes() const noexcept { return ring_.readable(); }

  // Any thread.
  RecorderStats stats() const noexcept;
  // The Ogg pre-skip (48 kHz samples), 0 for WAV.
  int pre_skip() const noexcept { return pre_skip_; }

 private:
  // Formatter helpers (media thread).
  void wav_chunk(const std::int16_t* left, const std::int16_t* right, std::size_t n) noexcept;
  void ogg_feed(const std::int16_t* left, const std::int16_t* right, std::size_t n) noexcept;
  void ogg_encode_frame(std::size_t real_samples) noexcept;
  bool ogg_flush_page(std::uint8_t flags, std::int64_t granule_override) noexcept;
  bool push(const std::uint8_t* data, std::size_t n) noexcept;
  // Sink helper (writer thread).
  bool write_wav_header(int fd, bool final_header) noexcept;

  RecorderConfig cfg_;
  bool is_wav_;
  wav::Format wav_fmt_{};
  std::size_t header_bytes_ = 0;
  std::uint64_t wav_data_limit_ = 0;
  ByteRing ring_;

  // Media-thread state.
  bool paused_ = false;
  bool stop_done_ = false;
  std::uint64_t wav_data_queued_ = 0;
  std::vector<std::uint8_t> scratch_;      // interleaved/encoded bytes of one chunk
  std::vector<std::int16_t> zeros_;        // silence source
  // Ogg state.
  std::unique_ptr<OpusEncoder> encoder_;
  std::unique_ptr<ogg::PageWriter> pages_;
  std::vector<std::int16_t> frame_;        // interleaved PCM of the frame being filled
  std::size_t frame_fill_ = 0;             // samples per channel in frame_
  std::size_t frame_samples_ = 0;          // 20 ms per channel
  int samples_48k_per_frame_ = 0;
  int pre_skip_ = 0;
  std::int64_t granule_ = 0;               // 48 kHz end of the last packet in the file/page
  std::int64_t page_real_48k_ = 0;         // recorded (unpadded) 48 kHz samples on the pending page
  std::int64_t file_real_48k_ = 0;         // recorded 48 kHz samples on flushed pages
  std::int64_t page_real_samples_ = 0;     // the same, at the recorder's rate
  std::int64_t page_samples_48k_ = 0;      // all 48 kHz samples on the pending page
  std::int64_t page_ms_samples_48k_ = 0;   // flush threshold
  std::vector<std::uint8_t> packet_;
  std::vector<std::uint8_t> page_buf_;

  // Shared.
  std::atomic<bool> stop_queued_{false};
  std::atomic<bool> complete_{false};
  std::atomic<std::uint64_t> samples_in_{0}, samples_recorded_{0}, samples_paused_{0}, samples_dropped_{0};
  std::atomic<std::uint64_t> overruns_{0}, bytes_buffered_{0}, bytes_written_{0}, pages_made_{0};
  std::atomic<std::uint64_t> header_updates_{0}, write_errors_{0};

  // Writer-thread state.
  std::uint64_t file_off_ = 0;
  std::uint64_t header_data_bytes_ = 0;  // data size the header on disk says
  bool header_written_ = false;
};

}  // namespace mediacore
