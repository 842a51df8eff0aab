#include "rtp_stats.hpp"

#include <stdexcept>

namespace mediacore::rtp_stats {

namespace {

constexpr std::uint32_t kSeqMod = 1u << 16;
constexpr std::int64_t kNsPerSecond = 1'000'000'000;

__extension__ typedef __int128 i128;

// floor(a / b) for b > 0.
constexpr i128 floor_div(i128 a, i128 b) { return a / b - ((a % b != 0) && (a < 0) ? 1 : 0); }

}  // namespace

// ---------------------------------------------------------------- NTP

std::uint64_t ntp_from_unix_ns(std::int64_t unix_ns) noexcept {
  const i128 secs = floor_div(unix_ns, kNsPerSecond);
  const i128 rem = unix_ns - secs * kNsPerSecond;  // 0 .. 1e9-1
  const auto frac = static_cast<std::uint64_t>((rem << 32) / kNsPerSecond);
  const auto ntp_secs = static_cast<std::uint64_t>(secs + static_cast<i128>(kNtpUnixOffsetSeconds));
  return (ntp_secs << 32) | frac;
}

std::int64_t unix_ns_from_ntp(std::uint64_t ntp) noexcept {
  const std::int64_t secs = static_cast<std::int64_t>(ntp >> 32) - static_cast<std::int64_t>(kNtpUnixOffsetSeconds);
  const auto frac_ns = static_cast<std::int64_t>(((ntp & 0xFFFFFFFFu) * static_cast<std::uint64_t>(kNsPerSecond)) >> 32);
  return secs * kNsPerSecond + frac_ns;
}

std::int64_t rtt_q16(std::uint32_t arrival_middle32, std::uint32_t last_sr, std::uint32_t dlsr) noexcept {
  if (last_sr == 0) return -1;
  const auto rtt = static_cast<std::int32_t>(arrival_middle32 - last_sr - dlsr);
  return rtt < 0 ? -1 : rtt;
}

// ---------------------------------------------------------------- receiving

std::int64_t ReceiveStats::timestamp_units(std::int64_t ns, std::uint32_t clock_rate) noexcept {
  return static_cast<std::int64_t>(floor_div(static_cast<i128>(ns) * clock_rate, kNsPerSecond));
}

ReceiveStats::ReceiveStats(std::uint32_t ssrc, const Config& config) : ssrc_(ssrc), config_(config) {
  if (config.clock_rate == 0) throw std::invalid_argument("clock_rate must be positive");
  if (config.min_sequential < 1 || config.min_sequential > 1000)
    throw std::invalid_argument("min_sequential must be in 1..1000");
  if (config.max_dropout < 1 || config.max_dropout > 32767)
    throw std::invalid_argument("max_dropout must be in 1..32767");
  if (config.max_misorder < 1 || config.max_misorder > 32767)
    throw std::invalid_argument("max_misorder must be in 1..32767");
}

void ReceiveStats::init_seq(std::uint16_t seq) noexcept {
  base_seq_ = seq;
  max_seq_ = seq;
  bad_seq_ = kSeqMod + 1;  // so seq == bad_seq is false
  cycles_ = 0;
  received_ = 0;
  received_prior_ = 0;
  expected_prior_ = 0;
}

int ReceiveStats::update_seq(std::uint16_t seq) noexcept {
  const auto udelta = static_cast<std::uint16_t>(seq - max_seq_);
  if (probation_) {
    if (seq == static_cast<std::uint16_t>(max_seq_ + 1)) {  // in sequence
      --probation_;
      max_seq_ = seq;
      if (probation_ == 0) {
        init_seq(seq);
        ++received_;
        return 1;
      }
    } else {
      probation_ = static_cast<std::uint32_t>(config_.min_sequential) - 1;
      max_seq_ = seq;
    }
    ++probation_dropped_;
    return 0;
  }
  if (udelta < static_cast<std::uint32_t>(config_.max_dropout)) {
    // In order, with a permissible gap.
    if (seq < max_seq_) cycles_ += kSeqMod;  // wrapped
    max_seq_ = seq;
  } else if (udelta <= kSeqMod - static_cast<std::uint32_t>(config_.max_misorder)) {
    // A very large jump.
    if (seq == bad_seq_) {
      // Two sequential packets: the other side restarted without telling us.
      init_seq(seq);
      ++restarts_;
      restarted_ = true;
    } else {
      bad_seq_ = (seq + 1u) & (kSeqMod - 1);
      ++bad_sequence_;
      return 0;
    }
  } else {
    ++late_;  // duplicate or reordered
  }
  ++received_;
  return 1;
}

int ReceiveStats::on_packet(std::uint16_t seq, std::uint32_t rtp_timestamp, std::int64_t arrival_ns,
                            std::size_t payload_bytes) noexcept {
  ++packets_;
  if (!started_) {
    // A new source (A.1): probation starts with this packet.
    started_ = true;
    init_seq(seq);
    max_seq_ = static_cast<std::uint16_t>(seq - 1);
    probation_ = static_cast<std::uint32_t>(config_.min_sequential);
  }
  if (!update_seq(seq)) return 0;
  payload_octets_ += payload_bytes;

  // A.8, in integer arithmetic with the estimate scaled by 16.
  const auto arrival = static_cast<std::uint32_t>(timestamp_units(arrival_ns, config_.clock_rate));
  const std::uint32_t transit = arrival - rtp_timestamp;
  if (!have_transit_ || restarted_) {
    have_transit_ = true;
    restarted_ = false;
  } else {
    std::int64_t d = static_cast<std::int32_t>(transit - transit_);
    if (d < 0) d = -d;
    jitter_q4_ += d - ((jitter_q4_ + 8) >> 4);
  }
  transit_ = transit;
  return 1;
}

void ReceiveStats::on_sender_report(std::uint64_t ntp_timestamp, std::int64_t arrival_ns) noexcept {
  have_sr_ = true;
  last_sr_ = ntp_middle32(ntp_timestamp);
  last_sr_arrival_ns_ = arrival_ns;
}

LossFields loss_fields(std::int64_t expected, std::uint64_t received, std::int64_t expected_interval,
                       std::int64_t received_interval) noexcept {
  LossFields f;
  std::int64_t lost = expected - static_cast<std::int64_t>(received);
  if (lost > 0x7FFFFF) lost = 0x7FFFFF;
  if (lost < -0x800000) lost = -0x800000;
  f.cumulative_lost = static_cast<std::int32_t>(lost);
  const std::int64_t lost_interval = expected_interval - received_interval;
  if (expected_interval > 0 && lost_interval > 0) {
    // 256 (everything lost) does not fit the 8-bit field: report 255.
    const std::int64_t fraction = (lost_interval << 8) / expected_interval;
    f.fraction_lost = static_cast<std::uint8_t>(fraction > 255 ? 255 : fraction);
  }
  return f;
}

ReceiveSnapshot ReceiveStats::snapshot() const noexcept {
  ReceiveSnapshot s;
  s.ssrc = ssrc_;
  s.valid = started_ && probation_ == 0;
  s.max_seq = max_seq_;
  s.cycles = cycles_;
  s.base_seq = base_seq_;
  s.extended_max = cycles_ + max_seq_;
  s.received = received_;
  if (s.valid) {
    s.expected = static_cast<std::int64_t>(s.extended_max) - static_cast<std::int64_t>(base_seq_) + 1;
    s.lost = s.expected - static_cast<std::int64_t>(received_);
  }
  s.jitter = static_cast<std::uint32_t>(jitter_q4_ >> 4);
  s.packets = packets_;
  s.probation_dropped = probation_dropped_;
  s.bad_sequence = bad_sequence_;
  s.restarts = restarts_;
  s.late = late_;
  s.payload_octets = payload_octets_;
  s.have_sr = have_sr_;
  s.last_sr = last_sr_;
  return s;
}

rtcp::ReportBlock ReceiveStats::report_block(std::int64_t now_ns) noexcept {
  const ReceiveSnapshot s = snapshot();
  rtcp::ReportBlock b;
  b.ssrc = ssrc_;
  b.highest_sequence = s.extended_max;
  b.jitter = s.jitter;
  if (s.valid) {
    const std::int64_t expected_interval = s.expected - expected_prior_;
    const auto received_interval = static_cast<std::int64_t>(received_ - received_prior_);
    expected_prior_ = s.expected;
    received_prior_ = received_;
    const LossFields f = loss_fields(s.expected, received_, expected_interval, received_interval);
    b.fraction_lost = f.fraction_lost;
    b.cumulative_lost = f.cumulative_lost;
  }
  if (have_sr_) {
    b.last_sr = last_sr_;
    const i128 since = static_cast<i128>(now_ns) - last_sr_arrival_ns_;  // no int64 overflow
    if (since > 0) {
      const i128 q16 = (since << 16) / kNsPerSecond;
      b.delay_since_last_sr = q16 > 0xFFFFFFFF ? 0xFFFFFFFFu : static_cast<std::uint32_t>(q16);
    }
  }
  return b;
}

// ---------------------------------------------------------------- sending

SendStats::SendStats(std::uint32_t ssrc, std::uint32_t clock_rate) : ssrc_(ssrc), clock_rate_(clock_rate) {
  if (clock_rate == 0) throw std::invalid_argument("clock_rate must be positive");
}

void SendStats::on_sent(std::uint32_t rtp_timestamp, std::size_t payload_bytes, std::int64_t now_ns) noexcept {
  ++packets_;
  octets_ += static_cast<std::uint32_t>(payload_bytes);
  last_timestamp_ = rtp_timestamp;
  last_sent_ns_ = now_ns;
}

rtcp::SenderInfo SendStats::sender_info(std::uint64_t ntp_now, std::int64_t now_ns) const noexcept {
  rtcp::SenderInfo info;
  info.ntp_timestamp = ntp_now;
  info.packet_count = packets_;
  info.octet_count = octets_;
  info.rtp_timestamp = last_timestamp_;
  if (packets_ != 0) {
    // The elapsed time in i128: int64 differences of extreme clock values overflow.
    const i128 elapsed = static_cast<i128>(now_ns) - last_sent_ns_;
    const i128 units = floor_div(elapsed * clock_rate_, kNsPerSecond);
    info.rtp_timestamp += static_cast<std::uint32_t>(static_cast<std::uint64_t>(units & 0xFFFFFFFF));
  }
  return info;
}

}  // namespace mediacore::rtp_stats
