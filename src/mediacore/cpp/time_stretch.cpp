#include "time_stretch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mediacore::stretch {

namespace {

struct Sums {
  double cross = 0, energy_fixed = 0, energy_moving = 0;
};

Sums correlate(const std::int16_t* a, const std::int16_t* b, int window, int step) noexcept {
  Sums s;
  for (int i = 0; i < window; i += step) {
    const double x = a[i], y = b[i];
    s.cross += x * y;
    s.energy_fixed += x * x;
    s.energy_moving += y * y;
  }
  return s;
}

float normalized(const Sums& s) noexcept {
  const double denom = std::sqrt(s.energy_fixed * s.energy_moving);
  if (denom <= 0) return 0.0f;
  return static_cast<float>(s.cross / denom);
}

std::int16_t saturate(double v) noexcept {
  if (v > 32767.0) return 32767;
  if (v < -32768.0) return -32768;
  return static_cast<std::int16_t>(std::lrint(v));
}

// out[i] = a[i] fading out + b[i] fading in, i in [0, len): out[0] == a[0],
// so the output joins what came before it exactly.
void crossfade(const std::int16_t* a, const std::int16_t* b, int len, std::int16_t* out) noexcept {
  for (int i = 0; i < len; ++i) {
    const double w = static_cast<double>(i) / len;
    out[i] = saturate(a[i] * (1.0 - w) + b[i] * w);
  }
}

}  // namespace

Period find_period(const std::int16_t* fixed, const std::int16_t* origin, int direction, int window, int lo, int hi,
                   int step) noexcept {
  Period best;
  if (window <= 0 || lo <= 0 || hi < lo) return best;
  step = std::max(1, step);
  best.correlation = -2.0f;
  for (int lag = lo; lag <= hi; lag += step) {
    const float c = normalized(correlate(fixed, origin + direction * lag, window, step));
    if (c > best.correlation) best = {lag, c};
  }
  if (step > 1) {
    const int center = best.lag;
    best.correlation = -2.0f;
    for (int lag = std::max(lo, center - step + 1); lag <= std::min(hi, center + step - 1); ++lag) {
      const float c = normalized(correlate(fixed, origin + direction * lag, window, 1));
      if (c > best.correlation) best = {lag, c};
    }
  }
  if (best.correlation < -1.0f) best.correlation = 0.0f;
  return best;
}

double rms(const std::int16_t* x, std::size_t n) noexcept {
  if (n == 0) return 0.0;
  double e = 0;
  for (std::size_t i = 0; i < n; ++i) e += static_cast<double>(x[i]) * x[i];
  return std::sqrt(e / static_cast<double>(n));
}

int min_lag(int sample_rate) noexcept { return sample_rate / 400; }     // 2.5 ms
int max_lag(int sample_rate) noexcept { return sample_rate * 3 / 200; }  // 15 ms
int needed_input(int sample_rate) noexcept { return 2 * max_lag(sample_rate); }

namespace {

// The lag to cut or insert, or 0 when the input should be left alone.
int choose_lag(const std::int16_t* in, std::size_t n, int sample_rate, const Options& o) noexcept {
  int hi = std::min(max_lag(sample_rate), static_cast<int>(n / 2));
  if (o.max_change > 0) hi = std::min(hi, o.max_change);
  const int lo = min_lag(sample_rate);
  if (hi < 1) return 0;
  if (rms(in, n) <= o.quiet_rms) {
    const int quiet = o.max_quiet_samples > 0 ? o.max_quiet_samples : sample_rate / 100;
    int limit = std::min({quiet, static_cast<int>(n / 2), 2048});
    if (o.max_change > 0) limit = std::min(limit, o.max_change);
    return limit;
  }
  if (hi < lo || !o.allow_voiced) return 0;
  const int step = std::max(1, sample_rate / 4000);
  const Period p = find_period(in, in, +1, hi, lo, hi, step);
  return p.correlation >= o.min_correlation ? p.lag : 0;
}

}  // namespace

int accelerate(const std::int16_t* in, std::size_t n, int sample_rate, std::int16_t* out, std::size_t capacity,
               const Options& options) noexcept {
  if (capacity < n || (n && (!in || !out))) return -1;
  const int lag = n ? choose_lag(in, n, sample_rate, options) : 0;
  if (lag == 0) {
    if (n) std::memmove(out, in, n * sizeof(std::int16_t));
    return static_cast<int>(n);
  }
  // [A B rest] -> [A fading into B, rest]: one period shorter, continuous at both ends.
  std::int16_t blended[2048];
  const int len = std::min(lag, 2048);
  crossfade(in, in + lag, len, blended);
  std::memmove(out + len, in + 2 * lag, (n - 2 * static_cast<std::size_t>(lag)) * sizeof(std::int16_t));
  std::memcpy(out, blended, static_cast<std::size_t>(len) * sizeof(std::int16_t));
  return static_cast<int>(n) - lag;
}

int preemptive_expand(const std::int16_t* in, std::size_t n, int sample_rate, std::int16_t* out,
                      std::size_t capacity, const Options& options) noexcept {
  if (capacity < n || (n && (!in || !out))) return -1;
  const int lag = n ? choose_lag(in, n, sample_rate, options) : 0;
  if (lag == 0 || n + static_cast<std::size_t>(lag) > capacity || lag > 2048) {
    if (n) std::memmove(out, in, n * sizeof(std::int16_t));
    return static_cast<int>(n);
  }
  // [A B rest] -> [A, B fading into A, B rest]: one period longer.
  std::int16_t blended[2048];
  crossfade(in + lag, in, lag, blended);
  std::memmove(out + 2 * lag, in + lag, (n - static_cast<std::size_t>(lag)) * sizeof(std::int16_t));
  if (out != in) std::memmove(out, in, static_cast<std::size_t>(lag) * sizeof(std::int16_t));
  std::memcpy(out + lag, blended, static_cast<std::size_t>(lag) * sizeof(std::int16_t));
  return static_cast<int>(n) + lag;
}

}  // namespace mediacore::stretch
