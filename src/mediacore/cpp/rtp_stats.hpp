// RTP receive and send statistics for RTCP reports (RFC 3550).
//
// ReceiveStats is one remote source as RFC 3550 appendix A tracks it:
//   - A.1 source validation and sequence tracking: probation until
//     min_sequential packets arrive in sequence, 16-bit wrap counted in
//     `cycles`, a jump of max_dropout or more is a "bad" sequence number that
//     restarts the sequence only when the next packet confirms it;
//   - A.3 expected / lost / fraction lost, cumulative and per report interval,
//     in the wire formats (8-bit fixed point, signed 24-bit clamped);
//   - A.8 interarrival jitter in timestamp units (the integer form with the
//     estimate scaled by 16);
//   - 6.4.1 LSR / DLSR for the report block, from the last SR received.
// Deviations from the appendix's C code, on purpose:
//   - during probation, "in sequence" uses 16-bit arithmetic
//     (seq == (max_seq + 1) mod 2^16): the appendix compares an int promotion
//     and so never accepts a source whose probation spans the 65535 -> 0 wrap;
//   - jitter's transit is (re)initialised on the first valid packet and after
//     a sequence restart (the appendix leaves the initial value unspecified;
//     a restart is a new timestamp base);
//   - an interval with every packet lost gives fraction 255, not the
//     (lost << 8) / expected = 256 that the 8-bit field would wrap to 0.
//
// SendStats keeps the sender information of our own SR (6.4.1).
//
// Times are nanoseconds of any one clock the caller chooses (monotonic for
// arrivals); NTP timestamps are 32.32 fixed-point seconds since 1900.
// Nothing here allocates after construction or throws outside constructors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rtcp.hpp"

namespace mediacore::rtp_stats {

// ---------------------------------------------------------------- NTP (RFC 3550 section 4)

inline constexpr std::uint64_t kNtpUnixOffsetSeconds = 2208988800u;  // 1900-01-01 to 1970-01-01

// 32.32 NTP timestamp of a Unix time in nanoseconds (fraction rounded down).
std::uint64_t ntp_from_unix_ns(std::int64_t unix_ns) noexcept;
// Unix nanoseconds of an NTP timestamp (era 0, i.e. before 2036-02-07).
std::int64_t unix_ns_from_ntp(std::uint64_t ntp) noexcept;
// The middle 32 bits (16.16) used by LSR and by the RTT computation.
constexpr std::uint32_t ntp_middle32(std::uint64_t ntp) noexcept { return static_cast<std::uint32_t>(ntp >> 16); }
// Round-trip time from a report block received at NTP time `arrival_middle32`
// (6.4.1: A - LSR - DLSR), in units of 1/65536 s. Returns -1 when the block
// carries no LSR (0: no SR received yet) or the result would be negative
// (clock trouble).
std::int64_t rtt_q16(std::uint32_t arrival_middle32, std::uint32_t last_sr, std::uint32_t dlsr) noexcept;

// ---------------------------------------------------------------- receiving

struct Config {
  std::uint32_t clock_rate = 8000;  // RTP timestamp rate of the payload format
  int min_sequential = 2;           // packets in sequence before a source is valid (>= 1)
  int max_dropout = 3000;           // a forward jump this large is "bad" (restart candidate)
  int max_misorder = 100;           // a backward jump within this is a late packet, not a restart
};

struct ReceiveSnapshot {
  std::uint32_t ssrc = 0;
  bool valid = false;                 // out of probation
  std::uint16_t max_seq = 0;
  std::uint32_t cycles = 0;           // shifted count of sequence number wraps
  std::uint32_t base_seq = 0;
  std::uint32_t extended_max = 0;     // cycles + max_seq
  std::uint64_t received = 0;         // valid packets (A.1 "received")
  std::int64_t expected = 0;          // extended_max - base_seq + 1 (0 before valid)
  std::int64_t lost = 0;              // expected - received, unclamped (negative with duplicates)
  std::uint32_t jitter = 0;           // timestamp units (the estimate / 16)
  std::uint64_t packets = 0;          // every on_packet() call
  std::uint64_t probation_dropped = 0;  // refused while in probation
  std::uint64_t bad_sequence = 0;     // refused as a large jump not (yet) confirmed
  std::uint64_t restarts = 0;         // sequence restarts after a confirmed jump
  std::uint64_t late = 0;             // accepted packets behind the highest (reordered or duplicate)
  std::uint64_t payload_octets = 0;   // payload bytes of valid packets
  bool have_sr = false;
  std::uint32_t last_sr = 0;          // LSR of the last SR received
};

class ReceiveStats {
 public:
  // Throws std::invalid_argument for clock_rate 0, min_sequential < 1, or
  // max_dropout / max_misorder outside 1..32767.
  ReceiveStats(std::uint32_t ssrc, const Config& config);

