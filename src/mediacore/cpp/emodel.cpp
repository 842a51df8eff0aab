#include "emodel.hpp"

#include <cmath>

namespace mediacore::emodel {

namespace {

double lg(double x) { return std::log10(x); }
double p10(double x) { return std::pow(10.0, x); }

}  // namespace

double effective_ie(double ie, double bpl, double ppl, double burst_r) noexcept {
  if (ppl <= 0) return ie;
  return ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl);  // (7-29)
}

double mos_from_r(double r) noexcept {
  if (std::isnan(r)) return r;
  if (r < 0) return 1.0;
  if (r > 100) return 4.5;
  return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6;  // (B-4)
}

Result compute(const Params& p) noexcept {
  Result out;
  // 7.2 Basic signal-to-noise ratio.
  const double OLR = p.SLR + p.RLR;
  const double Nfo = p.Nfor + p.RLR;                                                    // (7-6)
  const double Pre = p.Pr + 10.0 * lg(1.0 + p10((10.0 - p.LSTR) / 10.0));               // (7-7)
  const double Nor = p.RLR - 121.0 + Pre + 0.008 * (Pre - 35.0) * (Pre - 35.0);         // (7-5)
  const double Nos = p.Ps - p.SLR - p.Ds - 100.0 +
                     0.004 * (p.Ps - OLR - p.Ds - 14.0) * (p.Ps - OLR - p.Ds - 14.0);   // (7-4)
  const double No = 10.0 * lg(p10(p.Nc / 10.0) + p10(Nos / 10.0) + p10(Nor / 10.0) + p10(Nfo / 10.0));  // (7-3)
  const double Ro = 15.0 - 1.5 * (p.SLR + No);                                          // (7-2)

  // 7.3 Simultaneous impairment factor.
  const double Q = 37.0 - 15.0 * lg(p.qdu);                                             // (7-16)
  const double G = 1.07 + 0.258 * Q + 0.0602 * Q * Q;                                   // (7-15)
  const double Z = 46.0 / 30.0 - G / 40.0;                                              // (7-14)
  const double Y = (Ro - 100.0) / 15.0 + 46.0 / 8.4 - G / 9.0;                          // (7-13)
  const double Iq = 15.0 * lg(1.0 + p10(Y) + p10(Z));                                   // (7-12)
  const double STMRo = -10.0 * lg(p10(-p.STMR / 10.0) + std::exp(-p.T / 4.0) * p10(-p.TELR / 10.0));  // (7-11)
  const double Ist = 12.0 * std::pow(1.0 + std::pow((STMRo - 13.0) / 6.0, 8.0), 1.0 / 8.0) -
                     28.0 * std::pow(1.0 + std::pow((STMRo + 1.0) / 19.4, 35.0), 1.0 / 35.0) -
                     13.0 * std::pow(1.0 + std::pow((STMRo - 3.0) / 33.0, 13.0), 1.0 / 13.0) + 29.0;  // (7-10)
  const double Xolr = OLR + 0.2 * (64.0 + No - p.RLR);                                  // (7-9)
  const double Iolr = 20.0 * (std::pow(1.0 + std::pow(Xolr / 8.0, 8.0), 1.0 / 8.0) - Xolr / 8.0);  // (7-8)
  const double Is = Iolr + Ist + Iq;

  // 7.4 Delay impairment factor.
  const double Roe = -1.5 * (No - p.RLR);                                               // (7-20)
  double TERV = p.TELR - 40.0 * lg((1.0 + p.T / 10.0) / (1.0 + p.T / 150.0)) +
                6.0 * std::exp(-0.3 * p.T * p.T);                                       // (7-22)
  if (p.STMR < 9.0) TERV += Ist / 2.0;                                                  // TERVs (7-23)
  const double Re = 80.0 + 2.5 * (TERV - 14.0);                                         // (7-21)
  double Idte = ((Roe - Re) / 2.0 + std::sqrt((Roe - Re) * (Roe - Re) / 4.0 + 100.0) - 1.0) *
                (1.0 - std::exp(-p.T));                                                 // (7-19)
  if (p.STMR > 20.0) Idte = std::sqrt(Idte * Idte + Ist * Ist);                         // Idtes (7-24)
  const double Rle = 10.5 * (p.WEPL + 7.0) * std::pow(p.Tr + 1.0, -0.25);              // (7-26)
  const double Idle = (Ro - Rle) / 2.0 + std::sqrt((Ro - Rle) * (Ro - Rle) / 4.0 + 169.0);  // (7-25)
  double Idd = 0;
  if (p.Ta > p.mT) {
    const double X = lg(p.Ta / p.mT) / lg(2.0);                                         // (7-28)
    const double e = 6.0 * p.sT;
    Idd = 25.0 * (std::pow(1.0 + std::pow(X, e), 1.0 / e) - 3.0 * std::pow(1.0 + std::pow(X / 3.0, e), 1.0 / e) +
                  2.0);                                                                 // (7-27)
  }
  const double Id = Idte + Idle + Idd;                                                  // (7-18)

  // 7.5 Equipment impairment.
  const double Ie_eff = effective_ie(p.Ie, p.Bpl, p.Ppl, p.BurstR);

  out.Ro = Ro;
  out.Is = Is;
  out.Idte = Idte;
  out.Idle = Idle;
  out.Idd = Idd;
  out.Id = Id;
  out.Ie_eff = Ie_eff;
  out.R = Ro - Is - Id - Ie_eff + p.A;                                                  // (7-1)
  out.mos = mos_from_r(out.R);
  return out;
}

