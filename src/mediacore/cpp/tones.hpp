// Tone generation: DTMF digits (ITU-T Q.23) and call-progress tones (ITU-T
// E.180 and national plans), as sums of up to 4 sines with an on/off cadence.
//
// Synthesis is phase-continuous within a burst (a 64-bit phase accumulator per
// component: the frequency error is below 2^-63 of the rate, so a tone played
// for days is still within a sample step of the exact sine; a 1024-entry sine
// table with linear interpolation, error < 5e-6 of the amplitude). Every burst
// starts at phase 0.
// Cadences are exact to the sample across any frame boundaries: a step of
// on_ms/off_ms lasts exactly on_ms * rate / 1000 samples (rates 8000, 16000,
// 48000 make that an integer). Edges are not ramped.
//
// Levels are dBm0 per component with the G.711 reference of dtmf.hpp
// (kZeroDbm0Peak). The sum is saturated to int16.
//
// Call-progress tables (frequencies, cadence, level per component):
//   US  (Telcordia LSSGR "precise tone plan", as in ITU-T E.180 Supplement 2):
//       dial 350+440 continuous -13 dBm0; ringback 440+480 2 s on / 4 s off
//       -19 dBm0; busy 480+620 0.5/0.5 -24 dBm0; congestion (reorder) 480+620
//       0.25/0.25 -24 dBm0.
//   EU  (ETSI harmonized tones, ETSI ETR 187 / TR 101 041): 425 Hz; dial
//       continuous; ringback 1 s on / 4 s off; busy 0.5/0.5; congestion
//       0.25/0.25. Level -13 dBm0 (our choice within the ETSI range).
//   CN  (China, as listed in E.180 Supplement 2): 450 Hz; dial continuous;
//       ringback 1 s on / 4 s off; busy 0.35/0.35; congestion 0.7/0.7.
//       Level -13 dBm0 (our choice).
//
// TonePlayer::read() never allocates and never throws; one player per stream.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mediacore::tones {

inline constexpr std::size_t kMaxComponents = 4;
inline constexpr std::size_t kMaxSteps = 8;

struct Component {
  double frequency_hz;
  double level_dbm0;
};

// One on/off step of a cadence. off_ms may be 0.
struct CadenceStep {
  std::uint32_t on_ms;
  std::uint32_t off_ms;
};

struct ToneSpec {
  Component components[kMaxComponents];
  std::size_t component_count;
  CadenceStep steps[kMaxSteps];
  std::size_t step_count;  // 0: continuous (on until stopped)
  bool repeat;             // loop the cadence; false plays it once
};

enum class Region : std::uint8_t { kUS = 0, kEU = 1, kCN = 2 };
enum class ProgressTone : std::uint8_t { kDial = 0, kRingback = 1, kBusy = 2, kCongestion = 3 };

// The call-progress tone of a region (table above).
ToneSpec call_progress(Region region, ProgressTone tone) noexcept;

// A DTMF digit ('0'-'9', '*', '#', 'A'-'D'): the low-group tone at
// level_dbm0, the high-group tone at level_dbm0 + twist_db (positive twist =
// high group louder, "normal" twist). on_ms of tone, then off_ms of silence,
// once; on_ms = 0 means continuous. Optional relative frequency errors
// (e.g. 0.015 = +1.5 %) for receiver testing. Returns false for a bad digit.
bool dtmf_digit(char digit, double level_dbm0, double twist_db, std::uint32_t on_ms, std::uint32_t off_ms,
                ToneSpec* out, double low_deviation = 0.0, double high_deviation = 0.0) noexcept;

// Checks a spec against a sample rate: 1-4 components with 0 < f < rate/2 and
// level <= +3.17 dBm0, at most 8 steps, each step's on_ms > 0, and durations
// short enough to count in samples. Returns 0 or a negative code.
int validate(const ToneSpec& spec, int sample_rate) noexcept;

}  // namespace mediacore::tones

namespace mediacore {

class TonePlayer {
 public:
  explicit TonePlayer(int sample_rate);  // 8000, 16000, 48000; throws std::invalid_argument

  static constexpr std::size_t kQueueCapacity = 16;

  // Replace whatever is playing (and queued) by `spec`. Returns 0 or the
  // negative code of tones::validate().
  int play(const tones::ToneSpec& spec) noexcept;
  // Play `spec` after what is queued. Returns 0, a validate() code, or -100
  // when the queue is full.
  int enqueue(const tones::ToneSpec& spec) noexcept;
  // Write n samples: the tone, silence in its off steps, zeros once nothing is
  // left. Returns n.
  std::size_t read(std::int16_t* out, std::size_t n) noexcept;
  void stop() noexcept;

  // True when nothing is playing or queued (a repeating or continuous tone is
  // never done until stopped).
  bool done() const noexcept { return !playing_ && count_ == 0; }
  int sample_rate() const noexcept { return rate_; }
  // Samples written since construction.
  std::uint64_t position() const noexcept { return position_; }

 private:
  void start_next() noexcept;
  void begin_step() noexcept;
  void settle() noexcept;

  int rate_;
  tones::ToneSpec queue_[kQueueCapacity];
  std::size_t head_ = 0, count_ = 0;

  bool playing_ = false;
  std::size_t components_ = 0;
  std::uint64_t increment_[tones::kMaxComponents]{};
  std::uint64_t phase_[tones::kMaxComponents]{};
  float amplitude_[tones::kMaxComponents]{};
  std::uint64_t on_samples_[tones::kMaxSteps]{};
  std::uint64_t off_samples_[tones::kMaxSteps]{};
  std::size_t steps_ = 0;
  bool repeat_ = false;
  std::size_t step_ = 0;
  bool in_on_ = false;
  std::uint64_t left_ = 0;  // samples left in the current on or off part
  std::uint64_t position_ = 0;
};

}  // namespace mediacore
