#include "tones.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "dtmf.hpp"

namespace mediacore::tones {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kTableBits = 10;
constexpr std::size_t kTableSize = std::size_t{1} << kTableBits;
// Longest step we count: a day at 48 kHz fits easily in 64 bits; cap it anyway
// so that a typo cannot ask for a year of tone.
constexpr std::uint32_t kMaxStepMs = 24u * 3600u * 1000u;

struct SineTable {
  float value[kTableSize + 1];
  SineTable() {
    for (std::size_t i = 0; i <= kTableSize; ++i) {
      value[i] = static_cast<float>(std::sin(2.0 * kPi * static_cast<double>(i) / kTableSize));
    }
  }
};

const SineTable& sine_table() {
  static const SineTable table;
  return table;
}

ToneSpec make(std::initializer_list<double> frequencies, double level, std::initializer_list<CadenceStep> steps) {
  ToneSpec spec{};
  for (double f : frequencies) spec.components[spec.component_count++] = Component{f, level};
  for (const CadenceStep& s : steps) spec.steps[spec.step_count++] = s;
  spec.repeat = spec.step_count > 0;
  return spec;
}

}  // namespace

ToneSpec call_progress(Region region, ProgressTone tone) noexcept {
  switch (region) {
    case Region::kUS:
      switch (tone) {
        case ProgressTone::kDial: return make({350.0, 440.0}, -13.0, {});
        case ProgressTone::kRingback: return make({440.0, 480.0}, -19.0, {{2000, 4000}});
        case ProgressTone::kBusy: return make({480.0, 620.0}, -24.0, {{500, 500}});
        case ProgressTone::kCongestion: return make({480.0, 620.0}, -24.0, {{250, 250}});
      }
      break;
    case Region::kEU:
      switch (tone) {
        case ProgressTone::kDial: return make({425.0}, -13.0, {});
        case ProgressTone::kRingback: return make({425.0}, -13.0, {{1000, 4000}});
        case ProgressTone::kBusy: return make({425.0}, -13.0, {{500, 500}});
        case ProgressTone::kCongestion: return make({425.0}, -13.0, {{250, 250}});
      }
      break;
    case Region::kCN:
      switch (tone) {
        case ProgressTone::kDial: return make({450.0}, -13.0, {});
        case ProgressTone::kRingback: return make({450.0}, -13.0, {{1000, 4000}});
        case ProgressTone::kBusy: return make({450.0}, -13.0, {{350, 350}});
        case ProgressTone::kCongestion: return make({450.0}, -13.0, {{700, 700}});
      }
      break;
  }
  return ToneSpec{};
}

bool dtmf_digit(char digit, double level_dbm0, double twist_db, std::uint32_t on_ms, std::uint32_t off_ms,
                ToneSpec* out, double low_deviation, double high_deviation) noexcept {
  int row = 0, column = 0;
  if (out == nullptr || !dtmf::keypad_position(dtmf::event_from_digit(digit), &row, &column)) return false;
  ToneSpec spec{};
  spec.components[0] = Component{dtmf::kLowFrequencies[static_cast<std::size_t>(row)] * (1.0 + low_deviation),
                                 level_dbm0};
  spec.components[1] = Component{dtmf::kHighFrequencies[static_cast<std::size_t>(column)] * (1.0 + high_deviation),
                                 level_dbm0 + twist_db};
  spec.component_count = 2;
  if (on_ms > 0) {
    spec.steps[0] = CadenceStep{on_ms, off_ms};
    spec.step_count = 1;
  }
  spec.repeat = false;
  *out = spec;
  return true;
}

int validate(const ToneSpec& spec, int sample_rate) noexcept {
  if (spec.component_count < 1 || spec.component_count > kMaxComponents) return -1;
  for (std::size_t i = 0; i < spec.component_count; ++i) {
    const Component& c = spec.components[i];
    if (!(c.frequency_hz > 0.0 && c.frequency_hz < sample_rate / 2.0)) return -2;
    if (!(c.level_dbm0 <= 3.17 && c.level_dbm0 >= -120.0)) return -3;
  }
  if (spec.step_count > kMaxSteps) return -4;
  for (std::size_t i = 0; i < spec.step_count; ++i) {
    if (spec.steps[i].on_ms == 0) return -5;
    if (spec.steps[i].on_ms > kMaxStepMs || spec.steps[i].off_ms > kMaxStepMs) return -6;
  }
  return 0;
}

}  // namespace mediacore::tones

