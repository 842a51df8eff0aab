#include "dtmf.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mediacore::dtmf {

int event_from_digit(char digit) noexcept {
  if (digit >= '0' && digit <= '9') return digit - '0';
  switch (digit) {
    case '*': return 10;
    case '#': return 11;
    case 'A': case 'a': return 12;
    case 'B': case 'b': return 13;
    case 'C': case 'c': return 14;
    case 'D': case 'd': return 15;
    case '!': return kEventFlash;
    default: return -1;
  }
}

char digit_from_event(int event) noexcept {
  static constexpr char kDigits[] = "0123456789*#ABCD!";
  if (event < 0 || event > kEventFlash) return '\0';
  return kDigits[event];
}

bool keypad_position(int event, int* row, int* column) noexcept {
  const char digit = digit_from_event(event);
  if (digit == '\0' || event == kEventFlash) return false;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      if (kKeypad[r][c] == digit) {
        *row = r;
        *column = c;
        return true;
      }
    }
  }
  return false;
}

}  // namespace mediacore::dtmf

namespace mediacore {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRelativePeakDb = 8.0;  // other frequencies of a group must be this far below
constexpr double kMinFillRatio = 0.5;    // weaker half of a window vs the stronger, in energy
// Hysteresis for windows that continue the digit in progress.
constexpr double kRelaxLevelDb = 3.0;
constexpr double kRelaxTwistDb = 2.0;
constexpr double kRelaxToneRatio = 0.5 / 0.6;
constexpr double kRelaxedDeviation = 0.03;
// A window masks the active digit when both of its tones are within 6 dB of
// their power in the digit's last valid window.
constexpr double kMaskedRatio = 4.0;

double db_to_power(double db) { return std::pow(10.0, db / 10.0); }

double frequency_of(int index) {
  return index < 4 ? dtmf::kLowFrequencies[static_cast<std::size_t>(index)]
                   : dtmf::kHighFrequencies[static_cast<std::size_t>(index - 4)];
}

}  // namespace

DtmfDetector::DtmfDetector(const DtmfDetectorConfig& config) : config_(config) {
  const int rate = config.sample_rate;
  if (rate != 8000 && rate != 16000 && rate != 48000) {
    throw std::invalid_argument("sample_rate must be 8000, 16000 or 48000, got " + std::to_string(rate));
  }
  if (!(config.min_level_dbm0 >= -60.0 && config.min_level_dbm0 <= 0.0)) {
    throw std::invalid_argument("min_level_dbm0 must be within -60 ... 0 dBm0");
  }
  if (!(config.max_normal_twist_db >= 0.0 && config.max_normal_twist_db <= 20.0) ||
      !(config.max_reverse_twist_db >= 0.0 && config.max_reverse_twist_db <= 20.0)) {
    throw std::invalid_argument("twist limits must be within 0 ... 20 dB");
  }
  if (!(config.max_frequency_deviation > 0.0 && config.max_frequency_deviation <= 0.05)) {
    throw std::invalid_argument("max_frequency_deviation must be within (0, 0.05]");
  }
  if (!(config.min_tone_energy_ratio > 0.0 && config.min_tone_energy_ratio <= 1.0)) {
    throw std::invalid_argument("min_tone_energy_ratio must be within (0, 1]");
  }
  if (!(config.min_harmonic_rejection_db >= 0.0 && config.min_harmonic_rejection_db <= 60.0)) {
    throw std::invalid_argument("min_harmonic_rejection_db must be within 0 ... 60 dB");
  }

  block_ = static_cast<std::size_t>(51 * (rate / 8000));
  hann_len_ = 4 * block_ / 3;
  hann_hop_ = 2 * block_ - hann_len_;

  const double m = static_cast<double>(block_);
  for (int k = 0; k < 8; ++k) {
    const double w = 2.0 * kPi * frequency_of(k) / rate;
    coef_[k] = static_cast<float>(2.0 * std::cos(w));
    cos_w_[k] = std::cos(w);
    sin_w_[k] = std::sin(w);
    rot_end_re_[k] = std::cos(w * (m - 1.0));
    rot_end_im_[k] = -std::sin(w * (m - 1.0));
    rot_block_re_[k] = std::cos(w * m);
    rot_block_im_[k] = -std::sin(w * m);
  }
  for (std::size_t i = 0; i < hann_len_; ++i) {
    const double s = std::sin(kPi * (static_cast<double>(i) + 0.5) / static_cast<double>(hann_len_));
    hann_[i] = static_cast<float>(s * s);
  }
  for (std::size_t i = hann_len_; i < 2 * kMaxBlock; ++i) hann_[i] = 0.0f;
  for (std::size_t i = 0; i < 2 * kMaxBlock; ++i) {
    const double s = i < 2 * block_ ? std::sin(kPi * (static_cast<double>(i) + 0.5) / (2.0 * m)) : 0.0;
    hann_full_[i] = static_cast<float>(s * s);
  }

  const double amplitude = dtmf::kZeroDbm0Peak * std::pow(10.0, config.min_level_dbm0 / 20.0);
  const double min_power = 2.0 * m * amplitude * amplitude / 2.0;  // energy of that sine over a 2M window
  strict_ = Limits{min_power, db_to_power(config.max_normal_twist_db), db_to_power(config.max_reverse_twist_db),
                   config.min_tone_energy_ratio, config.max_frequency_deviation};
  relaxed_ = Limits{min_power * db_to_power(-kRelaxLevelDb),
                    db_to_power(config.max_normal_twist_db + kRelaxTwistDb),
                    db_to_power(config.max_reverse_twist_db + kRelaxTwistDb),
                    config.min_tone_energy_ratio * kRelaxToneRatio,
                    std::max(config.max_frequency_deviation, kRelaxedDeviation)};
  relative_peak_ = db_to_power(kRelativePeakDb);
  harmonic_ratio_ = db_to_power(-config.min_harmonic_rejection_db);
  reset();
}

