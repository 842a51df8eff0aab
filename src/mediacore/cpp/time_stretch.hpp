// Time-stretching of decoded speech by whole pitch periods, in the spirit of
// WebRTC NetEQ's Accelerate and PreemptiveExpand (and of WSOLA): find the lag
// at which the signal best repeats itself (normalized cross-correlation), then
// remove or insert one period with a linear crossfade across it, so the output
// keeps the waveform's continuity and its pitch. Quiet input (silence between
// words) is cut or padded in bigger steps, where nobody hears it.
//
// The pitch search is shared with the PLC (plc.hpp). All functions are
// allocation-free and never read outside [in, in + n) or write outside
// [out, out + capacity).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mediacore::stretch {

struct Period {
  int lag = 0;
  float correlation = 0;  // normalized, in [-1, 1]
};

// The lag in [min_lag, max_lag] maximizing the normalized correlation between
// fixed[0..window) and (origin + direction * lag)[0..window). direction is +1
// (compare with later samples) or -1 (with earlier ones); the caller makes sure
// every sample read exists. `step` > 1 searches every step-th lag over every
// step-th sample first, then refines around the best at full resolution.
Period find_period(const std::int16_t* fixed, const std::int16_t* origin, int direction, int window, int min_lag,
                   int max_lag, int step) noexcept;

// Root-mean-square level of x[0..n).
double rms(const std::int16_t* x, std::size_t n) noexcept;

// Pitch range used for speech at `sample_rate`: 2.5 ms .. 15 ms.
int min_lag(int sample_rate) noexcept;
int max_lag(int sample_rate) noexcept;
// Samples accelerate()/preemptive_expand() need to look at: 30 ms.
int needed_input(int sample_rate) noexcept;

struct Options {
  float min_correlation = 0.85f;  // below this, voiced input is left alone
  double quiet_rms = 150.0;       // at or below this RMS the input counts as silence
  int max_quiet_samples = 0;      // how much to cut/insert at once in silence (0: 10 ms)
  int max_change = 0;             // never cut/insert more than this (0: no limit)
  bool allow_voiced = true;       // false: only silence is cut or inserted (inaudible)
};

// Removes one pitch period (or, in silence, up to max_quiet_samples) from
// in[0..n) into out. Returns the output length (n when nothing could be
// removed), or -1 if capacity is too small for n samples.
int accelerate(const std::int16_t* in, std::size_t n, int sample_rate, std::int16_t* out, std::size_t capacity,
               const Options& options = {}) noexcept;

// Inserts one pitch period (or, in silence, up to max_quiet_samples). Returns
// the output length (n when nothing was inserted), or -1 if capacity is too
// small for the result.
int preemptive_expand(const std::int16_t* in, std::size_t n, int sample_rate, std::int16_t* out,
                      std::size_t capacity, const Options& options = {}) noexcept;

}  // namespace mediacore::stretch
