#include "resampler.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace mediacore {
namespace {

constexpr std::size_t kLanes = 16;    // partial sums in every dot product
constexpr std::size_t kBlock = 1024;  // input samples converted to float at a time
constexpr double kAttenuationDb = 80.0;
constexpr double kPi = 3.14159265358979323846;

bool valid_rate(int rate) { return rate == 8000 || rate == 16000 || rate == 48000; }

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
std::size_t round_up(std::size_t a, std::size_t b) { return ceil_div(a, b) * b; }

// Modified Bessel function of the first kind, order 0 (power series; the
// terms fall fast for the arguments a Kaiser window uses, x <= ~12).
double bessel_i0(double x) {
  double sum = 1.0;
  double term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 200; ++k) {
    term *= q / (static_cast<double>(k) * static_cast<double>(k));
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

// Kaiser-windowed ideal low-pass of odd length n, cutoff in cycles per sample,
// scaled so that its coefficients sum to `gain`.
std::vector<double> kaiser_lowpass(std::size_t n, double cutoff, double beta, double gain) {
  std::vector<double> h(n);
  const double centre = static_cast<double>(n - 1) / 2.0;
  const double i0_beta = bessel_i0(beta);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) - centre;
    const double arg = 2.0 * cutoff * t;
    const double sinc = t == 0.0 ? 1.0 : std::sin(kPi * arg) / (kPi * arg);
    const double r = t / centre;
    const double window = bessel_i0(beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta;
    h[i] = 2.0 * cutoff * sinc * window;
    sum += h[i];
  }
  for (double& v : h) v *= gain / sum;
  return h;
}

// Pairwise sum of the 16 lanes in a fixed order (written out: a loop over the
// widths was left rolled by the compiler).
inline float reduce_lanes(float* acc) noexcept {
  for (std::size_t l = 0; l < 8; ++l) acc[l] += acc[l + 8];
  for (std::size_t l = 0; l < 4; ++l) acc[l] += acc[l + 4];
  acc[0] += acc[2];
  acc[1] += acc[3];
  return acc[0] + acc[1];
}

// The dot product every kernel computes: 16 independent partial sums (lane l
// takes elements l, l+16, l+32...), then a fixed pairwise reduction. Each lane
// is a plain sequence of IEEE multiplies and adds, so a vectorized build gives
// the same bits as a scalar one. n is a multiple of 16.
__attribute__((always_inline)) inline float dot_lanes(const float* a, const float* b, std::size_t n) noexcept {
  float acc[kLanes] = {};
  for (std::size_t i = 0; i < n; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  return reduce_lanes(acc);
}

// Compiled for the baseline ISA (SSE2 on x86-64): the compiler vectorizes the
// lanes (checked with -fopt-info-vec).
float dot_baseline(const float* a, const float* b, std::size_t n) noexcept { return dot_lanes(a, b, n); }

#if defined(__x86_64__)
// The same source compiled for AVX2: twice the lanes per instruction. No FMA
// on purpose: a fused multiply-add rounds once instead of twice and would no
// longer match the other kernels bit for bit.
__attribute__((target("avx2"))) float dot_avx2(const float* a, const float* b, std::size_t n) noexcept {
  return dot_lanes(a, b, n);
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}
#endif

std::int16_t to_int16(float v) noexcept {
  if (v >= 32767.0f) return 32767;
  if (v <= -32768.0f) return -32768;
  return static_cast<std::int16_t>(std::lrint(v));
}

}  // namespace

// The plain scalar reference: same lanes, same order, kept out of the
// vectorizers so that it really is the scalar code the kernels are checked against.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
float resample_dot_reference(const float* a, const float* b, std::size_t n) noexcept {
  float acc[kLanes] = {};
  for (std::size_t i = 0; i < n; i += kLanes) {
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable) unroll(disable)
#endif
    for (std::size_t l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  return reduce_lanes(acc);
}

Resampler::Resampler(int from_rate, int to_rate, ResampleKernel kernel) : from_(from_rate), to_(to_rate) {
  if (!valid_rate(from_rate)) throw std::invalid_argument("from_rate must be 8000, 16000 or 48000");
  if (!valid_rate(to_rate)) throw std::invalid_argument("to_rate must be 8000, 16000 or 48000");

  switch (kernel) {
    case ResampleKernel::Scalar:
      dot_ = resample_dot_reference;
      break;
    case ResampleKernel::Baseline:
      dot_ = dot_baseline;
      break;
    case ResampleKernel::Avx2:
#if defined(__x86_64__)
      if (!cpu_has_avx2()) throw std::invalid_argument("this CPU has no AVX2");
      dot_ = dot_avx2;
      break;
#else
      throw std::invalid_argument("the AVX2 kernel exists on x86-64 only");
#endif
    case ResampleKernel::Auto:
      kernel = ResampleKernel::Baseline;
      dot_ = dot_baseline;
#if defined(__x86_64__)
      if (cpu_has_avx2()) {
        kernel = ResampleKernel::Avx2;
        dot_ = dot_avx2;
      }
#endif
      break;
    default:
      throw std::invalid_argument("unknown resampler kernel");
  }
  kernel_ = kernel;
  if (from_rate == to_rate) return;

  const int high = std::max(from_rate, to_rate);
  const int low = std::min(from_rate, to_rate);
  up_ = to_rate > from_rate ? to_rate / from_rate : 1;
  down_ = from_rate > to_rate ? from_rate / to_rate : 1;

  // Band edges in cycles per sample at the high rate.
  const double nyquist = low / 2.0;
  const double pass_edge = 0.9 * nyquist / high;
  const double stop_edge = nyquist / high;
  const double cutoff = (pass_edge + stop_edge) / 2.0;
  const double beta = 0.1102 * (kAttenuationDb - 8.7);
  const double transition = 2.0 * kPi * (stop_edge - pass_edge);  // radians per sample
  const auto min_length =
      static_cast<std::size_t>(std::ceil((kAttenuationDb - 8.0) / (2.285 * transition))) + 1;

  std::size_t length = 0;
  if (up_ > 1) {
    // L branches of taps_ each; the last coefficient of the padded filter is 0.
    taps_ = round_up(ceil_div(min_length + 1, static_cast<std::size_t>(up_)), kLanes);
    length = taps_ * static_cast<std::size_t>(up_) - 1;  // odd: taps_ * L is even
    delay_ = static_cast<int>((length - 1) / 2);
  } else {
    // Half-length a multiple of M so the delay is whole output samples.
    const std::size_t half = round_up(ceil_div(min_length - 1, 2), static_cast<std::size_t>(down_));
    length = 2 * half + 1;
    taps_ = round_up(length, kLanes);
    delay_ = static_cast<int>(half / static_cast<std::size_t>(down_));
  }
  prototype_ = kaiser_lowpass(length, cutoff, beta, static_cast<double>(up_));

  // Coefficients are stored reversed, so that each output is a dot product
  // with a window of input running oldest to newest.
  if (up_ > 1) {
    const std::size_t branches = static_cast<std::size_t>(up_);
    coefficients_ = std::make_unique<float[]>(branches * taps_);
    for (std::size_t r = 0; r < branches; ++r) {
      for (std::size_t i = 0; i < taps_; ++i) {
        const std::size_t k = (taps_ - 1 - i) * branches + r;  // branch r, tap taps_-1-i
        coefficients_[r * taps_ + i] = k < length ? static_cast<float>(prototype_[k]) : 0.0f;
      }
    }
  } else {
    coefficients_ = std::make_unique<float[]>(taps_);
    const std::size_t pad = taps_ - length;  // zeros on the oldest side
    for (std::size_t i = 0; i < taps_; ++i) {
      coefficients_[i] = i < pad ? 0.0f : static_cast<float>(prototype_[length - 1 - (i - pad)]);
    }
  }
  history_ = taps_ - 1;
  work_ = std::make_unique<float[]>(history_ + kBlock);
  reset();
}

Resampler::~Resampler() = default;

void Resampler::reset() noexcept {
  if (work_) std::fill(work_.get(), work_.get() + history_ + kBlock, 0.0f);
  until_next_ = 1;
}

std::size_t Resampler::output_size(std::size_t n) const noexcept {
  if (up_ > 1) return n * static_cast<std::size_t>(up_);
  if (down_ > 1) return n >= until_next_ ? (n - until_next_) / static_cast<std::size_t>(down_) + 1 : 0;
  return n;
}

std::size_t Resampler::run(const std::int16_t* in, std::size_t n, std::int16_t* out,
                           std::size_t limit) noexcept {
  float* const work = work_.get();
  float* const fresh = work + history_;
  const float* const coef = coefficients_.get();
  std::size_t produced = 0;
  while (n > 0) {
    const std::size_t b = std::min(n, kBlock);
    if (in != nullptr) {
      for (std::size_t i = 0; i < b; ++i) fresh[i] = static_cast<float>(in[i]);
      in += b;
    } else {
      std::fill(fresh, fresh + b, 0.0f);
    }
    if (up_ > 1) {
      const std::size_t branches = static_cast<std::size_t>(up_);
      for (std::size_t j = 0; j < b; ++j) {
        for (std::size_t r = 0; r < branches; ++r, ++produced) {
          if (produced < limit) out[produced] = to_int16(dot_(coef + r * taps_, work + j, taps_));
        }
      }
    } else {
      std::size_t j = until_next_ - 1;
      for (; j < b; j += static_cast<std::size_t>(down_), ++produced) {
        if (produced < limit) out[produced] = to_int16(dot_(coef, work + j, taps_));
      }
      until_next_ = j - b + 1;
    }
    std::memmove(work, work + b, history_ * sizeof(float));
    n -= b;
  }
  return produced;
}

std::ptrdiff_t Resampler::process(const std::int16_t* in, std::size_t n, std::int16_t* out,
                                  std::size_t capacity) noexcept {
  if (n == 0) return 0;
  const std::size_t need = output_size(n);
  if (in == nullptr || capacity < need || (need > 0 && out == nullptr)) return -1;
  if (up_ == 1 && down_ == 1) {
    std::memcpy(out, in, n * sizeof(std::int16_t));
    return static_cast<std::ptrdiff_t>(n);
  }
  return static_cast<std::ptrdiff_t>(run(in, n, out, need));
}

std::ptrdiff_t Resampler::flush(std::int16_t* out, std::size_t capacity) noexcept {
  const auto tail = static_cast<std::size_t>(delay_);
  if (capacity < tail || (tail > 0 && out == nullptr)) return -1;
  if (tail > 0) {
    // Enough silence to push the last `tail` outputs through; any extra
    // outputs (upsampling produces L at a time) are discarded.
    const std::size_t zeros = up_ > 1 ? ceil_div(tail, static_cast<std::size_t>(up_))
                                      : until_next_ + (tail - 1) * static_cast<std::size_t>(down_);
    run(nullptr, zeros, out, tail);
  }
  reset();
  return static_cast<std::ptrdiff_t>(tail);
}

}  // namespace mediacore