void DtmfDetector::reset() noexcept {
  for (int k = 0; k < 8; ++k) {
    s1_[k] = s2_[k] = 0.0f;
    prev_re_[k] = prev_im_[k] = cur_re_[k] = cur_im_[k] = 0.0;
  }
  prev_energy_ = cur_energy_ = 0.0;
  have_prev_ = false;
  fill_ = 0;
  sub_blocks_ = 0;
  for (float& v : window_) v = 0.0f;
  run_digit_ = '\0';
  run_length_ = 0;
  run_start_ = 0;
  active_digit_ = '\0';
  active_start_ = active_last_end_ = 0;
  active_row_ = 0;
  active_col_ = 4;
  ref_row_ = ref_col_ = 0.0;
  misses_ = 0;
  for (double& p : power_) p = 0.0;
  out_ = nullptr;
  out_capacity_ = out_count_ = 0;
  stats_ = DtmfDetectorStats{};
}

std::size_t DtmfDetector::process(const std::int16_t* pcm, std::size_t n, DtmfEvent* out,
                                  std::size_t capacity) noexcept {
  out_ = out;
  out_capacity_ = out == nullptr ? 0 : capacity;
  out_count_ = 0;
  if (pcm == nullptr) n = 0;
  while (n > 0) {
    const std::size_t take = std::min(n, block_ - fill_);
    // The 8 filters as one unit of 8 lanes: the compiler keeps them in vector
    // registers across the sample loop.
    float s1[8], s2[8], coef[8];
    for (int k = 0; k < 8; ++k) {
      s1[k] = s1_[k];
      s2[k] = s2_[k];
      coef[k] = coef_[k];
    }
    std::int64_t energy = 0;
    float* keep = window_ + block_ + fill_;
    for (std::size_t i = 0; i < take; ++i) {
      const std::int32_t v = pcm[i];
      energy += static_cast<std::int64_t>(v) * v;
      const float x = static_cast<float>(v);
      keep[i] = x;
      for (int k = 0; k < 8; ++k) {
        const float s0 = x + coef[k] * s1[k] - s2[k];
        s2[k] = s1[k];
        s1[k] = s0;
      }
    }
    for (int k = 0; k < 8; ++k) {
      s1_[k] = s1[k];
      s2_[k] = s2[k];
    }
    cur_energy_ += static_cast<double>(energy);
    fill_ += take;
    pcm += take;
    n -= take;
    stats_.samples += take;
    if (fill_ == block_) end_sub_block();
  }
  out_ = nullptr;
  out_capacity_ = 0;
  return out_count_;
}

