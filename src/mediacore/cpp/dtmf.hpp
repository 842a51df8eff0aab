// DTMF: the digit alphabet (ITU-T Q.23) and an in-band DTMF receiver (ITU-T
// Q.24) built on Goertzel filters.
//
// Q.23 signal frequencies: low group 697, 770, 852, 941 Hz; high group 1209,
// 1336, 1477, 1633 Hz; a digit is one tone of each group.
//
// Receiver figures (Q.24, the figures of its North American column, which are
// the ones usually quoted: frequency tolerance operate <= 1.5 %, non-operate >=
// 3.5 %; signal duration operate >= 40 ms, non-operate <= 23 ms; a signal
// interruption of <= 10 ms must not split a digit; a pause of >= 40 ms must
// separate two digits; twist: normal (high group louder) 8 dB, reverse (low
// group louder) 4 dB). What this receiver does with them:
//
// - Analysis: Goertzel filters at the 8 frequencies run over sub-blocks of
//   M = 51 samples at 8 kHz (102 at 16 kHz, 306 at 48 kHz: 6.375 ms). Each
//   sub-block gives a complex DFT value per frequency; two consecutive
//   sub-blocks combine exactly into the DFT of a 2M-sample window (102 samples
//   at 8 kHz, 12.75 ms), so windows overlap by half at the cost of one Goertzel
//   pass. With 2M = 102 the neighbouring frequencies of a group fall near the
//   rectangular window's nulls.
// - A window is a valid digit when, for the strongest tone of each group:
//   both are >= min_level_dbm0 (default -30 dBm0: digits are found down to
//   -25 dBm0 with margin); twist within max_normal_twist_db (10 dB, so 8 dB is
//   always accepted, frequency error included) and max_reverse_twist_db (6 dB:
//   4 dB accepted); every other frequency of the group is >= 8 dB below it;
//   the two tones carry >= 60 % of the window's energy (talk-off); the two
//   halves of the window carry comparable energy (a half-filled window does not
//   count, which is what makes the duration bounds hold); both tones are within
//   +-2.5 % of nominal (a Hann-windowed phase-difference estimate, so +-1.5 %
//   passes and +-3.5 % fails with about 1 % of margin each side); and neither
//   tone's second harmonic is within 12 dB of it (talk-off: voiced speech is
//   rich in harmonics, DTMF is not). The harmonic is measured by a Hann DFT at
//   twice the estimated frequency from which the predicted leakage of both
//   detected tones is subtracted: 2 x 697 Hz is only 58 Hz from 1336 Hz, so a
//   plain Goertzel there mostly measures the column tone. The last two tests
//   run only on windows that passed the others, on a copy of the window's
//   samples.
// - Hysteresis: a window that continues the digit in progress is judged with
//   relaxed limits (level 3 dB lower, twist limits 2 dB wider, frequency
//   tolerance 3 %, tone share 50 %), so that a tone near a limit does not
//   flicker and come out as two digits.
// - Decision: a digit starts after 4 consecutive valid windows for it (5
//   sub-blocks: at least ~26 ms of tone, so <= 23 ms is always rejected and 40
//   ms, which always covers 5 whole sub-blocks, always accepted) and ends after
//   4 windows in which its tones are gone (a 10 ms interruption spoils at most
//   3; a 40 ms pause spoils at least 6). A window that fails the tests while
//   both of the digit's frequencies are still within 6 dB of their last valid
//   level is "masked" (speech over the digit): it neither ends the digit nor
//   counts towards ending it, so talking over a digit does not split it in two.
//
// Level reference: the G.711 convention, a 0 dBm0 sine is 3.17 dB below the
// digital full-scale sine (G.711 mu-law), taken at the 16-bit scale as a peak
// amplitude of 32768 * 10^(-3.17/20) = 22748.35 (kZeroDbm0Peak).
//
// process() never allocates and never throws; one detector per stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace mediacore::dtmf {

inline constexpr std::array<double, 4> kLowFrequencies{697.0, 770.0, 852.0, 941.0};
inline constexpr std::array<double, 4> kHighFrequencies{1209.0, 1336.0, 1477.0, 1633.0};

// Peak int16 amplitude of a 0 dBm0 sine (see the header comment).
inline constexpr double kZeroDbm0Peak = 22748.35;

// Digits by (row, column) of the keypad: rows are the low group, columns the high group.
inline constexpr char kKeypad[4][4] = {
    {'1', '2', '3', 'A'}, {'4', '5', '6', 'B'}, {'7', '8', '9', 'C'}, {'*', '0', '#', 'D'}};

// RFC 4733 section 3.2 event codes: 0-9, * = 10, # = 11, A-D = 12-15, flash = 16.
inline constexpr int kEventFlash = 16;

// The event code of a digit character ('0'-'9', '*', '#', 'A'-'D' or 'a'-'d',
// '!' for flash), or -1.
int event_from_digit(char digit) noexcept;
// The digit character of an event code 0-16 ('!' for flash), or '\0'.
char digit_from_event(int event) noexcept;
// Keypad position of a DTMF digit (event 0-15): row in the low group and
// column in the high group. Returns false for anything else.
bool keypad_position(int event, int* row, int* column) noexcept;

}  // namespace mediacore::dtmf

