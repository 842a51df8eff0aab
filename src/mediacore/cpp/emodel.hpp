// The E-model (ITU-T G.107 (06/2015), narrowband): transmission rating R and
// the MOS estimate derived from it, plus a burst-loss estimator for BurstR.
//
//   R = Ro - Is - Id - Ie,eff + A                                     (7-1)
//   Ro: basic signal-to-noise ratio from the loudness ratings and noise (7-2..7-7)
//   Is: simultaneous impairments Iolr + Ist + Iq                       (7-8..7-16)
//   Id: delay impairments Idte (talker echo) + Idle (listener echo)
//       + Idd (absolute delay Ta, with mT/sT)                           (7-17..7-28)
//   Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)              (7-29)
//   MOS (Annex B, B-4): 1 for R < 0; 4.5 for R > 100; otherwise
//       1 + 0.035 R + R (R - 60) (100 - R) 7e-6 (which dips just under 1
//       for 0 < R < 6.5, as the Recommendation's formula does).
// With every default of Table 3, R = 93.2 and MOS = 4.41.
//
// Codec values (Ie, Bpl):
//   G.711 without PLC: 0, 4.3 and G.711 with its Appendix I PLC: 0, 25.1
//   (ITU-T G.113 Appendix I, random loss); G.729A + VAD: 11, 19.0 (G.113
//   Appendix I).
//   Opus: the ITU publishes no narrowband Ie/Bpl for Opus. We use Ie = 0 (at
//   the rates we run, Opus is at least as good as G.711, the ceiling of the
//   narrowband scale) and Bpl = 25.1 (it conceals loss at least as well as
//   G.711 with PLC; its FEC is not credited). These are the project's
//   provisional values, not a standard's; G.107.1 (wideband) would rate Opus
//   on its own scale and is not implemented.
//
// BurstR (G.107 7.5): for a two-state Markov loss model with p = P(loss |
// previous packet received) and q = P(received | previous packet lost),
// BurstR = 1 / (p + q); random loss gives 1. BurstEstimator counts the
// transitions of the observed loss sequence.
//
// Nothing here allocates or throws.
#pragma once

#include <cstdint>

namespace mediacore::emodel {

// Table 3 of G.107 with its default values (units: dB, dBm0p, ms, %).
struct Params {
  double SLR = 8;      // send loudness rating
  double RLR = 2;      // receive loudness rating
  double STMR = 15;    // sidetone masking rating
  double LSTR = 18;    // listener sidetone rating
  double Ds = 3;       // D-value of telephone, send side
  double Dr = 3;       // D-value of telephone, receive side
  double TELR = 65;    // talker echo loudness rating
  double WEPL = 110;   // weighted echo path loss
  double T = 0;        // mean one-way delay of the echo path
  double Tr = 0;       // round-trip delay in a 4-wire loop
  double Ta = 0;       // absolute one-way delay
  double qdu = 1;      // quantizing distortion units
  double Ie = 0;       // equipment impairment factor
  double Bpl = 4.3;    // packet-loss robustness factor
  double Ppl = 0;      // random packet-loss probability, percent
  double BurstR = 1;   // burst ratio
  double Nc = -70;     // circuit noise referred to the 0 dBr point (dBm0p)
  double Nfor = -64;   // noise floor at the receive side (dBmp)
  double Ps = 35;      // room noise at the send side (dB(A))
  double Pr = 35;      // room noise at the receive side (dB(A))
  double A = 0;        // advantage factor
  double mT = 100;     // minimum perceivable delay (Idd)
  double sT = 1;       // delay sensitivity (Idd)
};

struct Result {
  double R = 0;
  double Ro = 0;
  double Is = 0;
  double Id = 0;
  double Idte = 0;
  double Idle = 0;
  double Idd = 0;
  double Ie_eff = 0;
  double mos = 0;
};

// The whole computation with its intermediate terms. Inputs are used as
// given (garbage in, garbage out: NaN propagates); estimate_* below sanitise.
Result compute(const Params& p) noexcept;
double r_factor(const Params& p) noexcept;
double mos_from_r(double r) noexcept;
// Ie,eff (7-29).
double effective_ie(double ie, double bpl, double ppl, double burst_r) noexcept;

enum class Codec : std::uint8_t { G711 = 0, G711_PLC = 1, G729A = 2, OPUS = 3 };
struct CodecImpairment {
  double ie;
  double bpl;
};
CodecImpairment codec_impairment(Codec codec) noexcept;

// R and MOS for a codec at a one-way mouth-to-ear delay (ms), a packet loss
// percentage and a burst ratio, other parameters at their defaults. The
// delay is used as Ta and T, and 2x as Tr (G.107's usual assumption when the
// echo paths are not known). NaN or negative delay/loss count as 0, loss is
// capped at 100, BurstR below 1 (or NaN) counts as 1.
double estimate_r(Codec codec, double delay_ms, double loss_percent, double burst_ratio = 1.0) noexcept;
double estimate_mos(Codec codec, double delay_ms, double loss_percent, double burst_ratio = 1.0) noexcept;

// Two-state Markov (Gilbert) estimate of the loss process from the observed
// sequence of received/lost packets.
class BurstEstimator {
 public:
  void on_received() noexcept { step(false, 1); }
  void on_lost(std::uint32_t count = 1) noexcept { step(true, count); }
  // Per received RTP packet: a forward gap in sequence numbers is counted as
  // losses first. Late or duplicate packets (behind the highest) are ignored,
  // and a forward jump of max_gap or more is a restart, not a loss burst.
  void on_sequence(std::uint16_t seq, std::uint32_t max_gap = 3000) noexcept;
  void reset() noexcept { *this = BurstEstimator{}; }

  std::uint64_t received() const noexcept { return received_; }
  std::uint64_t lost() const noexcept { return lost_; }
  // Loss percentage over everything observed.
  double loss_percent() const noexcept;
  // Transition probabilities (0 when the state was never left/entered).
  double p() const noexcept;  // received -> lost
  double q() const noexcept;  // lost -> received
  // 1 / (p + q), at least 1 (anti-bursty patterns count as random); 1 with no loss.
  double burst_ratio() const noexcept;

 private:
  void step(bool lost, std::uint32_t count) noexcept;
  std::uint64_t received_ = 0;
  std::uint64_t lost_ = 0;
  std::uint64_t from_received_ = 0;    // transitions out of "received"
  std::uint64_t received_to_lost_ = 0;
  std::uint64_t from_lost_ = 0;        // transitions out of "lost"
  std::uint64_t lost_to_received_ = 0;
  bool have_state_ = false;
  bool last_lost_ = false;
  bool have_seq_ = false;
  std::uint16_t highest_seq_ = 0;
};

}  // namespace mediacore::emodel