void DtmfDetector::end_sub_block() noexcept {
  for (int k = 0; k < 8; ++k) {
    // y = s[M-1] - e^{-jw} s[M-2] = e^{jw(M-1)} X, X the DFT from the sub-block start.
    const double y_re = static_cast<double>(s1_[k]) - cos_w_[k] * static_cast<double>(s2_[k]);
    const double y_im = sin_w_[k] * static_cast<double>(s2_[k]);
    cur_re_[k] = y_re * rot_end_re_[k] - y_im * rot_end_im_[k];
    cur_im_[k] = y_re * rot_end_im_[k] + y_im * rot_end_re_[k];
    s1_[k] = s2_[k] = 0.0f;
  }

  if (have_prev_) {
    const std::uint64_t index = sub_blocks_;  // this sub-block; the window is (index-1, index)
    const std::uint64_t window_start = (index - 1) * block_;
    const std::uint64_t window_end = (index + 1) * block_;
    const char digit = classify_window();

    if (digit != '\0' && digit == run_digit_) {
      ++run_length_;
    } else if (digit != '\0') {
      run_digit_ = digit;
      run_length_ = 1;
      run_start_ = window_start;
    } else {
      run_digit_ = '\0';
      run_length_ = 0;
    }

    if (active_digit_ != '\0') {
      if (digit == active_digit_) {
        misses_ = 0;
        active_last_end_ = window_end;
        ref_row_ = power_[active_row_];
        ref_col_ = power_[active_col_];
      } else if (digit == '\0' && power_[active_row_] * kMaskedRatio >= ref_row_ &&
                 power_[active_col_] * kMaskedRatio >= ref_col_) {
        // The tones are still there, under something else: the digit goes
        // on, but its end stays that of its last valid window (the first
        // window past a tone's end is half tone and would pass as masked).
        ++stats_.masked_windows;
      } else if (++misses_ >= kWindowsToEnd) {
        emit(DtmfEventKind::kEnd, active_digit_, active_start_, active_last_end_);
        active_digit_ = '\0';
        misses_ = 0;
      }
    }
    if (active_digit_ == '\0' && run_digit_ != '\0' && run_length_ >= kWindowsToStart) {
      active_digit_ = run_digit_;
      active_start_ = run_start_;
      active_last_end_ = window_end;
      for (int r = 0; r < 4; ++r) {
        for (int c = 0; c < 4; ++c) {
          if (dtmf::kKeypad[r][c] == active_digit_) {
            active_row_ = r;
            active_col_ = 4 + c;
          }
        }
      }
      ref_row_ = power_[active_row_];
      ref_col_ = power_[active_col_];
      misses_ = 0;
      ++stats_.digits;
      emit(DtmfEventKind::kStart, active_digit_, active_start_, 0);
    }
  }

  for (int k = 0; k < 8; ++k) {
    prev_re_[k] = cur_re_[k];
    prev_im_[k] = cur_im_[k];
  }
  prev_energy_ = cur_energy_;
  cur_energy_ = 0.0;
  std::copy(window_ + block_, window_ + 2 * block_, window_);
  have_prev_ = true;
  ++sub_blocks_;
  fill_ = 0;
}