namespace mediacore {

struct DtmfDetectorConfig {
  int sample_rate = 8000;  // 8000, 16000 or 48000
  double min_level_dbm0 = -30.0;
  double max_normal_twist_db = 10.0;   // high group louder than low group
  double max_reverse_twist_db = 6.0;   // low group louder than high group
  double max_frequency_deviation = 0.025;
  double min_tone_energy_ratio = 0.60;  // share of the window's energy in the two tones
  double min_harmonic_rejection_db = 12.0;
};

enum class DtmfEventKind : std::uint8_t { kStart = 0, kEnd = 1 };

struct DtmfEvent {
  DtmfEventKind kind;
  char digit;
  std::uint64_t start_sample;  // first sample of the first valid window
  std::uint64_t end_sample;    // kEnd: one past the last sample of the last valid window
};

// Counters over the detector's life (reset() clears them). "windows" is the
// number of 2M-sample analysis windows; each invalid one is counted under the
// first test it failed, in the order the tests run.
struct DtmfDetectorStats {
  std::uint64_t samples = 0;
  std::uint64_t windows = 0;
  std::uint64_t valid_windows = 0;
  std::uint64_t rejected_level = 0;
  std::uint64_t rejected_twist = 0;
  std::uint64_t rejected_relative_peak = 0;
  std::uint64_t rejected_tone_ratio = 0;
  std::uint64_t rejected_fill = 0;
  std::uint64_t rejected_frequency = 0;
  std::uint64_t rejected_harmonic = 0;
  std::uint64_t masked_windows = 0;    // invalid windows that did not end a digit (see above)
  std::uint64_t digits = 0;            // digits started
  std::uint64_t events_dropped = 0;    // events that did not fit the caller's buffer
};

class DtmfDetector {
 public:
  explicit DtmfDetector(const DtmfDetectorConfig& config = {});  // throws std::invalid_argument

  // Analyse n samples (any n, frames need not align with anything). Writes up
  // to `capacity` events to `out` and returns how many; events beyond capacity
  // are counted in stats().events_dropped. max_events(n) is always enough.
  std::size_t process(const std::int16_t* pcm, std::size_t n, DtmfEvent* out, std::size_t capacity) noexcept;
  // End a digit in progress (end of stream). Returns events written (0 or 1).
  std::size_t flush(DtmfEvent* out, std::size_t capacity) noexcept;
  void reset() noexcept;

  // A bound on the events process() can produce for n samples.
  std::size_t max_events(std::size_t n) const noexcept { return n / block_ + 2; }
  // The digit in progress, or '\0'.
  char digit_in_progress() const noexcept { return active_digit_; }
  int sample_rate() const noexcept { return config_.sample_rate; }
  std::size_t block_size() const noexcept { return block_; }  // M
  const DtmfDetectorStats& stats() const noexcept { return stats_; }
  const DtmfDetectorConfig& config() const noexcept { return config_; }

  static constexpr std::size_t kMaxBlock = 306;  // M at 48 kHz
  static constexpr int kWindowsToStart = 4;
  static constexpr int kWindowsToEnd = 4;

 private:
  // Result of one window: a digit or '\0'.
  char classify_window() noexcept;
  void end_sub_block() noexcept;
  // Limits of one classification (strict, or relaxed for the digit in progress).
  struct Limits {
    double min_power, normal_twist, reverse_twist, tone_ratio, frequency_deviation;
  };
  // The tests run on candidate windows only. 0: passed, 1: frequency, 2: harmonic.
  int candidate_tests(int row, int col, double max_deviation) const noexcept;
  // Deviation in Hz of the tone near frequency_of(index) (NaN if there is none).
  double frequency_deviation(int index) const noexcept;
  struct Complex {
    double re, im;
  };
  Complex hann_dft(double frequency) const noexcept;   // over the whole window
  Complex hann_kernel(double theta) const noexcept;    // sum_n hann_full_[n] e^{j theta n}
  void emit(DtmfEventKind kind, char digit, std::uint64_t start, std::uint64_t end) noexcept;

  DtmfDetectorConfig config_;
  std::size_t block_;     // M
  std::size_t hann_len_;  // L of the frequency estimator
  std::size_t hann_hop_;  // D of the frequency estimator

  // Per frequency (0-3 low group, 4-7 high group).
  float coef_[8];             // 2 cos(w)
  double cos_w_[8], sin_w_[8];
  double rot_end_re_[8], rot_end_im_[8];    // e^{-jw(M-1)}: Goertzel output -> DFT from the sub-block start
  double rot_block_re_[8], rot_block_im_[8];  // e^{-jwM}: second sub-block relative to the window start
  float s1_[8], s2_[8];
  double prev_re_[8], prev_im_[8];  // DFT of the previous sub-block
  double cur_re_[8], cur_im_[8];
  double prev_energy_;  // sum of squares of the previous sub-block
  double cur_energy_;
  bool have_prev_;
  std::size_t fill_;    // samples in the current sub-block
  std::uint64_t sub_blocks_;  // completed sub-blocks

  // Thresholds derived from the config, in window power units.
  Limits strict_, relaxed_;
  double relative_peak_, harmonic_ratio_;

  // The last two sub-blocks' samples (the window), for the candidate-only tests.
  float window_[2 * kMaxBlock];
  float hann_[2 * kMaxBlock];       // L-sample Hann of the frequency estimator
  float hann_full_[2 * kMaxBlock];  // 2M-sample Hann of the harmonic test

  // Decision state.
  char run_digit_;           // digit of the current run of valid windows
  int run_length_;
  std::uint64_t run_start_;  // start sample of the run's first window
  char active_digit_;
  std::uint64_t active_start_;
  std::uint64_t active_last_end_;  // end of the last window valid for the active digit
  int active_row_, active_col_;
  double ref_row_, ref_col_;       // the active digit's tone powers in its last valid window
  int misses_;
  double power_[8];                // tone powers of the last classified window

  DtmfEvent* out_;
  std::size_t out_capacity_;
  std::size_t out_count_;

  DtmfDetectorStats stats_;
};

}  // namespace mediacore