namespace mediacore {

TonePlayer::TonePlayer(int sample_rate) : rate_(sample_rate) {
  if (sample_rate != 8000 && sample_rate != 16000 && sample_rate != 48000) {
    throw std::invalid_argument("sample_rate must be 8000, 16000 or 48000, got " + std::to_string(sample_rate));
  }
  (void)tones::sine_table();  // build it now, not on the first read()
}

int TonePlayer::play(const tones::ToneSpec& spec) noexcept {
  const int rc = tones::validate(spec, rate_);
  if (rc != 0) return rc;
  stop();
  queue_[0] = spec;
  head_ = 0;
  count_ = 1;
  return 0;
}

int TonePlayer::enqueue(const tones::ToneSpec& spec) noexcept {
  const int rc = tones::validate(spec, rate_);
  if (rc != 0) return rc;
  if (count_ == kQueueCapacity) return -100;
  queue_[(head_ + count_) % kQueueCapacity] = spec;
  ++count_;
  return 0;
}

void TonePlayer::stop() noexcept {
  playing_ = false;
  count_ = 0;
}

void TonePlayer::start_next() noexcept {
  const tones::ToneSpec& spec = queue_[head_];
  head_ = (head_ + 1) % kQueueCapacity;
  --count_;
  components_ = spec.component_count;
  for (std::size_t c = 0; c < components_; ++c) {
    const double f = spec.components[c].frequency_hz;
    // f / rate < 1/2, so the increment fits the signed range llround returns.
    increment_[c] = static_cast<std::uint64_t>(std::llround(f / rate_ * 18446744073709551616.0));
    amplitude_[c] =
        static_cast<float>(dtmf::kZeroDbm0Peak * std::pow(10.0, spec.components[c].level_dbm0 / 20.0));
  }
  steps_ = spec.step_count;
  for (std::size_t s = 0; s < steps_; ++s) {
    on_samples_[s] = std::uint64_t{spec.steps[s].on_ms} * static_cast<std::uint64_t>(rate_) / 1000u;
    off_samples_[s] = std::uint64_t{spec.steps[s].off_ms} * static_cast<std::uint64_t>(rate_) / 1000u;
  }
  repeat_ = spec.repeat;
  step_ = 0;
  playing_ = true;
  begin_step();
}

void TonePlayer::begin_step() noexcept {
  in_on_ = true;
  left_ = steps_ > 0 ? on_samples_[step_] : 0;
  for (std::size_t c = 0; c < components_; ++c) phase_[c] = 0;
}

std::size_t TonePlayer::read(std::int16_t* out, std::size_t n) noexcept {
  if (out == nullptr) return 0;
  const float* table = tones::sine_table().value;
  constexpr int kShift = 64 - tones::kTableBits;  // table index: the top bits of the phase
  constexpr float kFracScale = 1.0f / 4294967296.0f;  // the next 32 bits: position between entries

  std::size_t i = 0;
  while (i < n) {
    if (!playing_) {
      if (count_ == 0) {
        std::fill(out + i, out + n, std::int16_t{0});
        break;
      }
      start_next();
    }
    std::size_t take = n - i;
    if (steps_ > 0) {
      take = static_cast<std::size_t>(std::min<std::uint64_t>(left_, take));
      left_ -= take;
    }
    if (steps_ > 0 && !in_on_) {
      std::fill(out + i, out + i + take, std::int16_t{0});
    } else {
      for (std::size_t j = 0; j < take; ++j) {
        float acc = 0.0f;
        for (std::size_t c = 0; c < components_; ++c) {
          const std::uint64_t p = phase_[c];
          const auto index = static_cast<std::size_t>(p >> kShift);
          const float frac = static_cast<float>(static_cast<std::uint32_t>(p >> (kShift - 32))) * kFracScale;
          const float a = table[index];
          acc += amplitude_[c] * (a + frac * (table[index + 1] - a));
          phase_[c] = p + increment_[c];
        }
        const long v = std::lrint(acc);
        out[i + j] = static_cast<std::int16_t>(std::clamp<long>(v, -32768, 32767));
      }
    }
    i += take;
    settle();
  }
  position_ += n;
  return n;
}

// Move past parts that are over (on -> off -> next step -> loop or end), so
// that done() is true as soon as the last sample of the last tone is out.
void TonePlayer::settle() noexcept {
  while (playing_ && steps_ > 0 && left_ == 0) {
    if (in_on_ && off_samples_[step_] > 0) {
      in_on_ = false;
      left_ = off_samples_[step_];
    } else if (++step_ < steps_) {
      begin_step();
    } else if (repeat_) {
      step_ = 0;
      begin_step();
    } else {
      playing_ = false;
    }
  }
}

}  // namespace mediacore