char DtmfDetector::classify_window() noexcept {
  ++stats_.windows;
  const double n = 2.0 * static_cast<double>(block_);
  double* power = power_;
  for (int k = 0; k < 8; ++k) {
    // DFT of the window = first half + e^{-jwM} * second half.
    const double re = prev_re_[k] + rot_block_re_[k] * cur_re_[k] - rot_block_im_[k] * cur_im_[k];
    const double im = prev_im_[k] + rot_block_re_[k] * cur_im_[k] + rot_block_im_[k] * cur_re_[k];
    power[k] = 2.0 * (re * re + im * im) / n;  // = the window energy of a sine at that frequency
  }
  int row = 0, col = 4;
  for (int k = 1; k < 4; ++k) {
    if (power[k] > power[row]) row = k;
  }
  for (int k = 5; k < 8; ++k) {
    if (power[k] > power[col]) col = k;
  }
  const double p_row = power[row], p_col = power[col];
  const char digit = dtmf::kKeypad[row][col - 4];
  const Limits& limits = digit == active_digit_ ? relaxed_ : strict_;

  if (p_row < limits.min_power || p_col < limits.min_power) {
    ++stats_.rejected_level;
    return '\0';
  }
  if (p_col > p_row * limits.normal_twist || p_row > p_col * limits.reverse_twist) {
    ++stats_.rejected_twist;
    return '\0';
  }
  for (int k = 0; k < 8; ++k) {
    if (k == row || k == col) continue;
    const double peak = k < 4 ? p_row : p_col;
    if (power[k] * relative_peak_ > peak) {
      ++stats_.rejected_relative_peak;
      return '\0';
    }
  }
  const double total = prev_energy_ + cur_energy_;
  if (p_row + p_col < limits.tone_ratio * total) {
    ++stats_.rejected_tone_ratio;
    return '\0';
  }
  const double weaker = std::min(prev_energy_, cur_energy_);
  const double stronger = std::max(prev_energy_, cur_energy_);
  if (weaker < kMinFillRatio * stronger) {
    ++stats_.rejected_fill;
    return '\0';
  }
  const int failed = candidate_tests(row, col, limits.frequency_deviation);
  if (failed == 1) {
    ++stats_.rejected_frequency;
    return '\0';
  }
  if (failed == 2) {
    ++stats_.rejected_harmonic;
    return '\0';
  }
  ++stats_.valid_windows;
  return digit;
}

// Frequency of the tone near `frequency_of(index)`: the phase advance of its
// Hann-windowed DFT between two windows of L samples, D samples apart, is
// (w_tone - w) D. Hann sidelobes keep the other group's tone out of it (a
// rectangular window leaks enough of it to move the estimate by percents).
double DtmfDetector::frequency_deviation(int index) const noexcept {
  const double f = frequency_of(index);
  const double rate = static_cast<double>(config_.sample_rate);
  const double w = 2.0 * kPi * f / rate;
  const double step_re = std::cos(w), step_im = -std::sin(w);
  double rot_re = 1.0, rot_im = 0.0;
  double a_re = 0.0, a_im = 0.0, b_re = 0.0, b_im = 0.0;
  const float* first = window_;
  const float* second = window_ + hann_hop_;
  for (std::size_t i = 0; i < hann_len_; ++i) {
    const double h = static_cast<double>(hann_[i]);
    const double x1 = h * static_cast<double>(first[i]);
    const double x2 = h * static_cast<double>(second[i]);
    a_re += x1 * rot_re;
    a_im += x1 * rot_im;
    b_re += x2 * rot_re;
    b_im += x2 * rot_im;
    const double next_re = rot_re * step_re - rot_im * step_im;
    rot_im = rot_re * step_im + rot_im * step_re;
    rot_re = next_re;
  }
  // B * conj(A), then remove the nominal advance w*D.
  const double p_re = b_re * a_re + b_im * a_im;
  const double p_im = b_im * a_re - b_re * a_im;
  if (p_re == 0.0 && p_im == 0.0) return std::nan("");
  const double delta = std::remainder(std::atan2(p_im, p_re) - w * static_cast<double>(hann_hop_), 2.0 * kPi);
  return delta * rate / (2.0 * kPi * static_cast<double>(hann_hop_));
}

DtmfDetector::Complex DtmfDetector::hann_dft(double frequency) const noexcept {
  const std::size_t n = 2 * block_;
  const double w = 2.0 * kPi * frequency / config_.sample_rate;
  const double step_re = std::cos(w), step_im = -std::sin(w);
  double rot_re = 1.0, rot_im = 0.0, re = 0.0, im = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(hann_full_[i]) * static_cast<double>(window_[i]);
    re += x * rot_re;
    im += x * rot_im;
    const double next_re = rot_re * step_re - rot_im * step_im;
    rot_im = rot_re * step_im + rot_im * step_re;
    rot_re = next_re;
  }
  return {re, im};
}