double r_factor(const Params& p) noexcept { return compute(p).R; }

CodecImpairment codec_impairment(Codec codec) noexcept {
  switch (codec) {
    case Codec::G711: return {0.0, 4.3};
    case Codec::G711_PLC: return {0.0, 25.1};
    case Codec::G729A: return {11.0, 19.0};
    case Codec::OPUS: return {0.0, 25.1};  // provisional, see the header
  }
  return {0.0, 4.3};
}

double estimate_r(Codec codec, double delay_ms, double loss_percent, double burst_ratio) noexcept {
  if (!(delay_ms > 0)) delay_ms = 0;  // also NaN
  if (!(loss_percent > 0)) loss_percent = 0;
  if (loss_percent > 100) loss_percent = 100;
  if (!(burst_ratio >= 1)) burst_ratio = 1;
  if (delay_ms > 1e6) delay_ms = 1e6;  // keep pow() finite; R is far below 0 long before
  const CodecImpairment c = codec_impairment(codec);
  Params p;
  p.Ta = delay_ms;
  p.T = delay_ms;
  p.Tr = 2.0 * delay_ms;
  p.Ie = c.ie;
  p.Bpl = c.bpl;
  p.Ppl = loss_percent;
  p.BurstR = burst_ratio;
  return r_factor(p);
}

double estimate_mos(Codec codec, double delay_ms, double loss_percent, double burst_ratio) noexcept {
  return mos_from_r(estimate_r(codec, delay_ms, loss_percent, burst_ratio));
}

// ---------------------------------------------------------------- BurstEstimator

void BurstEstimator::step(bool lost, std::uint32_t count) noexcept {
  if (count == 0) return;
  if (have_state_) {
    // The transition into this run.
    if (last_lost_) {
      ++from_lost_;
      if (!lost) ++lost_to_received_;
    } else {
      ++from_received_;
      if (lost) ++received_to_lost_;
    }
  }
  // The transitions inside the run stay in the same state.
  if (lost) {
    from_lost_ += count - 1u;
    lost_ += count;
  } else {
    from_received_ += count - 1u;
    received_ += count;
  }
  have_state_ = true;
  last_lost_ = lost;
}

void BurstEstimator::on_sequence(std::uint16_t seq, std::uint32_t max_gap) noexcept {
  if (!have_seq_) {
    have_seq_ = true;
    highest_seq_ = seq;
    on_received();
    return;
  }
  const auto delta = static_cast<std::uint16_t>(seq - highest_seq_);
  if (delta == 0 || delta >= 0x8000u) return;  // duplicate or late
  highest_seq_ = seq;
  if (delta < max_gap) on_lost(delta - 1u);
  on_received();
}

double BurstEstimator::loss_percent() const noexcept {
  const std::uint64_t total = received_ + lost_;
  return total ? 100.0 * static_cast<double>(lost_) / static_cast<double>(total) : 0.0;
}

double BurstEstimator::p() const noexcept {
  return from_received_ ? static_cast<double>(received_to_lost_) / static_cast<double>(from_received_) : 0.0;
}

double BurstEstimator::q() const noexcept {
  return from_lost_ ? static_cast<double>(lost_to_received_) / static_cast<double>(from_lost_) : 0.0;
}

double BurstEstimator::burst_ratio() const noexcept {
  if (lost_ == 0) return 1.0;
  const double s = p() + q();
  if (!(s > 0)) return 1.0;  // nothing to estimate from (e.g. everything lost)
  const double b = 1.0 / s;
  return b < 1.0 ? 1.0 : b;
}

}  // namespace mediacore::emodel
