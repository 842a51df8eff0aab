// Sample-rate conversion between 8, 16 and 48 kHz (integer ratios 2, 3 and 6).
//
// A polyphase FIR resampler with a Kaiser-windowed sinc low-pass designed in
// the constructor (J. F. Kaiser's window and length formulas, as in Oppenheim &
// Schafer, "Discrete-Time Signal Processing", 3rd ed., section 7.6):
//
// - the filter runs at the higher of the two rates and cuts at the lower
//   rate's Nyquist frequency fN: passband up to 0.9 fN, stopband from fN, so
//   every image (upsampling) and every alias (downsampling) lands in the
//   stopband; designed for 80 dB of stopband attenuation, and each polyphase
//   branch is then lengthened to a multiple of 16 taps (the SIMD width), which
//   only narrows the transition band;
// - up by L: each input sample yields L outputs, one per polyphase branch;
//   down by M: one output per M inputs, the full filter evaluated at it;
// - the filter history is carried across calls: any chunking of the input
//   gives bit-identical output to one call with all of it;
// - the filter is linear-phase; delay() is its group delay in output samples
//   (whole samples: the filter length is chosen so).
//
// Arithmetic is float: int16 in, a 16-lane dot product, round to nearest with
// saturation out. The dot product is written as 16 independent partial sums
// so that compilers vectorize it without reassociating anything; the baseline
// (SSE2), AVX2 and plain scalar builds therefore give bit-identical results, and the
// fastest one the CPU has is chosen at construction.
//
// Rates are 8000, 16000 or 48000; from == to is a plain copy (delay 0).
// process() and flush() never allocate, never throw, and return -1 when the
// output does not fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mediacore {

// Which dot-product kernel to use; Auto picks the fastest the CPU supports.
// Scalar is the plain reference; Baseline is the compiler-vectorized build for
// the target's base ISA (SSE2 on x86-64); Avx2 the same source built for AVX2.
// They exist side by side so that tests can check they agree bit for bit.
enum class ResampleKernel : int { Auto = 0, Scalar = 1, Baseline = 2, Avx2 = 3 };

class Resampler {
 public:
  // Throws std::invalid_argument for a rate other than 8000, 16000 or 48000,
  // or for a kernel this CPU cannot run.
  Resampler(int from_rate, int to_rate, ResampleKernel kernel = ResampleKernel::Auto);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  int from_rate() const noexcept { return from_; }
  int to_rate() const noexcept { return to_; }
  // Group delay of the filter, in output samples.
  int delay() const noexcept { return delay_; }
  // The kernel in use (never Auto).
  ResampleKernel kernel() const noexcept { return kernel_; }

  // Exactly how many samples the next process(n samples) will write: n * L
  // when upsampling; when downsampling it depends on where the previous call
  // left the decimation phase, and is ceil(n / M) from the initial state.
  std::size_t output_size(std::size_t n) const noexcept;

  // Resample n input samples, writing output_size(n) samples to out. Returns
  // that count, or -1 (consuming nothing) when capacity is smaller.
  std::ptrdiff_t process(const std::int16_t* in, std::size_t n, std::int16_t* out,
                         std::size_t capacity) noexcept;

  // Write the delay() samples still inside the filter (the tail of the input,
  // as if followed by silence), then reset(). Returns delay(), or -1 when
  // capacity is smaller (nothing changes then).
  std::ptrdiff_t flush(std::int16_t* out, std::size_t capacity) noexcept;

  // Forget the history: as freshly constructed.
  void reset() noexcept;

  // The prototype low-pass filter (length odd, symmetric, at the higher rate;
  // DC gain L when upsampling, 1 when downsampling). For tests and plots.
  const std::vector<double>& prototype() const noexcept { return prototype_; }

 private:
  using DotFn = float (*)(const float*, const float*, std::size_t) noexcept;

  // Feed n samples (zeros when in is null); write at most `limit` outputs.
  std::size_t run(const std::int16_t* in, std::size_t n, std::int16_t* out, std::size_t limit) noexcept;

  int from_;
  int to_;
  int up_ = 1;              // L
  int down_ = 1;            // M
  int delay_ = 0;
  std::size_t taps_ = 0;    // per polyphase branch (up) or whole filter (down); multiple of 16
  std::size_t history_ = 0; // taps_ - 1 input samples kept between calls
  std::size_t until_next_ = 1;  // down: input samples still needed before the next output
  ResampleKernel kernel_ = ResampleKernel::Scalar;
  DotFn dot_ = nullptr;
  std::vector<double> prototype_;
  std::unique_ptr<float[]> coefficients_;  // up: L branches of taps_, reversed; down: taps_, reversed
  std::unique_ptr<float[]> work_;          // history_ + kBlock input samples as float
};

// The scalar reference dot product of n (a multiple of 16) floats, with the
// summation order every kernel uses. Exposed for tests.
float resample_dot_reference(const float* a, const float* b, std::size_t n) noexcept;

}  // namespace mediacore