// sum_{n<N} h[n] e^{j theta n} for h[n] = sin^2(pi (n + 1/2) / N)
//   = G(theta)/2 - e^{j pi/N} G(theta + 2 pi/N)/4 - e^{-j pi/N} G(theta - 2 pi/N)/4,
// with G(theta) = sum_{n<N} e^{j theta n} = e^{j theta (N-1)/2} sin(N theta/2) / sin(theta/2).
DtmfDetector::Complex DtmfDetector::hann_kernel(double theta) const noexcept {
  const double n = 2.0 * static_cast<double>(block_);
  const auto geometric = [n](double t) -> Complex {
    const double half = std::sin(t / 2.0);
    const double magnitude = std::fabs(half) < 1e-12 ? n : std::sin(n * t / 2.0) / half;
    const double phase = t * (n - 1.0) / 2.0;
    return {magnitude * std::cos(phase), magnitude * std::sin(phase)};
  };
  const double step = 2.0 * kPi / n;
  const Complex g0 = geometric(theta), gp = geometric(theta + step), gm = geometric(theta - step);
  const double c = std::cos(kPi / n), s = std::sin(kPi / n);
  // e^{j pi/N} gp and e^{-j pi/N} gm
  const Complex ep{c * gp.re - s * gp.im, c * gp.im + s * gp.re};
  const Complex em{c * gm.re + s * gm.im, c * gm.im - s * gm.re};
  return {0.5 * g0.re - 0.25 * (ep.re + em.re), 0.5 * g0.im - 0.25 * (ep.im + em.im)};
}

int DtmfDetector::candidate_tests(int row, int col, double limit) const noexcept {
  const double f_row = frequency_of(row), f_col = frequency_of(col);
  const double dev_row = frequency_deviation(row), dev_col = frequency_deviation(col);
  if (!(std::fabs(dev_row) <= limit * f_row) || !(std::fabs(dev_col) <= limit * f_col)) return 1;

  // Each tone as x[n] = (c e^{jwn} + c* e^{-jwn}) / 2 at its estimated
  // frequency; its Hann DFT at w is about c N/4, so c = 4 X / N.
  const double rate = static_cast<double>(config_.sample_rate);
  const double n = 2.0 * static_cast<double>(block_);
  const double tone_f[2] = {f_row + dev_row, f_col + dev_col};
  Complex tone_c[2];
  double tone_power[2];
  for (int t = 0; t < 2; ++t) {
    const Complex x = hann_dft(tone_f[t]);
    tone_c[t] = {4.0 * x.re / n, 4.0 * x.im / n};
    tone_power[t] = x.re * x.re + x.im * x.im;
  }
  for (int t = 0; t < 2; ++t) {
    const double f_h = 2.0 * tone_f[t];
    if (f_h >= rate / 2.0) continue;
    Complex x = hann_dft(f_h);
    const double w_h = 2.0 * kPi * f_h / rate;
    for (int u = 0; u < 2; ++u) {  // remove what the two tones put there
      const double w_u = 2.0 * kPi * tone_f[u] / rate;
      const Complex kp = hann_kernel(w_u - w_h), km = hann_kernel(-w_u - w_h);
      const Complex& c = tone_c[u];
      // (c/2) kp + (conj(c)/2) km
      x.re -= 0.5 * (c.re * kp.re - c.im * kp.im) + 0.5 * (c.re * km.re + c.im * km.im);
      x.im -= 0.5 * (c.re * kp.im + c.im * kp.re) + 0.5 * (c.re * km.im - c.im * km.re);
    }
    if (x.re * x.re + x.im * x.im > harmonic_ratio_ * tone_power[t]) return 2;
  }
  return 0;
}

void DtmfDetector::emit(DtmfEventKind kind, char digit, std::uint64_t start, std::uint64_t end) noexcept {
  if (out_count_ < out_capacity_) {
    out_[out_count_++] = DtmfEvent{kind, digit, start, end};
  } else {
    ++stats_.events_dropped;
  }
}

std::size_t DtmfDetector::flush(DtmfEvent* out, std::size_t capacity) noexcept {
  out_ = out;
  out_capacity_ = out == nullptr ? 0 : capacity;
  out_count_ = 0;
  if (active_digit_ != '\0') {
    emit(DtmfEventKind::kEnd, active_digit_, active_start_, active_last_end_);
  }
  active_digit_ = '\0';
  misses_ = 0;
  run_digit_ = '\0';
  run_length_ = 0;
  out_ = nullptr;
  out_capacity_ = 0;
  return out_count_;
}

}  // namespace mediacore
