// Playout: the PCM side of the jitter buffer. Owns a JitterBuffer, an
// AudioDecoder and a PLC, and produces exactly one fixed-size PCM frame per
// clock tick:
//   - decoded audio when the packet is here (Normal);
//   - concealment when it is missing (Concealed): the decoder's own PLC when
//     it has one (Opus: decode_fec() from the next packet when that packet is
//     already here, else conceal()), otherwise G711Plc (G.711 Appendix I);
//   - silence before the first packet and between talkspurts (Empty).
// Decoded audio goes through a short "sync buffer" (as in WebRTC NetEQ), where
// the delay is moved toward the buffer's target: when the next frame's
// playout delay is above target + accelerate_above_ms, one pitch period (or,
// in silence, a chunk) is removed (Accelerate); when it is below
// target - decelerate_below_ms, one is inserted (PreemptiveExpand). Underruns
// conceal without losing the late packet (see jitter_buffer.hpp), which
// lengthens the delay; acceleration takes it back.
//
// Stats: the buffer's packet counters, with the sample counters (W3C
// webrtc-stats: concealedSamples, concealmentEvents,
// insertedSamplesForDeceleration, removedSamplesForAcceleration,
// jitterBufferEmittedCount...) counted in PCM samples at the decoder's rate.
//
// tick() and put() never allocate or throw; the constructor allocates all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "codec.hpp"
#include "jitter_buffer.hpp"
#include "plc.hpp"
#include "time_stretch.hpp"

namespace mediacore {

struct PlayoutConfig {
  JitterBufferConfig buffer;      // clock_rate and frame_samples in RTP clock units
  bool time_stretch = true;
  // Silence is cut or inserted at small margins (inaudible); voiced speech
  // is stretched only when the delay is far from target, because every pitch
  // period removed or repeated in speech costs quality. Measured (PESQ-NB on
  // espeak speech through 40 ms +/- 15 ms Gaussian jitter, median of 3 seeds):
  // 3.20 when speech was stretched at the 5 ms margin, 3.88 with these, and
  // the delay against the hindsight oracle unchanged on all four netsim
  // scenarios (bench/test_quality_jitter.py).
  double accelerate_above_ms = 5.0;  // margin above target + one frame before removing silence
  double decelerate_below_ms = 0.0;  // margin below target before inserting silence
  double accelerate_speech_above_ms = 60.0;  // ... before removing pitch periods of speech
  double decelerate_speech_below_ms = 25.0;  // ... before repeating pitch periods of speech
  bool use_fec = true;            // Opus in-band FEC when the next packet is here
};

// When each packet's first sample was played (for delay measurements).
struct PlayRecord {
  std::int64_t sequence = 0;
  double arrival_ms = 0;
  double played_ms = 0;
};

class Playout {
 public:
  Playout(std::unique_ptr<AudioDecoder> decoder, const PlayoutConfig& config);

  PutResult put(std::uint16_t seq, std::uint32_t timestamp, std::uint32_t ssrc, bool marker,
                const std::uint8_t* payload, std::size_t size, double arrival_ms) noexcept {
    return buffer_.put(seq, timestamp, ssrc, marker, payload, size, arrival_ms);
  }
  // Writes frame_samples() samples to out and returns that count (-1 if
  // capacity < frame_samples()). *kind (if given) and last_kind() tell what
  // the frame is: Concealed if any sample was concealed, else Normal if any
  // was decoded, else Empty.
  int tick(double now_ms, std::int16_t* out, std::size_t capacity, FrameKind* kind = nullptr) noexcept;
  FrameKind last_kind() const noexcept { return last_kind_; }

  int frame_samples() const noexcept { return pcm_frame_; }
  int sample_rate() const noexcept { return pcm_rate_; }
  JitterStats stats() const noexcept;
  const JitterBuffer& buffer() const noexcept { return buffer_; }
  const AudioDecoder& decoder() const noexcept { return *decoder_; }
  std::uint64_t fec_recovered_samples() const noexcept { return fec_samples_; }
  std::uint64_t decode_errors() const noexcept { return decode_errors_; }

  // Optional: record when each packet's first sample is played. The vector
  // must have capacity reserved; records beyond its capacity are dropped.
  void set_play_log(std::vector<PlayRecord>* log) noexcept { play_log_ = log; }

 private:
  void pull(double now_ms) noexcept;
  void stretch(double now_ms) noexcept;
  bool remove_samples(const stretch::Options& o) noexcept;
  bool insert_samples(const stretch::Options& o) noexcept;
  double next_pull_delay_ms(double now_ms) const noexcept;
  bool all_normal() const noexcept;
  void shift_pending(int from, int delta) noexcept;

  PlayoutConfig config_;
  std::unique_ptr<AudioDecoder> decoder_;
  JitterBuffer buffer_;
  G711Plc plc_;
  bool native_plc_;
  int pcm_rate_;
  int pcm_frame_;
  double ms_per_pcm_;
  std::vector<std::int16_t> sync_;
  std::vector<std::uint8_t> kinds_;
  std::vector<std::int16_t> scratch_;
  int len_ = 0;
  FrameKind last_sample_kind_ = FrameKind::Empty;
  FrameKind last_kind_ = FrameKind::Empty;

  // Packets whose first sample is still in the sync buffer.
  struct Pending {
    std::int64_t sequence;
    double arrival_ms;
    int position;
  };
  static constexpr int kMaxPending = 32;
  Pending pending_[kMaxPending];
  int pending_count_ = 0;
  std::vector<PlayRecord>* play_log_ = nullptr;

  // PCM-level counters.
  std::uint64_t concealed_ = 0, silent_concealed_ = 0, events_ = 0, inserted_ = 0, removed_ = 0;
  std::uint64_t output_samples_ = 0, fec_samples_ = 0, decode_errors_ = 0;
};

}  // namespace mediacore
