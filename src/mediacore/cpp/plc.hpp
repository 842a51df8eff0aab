// Packet loss concealment by pitch waveform substitution, after ITU-T G.711
// Appendix I (09/1999), "A high quality low-complexity algorithm for packet
// loss concealment with G.711":
//   - a history of the last 48.75 ms of real audio;
//   - at the start of an erasure, the pitch period (5..15 ms, 66..200 Hz) is
//     the lag of highest normalized correlation over the last 20 ms (coarse
//     search on every other sample, then refined);
//   - the erasure is filled by repeating the last pitch period; the junction
//     where the period wraps is hidden by a 1/4-period overlap-add;
//   - later the last two, then three periods are repeated (fewer buzzy
//     harmonics), each change blended over 1/4 period;
//   - from 10 ms on, the output is attenuated linearly by 20% per 10 ms, so it
//     is silent from 60 ms on;
//   - the first good frame after an erasure is overlap-added with the
//     continued synthetic signal over 4 ms, plus 4 ms for every further 10 ms
//     of erasure, at most 10 ms.
// Deliberate differences, each measured with PESQ on our speech prompts
// (bench/test_quality_plc.py):
// - Appendix I widens to two periods after 10 ms and three after 20 ms; with
//   20 ms frames that happens inside the first lost frame and cost about
//   0.06 MOS at 5% loss, so we widen after 20 and 30 ms.
// - conceal_before() uses the packet after the gap when the jitter buffer
//   already has it (two-sided concealment); Appendix I only looks back.
// - Appendix I delays its output by 3.75 ms so that
// it can blend the last quarter period *before* an erasure. A jitter buffer
// cannot afford extra delay, so this PLC has none: it starts the substitute
// one period back and removes the step at the junction with a correction that
// decays over that quarter period.
//
// Works at 8, 16 and 48 kHz (every length scales with the rate). Allocates
// only in the constructor; good() and conceal() take any frame size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mediacore {

class G711Plc {
 public:
  explicit G711Plc(int sample_rate = 8000);

  // A frame of real audio. Copies in[0..n) to out (in == out is allowed),
  // crossfading from the concealment if the frames before were concealed,
  // and records it as history.
  void good(const std::int16_t* in, std::int16_t* out, std::size_t n) noexcept;
  // Fills out[0..n) with the concealment of n lost samples.
  void conceal(std::int16_t* out, std::size_t n) noexcept;
  // The same, when the real audio right after the gap (next[0..next_n)) is
  // already here, as it is in a jitter buffer for an isolated loss: the
  // forward substitute fades into the next frame's first pitch period
  // extended backwards, so the gap ends exactly where the next frame starts
  // and the next good() needs no crossfade.
  void conceal_before(const std::int16_t* next, std::size_t next_n, std::int16_t* out, std::size_t n) noexcept;
  void reset() noexcept;

  int sample_rate() const noexcept { return rate_; }
  int pitch() const noexcept { return pitch_; }                  // last detected period (samples)
  std::size_t erased() const noexcept { return erased_; }         // samples in the current erasure
  std::size_t history_size() const noexcept { return history_.size(); }

 private:
  void start_erasure() noexcept;
  double buffer_sample(int periods, int index) const noexcept;
  double next_synthetic() noexcept;

  int rate_;
  int min_pitch_, max_pitch_, window_;
  std::vector<std::int16_t> history_;  // oldest first, last 48.75 ms
  std::size_t erased_ = 0;
  int pitch_ = 0;
  int quarter_ = 1;          // overlap-add length: pitch / 4
  int periods_ = 1;          // periods being repeated
  int pos_ = 0;              // read position in [0, periods_ * pitch_)
  int old_periods_ = 0;      // blending from this many periods...
  int old_pos_ = 0;
  int blend_left_ = 0;       // ...for this many more samples
  double junction_ = 0;      // step at the erasure start, decaying over quarter_
  bool joined_ = false;      // the concealment already ends on the next frame
};

}  // namespace mediacore