  // One packet from this source (A.1 update_seq, then A.8 jitter). Returns 1
  // when the packet is valid for statistics, 0 when it is not (probation, or
  // a large jump awaiting confirmation).
  int on_packet(std::uint16_t seq, std::uint32_t rtp_timestamp, std::int64_t arrival_ns,
                std::size_t payload_bytes = 0) noexcept;

  // An SR from this source arrived (its NTP timestamp, our arrival time).
  void on_sender_report(std::uint64_t ntp_timestamp, std::int64_t arrival_ns) noexcept;

  // The report block for this source as of now_ns (A.3), closing the interval:
  // fraction_lost covers the packets since the previous report_block() call.
  rtcp::ReportBlock report_block(std::int64_t now_ns) noexcept;

  ReceiveSnapshot snapshot() const noexcept;
  std::uint32_t ssrc() const noexcept { return ssrc_; }

  // RTP timestamp units of a duration in ns, floor((ns * clock_rate) / 1e9), exact for all int64 ns.
  static std::int64_t timestamp_units(std::int64_t ns, std::uint32_t clock_rate) noexcept;

 private:
  void init_seq(std::uint16_t seq) noexcept;
  int update_seq(std::uint16_t seq) noexcept;

  std::uint32_t ssrc_;
  Config config_;
  bool started_ = false;
  std::uint16_t max_seq_ = 0;
  std::uint32_t cycles_ = 0;
  std::uint32_t base_seq_ = 0;
  std::uint32_t bad_seq_ = 0;
  std::uint32_t probation_ = 0;
  std::uint64_t received_ = 0;
  std::int64_t expected_prior_ = 0;
  std::uint64_t received_prior_ = 0;
  bool restarted_ = false;  // set by init_seq on a restart: transit starts over
  bool have_transit_ = false;
  std::uint32_t transit_ = 0;
  std::int64_t jitter_q4_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t probation_dropped_ = 0;
  std::uint64_t bad_sequence_ = 0;
  std::uint64_t restarts_ = 0;
  std::uint64_t late_ = 0;
  std::uint64_t payload_octets_ = 0;
  bool have_sr_ = false;
  std::uint32_t last_sr_ = 0;
  std::int64_t last_sr_arrival_ns_ = 0;
};

// Interval and cumulative loss as A.3 computes them; exposed for tests and for
// callers that keep their own counters.
struct LossFields {
  std::uint8_t fraction_lost = 0;
  std::int32_t cumulative_lost = 0;  // clamped to the signed 24-bit range
};
LossFields loss_fields(std::int64_t expected, std::uint64_t received, std::int64_t expected_interval,
                       std::int64_t received_interval) noexcept;

// ---------------------------------------------------------------- sending

class SendStats {
 public:
  // Throws std::invalid_argument for clock_rate 0.
  SendStats(std::uint32_t ssrc, std::uint32_t clock_rate);
  // We sent one RTP packet with this timestamp and payload size at now_ns.
  void on_sent(std::uint32_t rtp_timestamp, std::size_t payload_bytes, std::int64_t now_ns) noexcept;
  // Sender info for an SR sent at now_ns whose NTP wall-clock time is ntp_now:
  // the RTP timestamp is the last one sent advanced by the time since (6.4.1).
  rtcp::SenderInfo sender_info(std::uint64_t ntp_now, std::int64_t now_ns) const noexcept;
  bool sent_any() const noexcept { return packets_ != 0; }
  std::uint32_t ssrc() const noexcept { return ssrc_; }

 private:
  std::uint32_t ssrc_;
  std::uint32_t clock_rate_;
  std::uint32_t packets_ = 0;  // wraps, as the SR field does
  std::uint32_t octets_ = 0;
  std::uint32_t last_timestamp_ = 0;
  std::int64_t last_sent_ns_ = 0;
};

}  // namespace mediacore::rtp_stats
