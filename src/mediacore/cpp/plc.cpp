#include "plc.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "time_stretch.hpp"

namespace mediacore {

namespace {
std::int16_t saturate(double v) noexcept {
  if (v > 32767.0) return 32767;
  if (v < -32768.0) return -32768;
  return static_cast<std::int16_t>(std::lrint(v));
}
}  // namespace

G711Plc::G711Plc(int sample_rate) : rate_(sample_rate) {
  if (sample_rate != 8000 && sample_rate != 16000 && sample_rate != 48000)
    throw std::invalid_argument("PLC sample_rate must be 8000, 16000 or 48000");
  const int k = sample_rate / 8000;
  min_pitch_ = 40 * k;   // 5 ms (200 Hz)
  max_pitch_ = 120 * k;  // 15 ms (66 Hz)
  window_ = 160 * k;     // 20 ms correlation window
  // 48.75 ms: three of the longest periods plus a quarter of one.
  history_.assign(static_cast<std::size_t>(390 * k), 0);
  pitch_ = max_pitch_;
  quarter_ = pitch_ / 4;
}

void G711Plc::reset() noexcept {
  std::fill(history_.begin(), history_.end(), std::int16_t{0});
  erased_ = 0;
  joined_ = false;
  pitch_ = max_pitch_;
  quarter_ = pitch_ / 4;
  blend_left_ = 0;
}

void G711Plc::start_erasure() noexcept {
  const int len = static_cast<int>(history_.size());
  const std::int16_t* h = history_.data();
  const std::int16_t* recent = h + len - window_;
  const stretch::Period p = stretch::find_period(recent, recent, -1, window_, min_pitch_, max_pitch_, 2 * (rate_ / 8000));
  pitch_ = p.lag > 0 ? p.lag : max_pitch_;
  quarter_ = std::max(1, pitch_ / 4);
  periods_ = 1;
  pos_ = 0;
  blend_left_ = 0;
  // The substitute starts at h[len - pitch]; the real signal ended at
  // h[len - 1]. Continue the real signal's own slope: the first output step
  // equals h[len - pitch] - h[len - pitch - 1], and the offset decays.
  junction_ = static_cast<double>(h[len - 1]) - h[len - pitch_ - 1];
}

// Sample `index` of the pitch buffer made of the last `periods` periods of
// history, with its tail blended into the samples before its start, so that
// wrapping from its end to its start is continuous.
double G711Plc::buffer_sample(int periods, int index) const noexcept {
  const int len = static_cast<int>(history_.size());
  const int size = periods * pitch_;
  const int base = len - size;
  const int tail = size - quarter_;
  if (index < tail) return history_[static_cast<std::size_t>(base + index)];
  const int j = index - tail;
  const double w = (j + 0.5) / quarter_;
  return history_[static_cast<std::size_t>(base + index)] * (1.0 - w) +
         history_[static_cast<std::size_t>(base - quarter_ + j)] * w;
}

double G711Plc::next_synthetic() noexcept {
  const std::size_t ten_ms = static_cast<std::size_t>(rate_ / 100);
  // More periods after 10 and 20 ms, blended over a quarter period.
  if ((erased_ == 2 * ten_ms || erased_ == 3 * ten_ms) && periods_ < 3) {
    old_periods_ = periods_;
    old_pos_ = pos_;
    ++periods_;
    pos_ = pos_ % pitch_;
    blend_left_ = quarter_;
  }
  double v = buffer_sample(periods_, pos_);
  if (++pos_ >= periods_ * pitch_) pos_ = 0;
  if (blend_left_ > 0) {
    const double w = static_cast<double>(quarter_ - blend_left_ + 1) / (quarter_ + 1);
    const double old = buffer_sample(old_periods_, old_pos_);
    if (++old_pos_ >= old_periods_ * pitch_) old_pos_ = 0;
    v = old * (1.0 - w) + v * w;
    --blend_left_;
  }
  if (erased_ < static_cast<std::size_t>(quarter_)) {
    v += junction_ * (1.0 - static_cast<double>(erased_) / quarter_);
  }
  // Attenuation: none for 10 ms, then 20% per 10 ms: silent from 60 ms.
  double gain = 1.0;
  if (erased_ >= ten_ms) gain = std::max(0.0, 1.0 - 0.2 * static_cast<double>(erased_ - ten_ms) / ten_ms);
  ++erased_;
  return v * gain;
}

void G711Plc::conceal(std::int16_t* out, std::size_t n) noexcept {
  if (!out) return;
  joined_ = false;
  if (erased_ == 0) start_erasure();
  for (std::size_t i = 0; i < n; ++i) out[i] = saturate(next_synthetic());
}

void G711Plc::conceal_before(const std::int16_t* next, std::size_t next_n, std::int16_t* out,
                             std::size_t n) noexcept {
  if (!out) return;
  conceal(out, n);
  // The next frame's period: compare its start with itself one lag later,
  // over at least 5 ms, for lags up to the longest pitch the frame allows.
  const int min_window = rate_ / 200;
  const int hi = std::min(max_pitch_, static_cast<int>(next_n) - min_window);
  if (!next || n == 0 || hi < min_pitch_) return;
  const int window = std::min(window_, static_cast<int>(next_n) - hi);
  const stretch::Period p = stretch::find_period(next, next, +1, window, min_pitch_, hi, 2 * (rate_ / 8000));
  const int period = p.lag > 0 ? p.lag : hi;
  // Backward extension: sample k of the gap is next[(k - n) mod period], so
  // the gap's last sample is the one a period before next[period], i.e. it
  // runs straight into next[0]. Fade from the forward substitute into it.
  const auto len = static_cast<long long>(n);
  for (long long k = 0; k < len; ++k) {
    const long long idx = ((k - len) % period + period) % period;
    const double w = static_cast<double>(k + 1) / static_cast<double>(len + 1);
    out[k] = saturate(out[k] * (1.0 - w) + next[idx] * w);
  }
  joined_ = true;
}

void G711Plc::good(const std::int16_t* in, std::int16_t* out, std::size_t n) noexcept {
  if (!in || !out) return;
  if (in != out) std::memmove(out, in, n * sizeof(std::int16_t));
  if (erased_ > 0 && joined_) {
    erased_ = 0;  // conceal_before() already ended on this audio
    joined_ = false;
  } else if (erased_ > 0) {
    // Overlap-add the continued substitute with the real signal: 4 ms, plus 4
    // ms per further 10 ms of erasure, at most 10 ms.
    const std::size_t ms = static_cast<std::size_t>(rate_ / 1000);
    const std::size_t extra = (erased_ > 10 * ms) ? (erased_ - 1) / (10 * ms) : 0;
    const std::size_t len = std::min({(4 + 4 * extra) * ms, 10 * ms, n});
    for (std::size_t i = 0; i < len; ++i) {
      const double w = (static_cast<double>(i) + 1.0) / static_cast<double>(len + 1);
      out[i] = saturate(next_synthetic() * (1.0 - w) + out[i] * w);
    }
    erased_ = 0;
  }
  // History: the last 48.75 ms of what was played.
  const std::size_t hist = history_.size();
  if (n >= hist) {
    std::memcpy(history_.data(), out + (n - hist), hist * sizeof(std::int16_t));
  } else {
    std::memmove(history_.data(), history_.data() + n, (hist - n) * sizeof(std::int16_t));
    std::memcpy(history_.data() + (hist - n), out, n * sizeof(std::int16_t));
  }
}

}  // namespace mediacore
