// RFC 4733 telephone-event: DTMF digits and named events in RTP.
//
// Payload (RFC 4733 section 2.3, figure 1), one or more 4-byte blocks:
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   |     event     |E|R| volume    |          duration             |
// event: 0-9, * (10), # (11), A-D (12-15), flash (16) (section 3.2); E: the
// event has ended (2.3.2); R: reserved, sent as 0, ignored (2.3.3); volume:
// power level of the tone, 0 to -63 dBm0 expressed as 0-63 (2.3.4); duration:
// of the event so far, in RTP timestamp units, from the RTP timestamp (2.3.5).
// Several blocks in one packet are consecutive events: the RTP timestamp is the
// first one's start and each next one starts where the previous ended (2.5.1.5).
//
// Sender (2.5.1): the first packet of an event carries the M bit; updates are
// sent every packet interval with the same timestamp and a growing duration;
// the final packet has the E bit and is sent three times (2.5.1.4, its
// retransmissions are separate RTP packets: new sequence numbers, same
// timestamp and duration). An event longer than 0xFFFF timestamp units is cut
// into segments (2.5.1.3): the segment's last packet reports 0xFFFF without the
// E bit (also sent three times), and the next segment's timestamp is the
// previous one plus 0xFFFF; only the first segment's first packet has the M
// bit. tick() returns at most one packet, so a segment's final retransmissions
// delay the next segment's first update by two intervals (its duration covers
// the whole time, so nothing is lost).
//
// Receiver (2.5.2): one digit per event, keyed by (timestamp, event), whatever
// happens to the packets: repeated or lost start packets (the M bit is not
// needed), retransmitted and lost end packets, reordering (a late packet of an
// earlier event is dropped, never reported as a new digit), a new event
// beginning before the previous one's end was seen (the previous one ends, with
// reason kNewEvent), no end at all (kTimeout after timeout_ms without an
// update), and segments of long events (a packet for the same event whose
// timestamp is the current segment's plus 0xFFFF continues the digit).
// Events above 16 are counted and ignored. Zero-duration packets are accepted
// as a start (RFC 4733 2.3.5 says a receiver SHOULD ignore them for non-state
// events, but RFC 2833 senders, the SIPp captures among them, send their start
// packet with duration 0, and ignoring it only delays the digit).
//
// The per-packet methods never allocate and never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace mediacore::telephone_event {

inline constexpr std::size_t kBlockSize = 4;
inline constexpr std::size_t kMaxBlocks = 16;     // longer payloads are refused as malformed
inline constexpr std::uint8_t kMaxVolume = 63;
inline constexpr std::uint8_t kMaxKnownEvent = 16;  // 0-15 DTMF, 16 flash
inline constexpr std::uint32_t kMaxSegmentDuration = 0xFFFF;

struct EventBlock {
  std::uint8_t event;
  bool end;
  std::uint8_t volume;  // 0-63, -dBm0
  std::uint16_t duration;
};

enum ParseError : int { kEmpty = -1, kNotMultipleOf4 = -2, kTooManyBlocks = -3, kNoRoom = -4 };

// Parse a payload into blocks. Returns the number of blocks (>= 1) or a
// ParseError. The R bit is ignored.
int parse(const std::uint8_t* payload, std::size_t size, EventBlock* out, std::size_t capacity) noexcept;
// Write one block (4 bytes, R = 0). Returns 4, or -1 if capacity < 4 or volume > 63.
int serialize(const EventBlock& block, std::uint8_t* out, std::size_t capacity) noexcept;

}  // namespace mediacore::telephone_event

namespace mediacore {

struct TelephoneEventPacket {
  std::uint32_t timestamp;  // RTP timestamp: start of the event (of the segment)
  bool marker;
  std::uint8_t payload[telephone_event::kBlockSize];
  // The payload's fields, for convenience.
  std::uint8_t event;
  bool end;
  std::uint8_t volume;
  std::uint16_t duration;
  bool retransmission;  // a repeat of the previous packet (final packet sent again)
};

struct TelephoneEventSenderConfig {
  int clock_rate = 8000;
  std::uint32_t packet_interval = 160;  // timestamp units between packets (the ptime)
  int end_repeats = 3;                  // times the final packet is sent (RFC 4733 2.5.1.4)
  std::uint32_t min_gap = 0;            // timestamp units from an event's end to the next start
};

struct TelephoneEventSenderStats {
  std::uint64_t packets = 0;
  std::uint64_t events = 0;
  std::uint64_t segments = 0;  // segments after the first (events longer than 0xFFFF)
  std::uint64_t rejected = 0;  // enqueue() refusals (queue full, bad argument)
};

class TelephoneEventSender {
 public:
  explicit TelephoneEventSender(const TelephoneEventSenderConfig& config = {});  // throws std::invalid_argument

  static constexpr std::size_t kQueueCapacity = 64;

  // Queue an event: code 0-255 (0-16 are the named ones), duration in
  // timestamp units (>= 1), volume 0-63. Returns 0, -1 if the queue is full,
  // -2 for a bad argument.
  int enqueue(std::uint8_t event, std::uint32_t duration, std::uint8_t volume) noexcept;

  // Call once per packet interval with the RTP timestamp of that interval's
  // start (the timestamp an audio packet sent now would carry; it advances by
  // packet_interval each call). Returns 1 and fills *out when a packet is due,
  // 0 when there is nothing to send.
  int tick(std::uint32_t now, TelephoneEventPacket* out) noexcept;

  // Drop queued events; an event in progress is ended at once (its next packet
  // is the final one, with the duration reached so far).
  void cancel() noexcept;
  bool idle() const noexcept { return state_ == State::kIdle && count_ == 0; }
  std::size_t queued() const noexcept { return count_; }
  const TelephoneEventSenderStats& stats() const noexcept { return stats_; }
  const TelephoneEventSenderConfig& config() const noexcept { return config_; }

 private:
  struct Queued {
    std::uint8_t event;
    std::uint8_t volume;
    std::uint32_t duration;
  };
  enum class State : std::uint8_t { kIdle, kSending, kRepeating };

  TelephoneEventSenderConfig config_;
  Queued queue_[kQueueCapacity];
  std::size_t head_ = 0, count_ = 0;

  State state_ = State::kIdle;
  Queued current_{};
  std::uint32_t event_start_ = 0;    // timestamp of the event's first segment
  std::uint32_t segment_start_ = 0;  // timestamp of the current segment
  std::uint32_t sent_ = 0;           // duration reported so far (whole event)
  bool first_packet_ = false;
  bool final_segment_ = false;       // the repeated packet ends the event (not just a segment)
  int repeats_left_ = 0;
  TelephoneEventPacket last_{};
  bool have_next_start_ = false;
  std::uint32_t next_start_ = 0;     // earliest timestamp for the next event
  TelephoneEventSenderStats stats_;
};

enum class TelephoneEventReportKind : std::uint8_t { kStart = 0, kEnd = 1 };
enum class TelephoneEventEndReason : std::uint8_t {
  kNone = 0,      // (start reports)
  kEndBit = 1,    // a packet with the E bit
  kNewEvent = 2,  // a later event began: this one's end packets were lost
  kTimeout = 3,   // no update for timeout_ms
  kFlush = 4,     // flush() (stream closed)
};

struct TelephoneEventReport {
  TelephoneEventReportKind kind;
  TelephoneEventEndReason reason;
  std::uint8_t event;
  std::uint8_t volume;
  std::uint32_t timestamp;  // RTP timestamp of the event's start
  std::uint32_t duration;   // kEnd: total, segments included, in timestamp units
};

struct TelephoneEventReceiverConfig {
  int clock_rate = 8000;
  std::int64_t timeout_ms = 500;  // end an event not updated for this long
};

struct TelephoneEventReceiverStats {
  std::uint64_t packets = 0;
  std::uint64_t malformed = 0;       // empty, not a multiple of 4 bytes, or more than 16 blocks
  std::uint64_t unknown_events = 0;  // blocks with an event code above 16 (ignored)
  std::uint64_t duplicates = 0;      // blocks of events already ended (end retransmissions, late updates)
  std::uint64_t stale = 0;           // blocks of events older than the last one (reordered, never reported)
  std::uint64_t events = 0;          // events started
  std::uint64_t lost_ends = 0;       // events ended by kNewEvent
  std::uint64_t timeouts = 0;        // events ended by kTimeout
  std::uint64_t segments = 0;        // long-event continuations
  std::uint64_t reports_dropped = 0; // reports that did not fit the caller's buffer
};

class TelephoneEventReceiver {
 public:
  explicit TelephoneEventReceiver(const TelephoneEventReceiverConfig& config = {});  // throws std::invalid_argument

  // Enough room for the reports of any one packet.
  static constexpr std::size_t kMaxReportsPerPacket = 3 * telephone_event::kMaxBlocks;

  // Consume one packet of the telephone-event payload type. `now_ms` is the
  // arrival time on any monotonic millisecond clock; pass kNoTime to skip the
  // timeout check. The marker bit is accepted but not relied on: it may be
  // lost, and a repeated start packet must not make a second digit. Returns
  // the number of reports written, or -1 for a malformed payload (counted,
  // nothing else changes).
  int receive(std::uint32_t timestamp, bool marker, const std::uint8_t* payload, std::size_t size,
              std::int64_t now_ms, TelephoneEventReport* out, std::size_t capacity) noexcept;
  // End an event that has not been updated for timeout_ms. Returns reports written (0 or 1).
  int poll(std::int64_t now_ms, TelephoneEventReport* out, std::size_t capacity) noexcept;
  // End the event in progress, if any (the stream is closing). Returns 0 or 1.
  int flush(TelephoneEventReport* out, std::size_t capacity) noexcept;
  // Forget everything (new SSRC); statistics are kept.
  void reset() noexcept;

  bool active() const noexcept { return active_; }
  std::uint8_t active_event() const noexcept { return event_; }
  const TelephoneEventReceiverStats& stats() const noexcept { return stats_; }
  const TelephoneEventReceiverConfig& config() const noexcept { return config_; }

  static constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

 private:
  struct Key {
    std::uint32_t timestamp;
    std::uint8_t event;
  };
  void process_block(std::uint32_t timestamp, const telephone_event::EventBlock& block, std::int64_t now_ms);
  void end_active(TelephoneEventEndReason reason);
  void remember(std::uint32_t timestamp, std::uint8_t event);
  bool remembered(std::uint32_t timestamp, std::uint8_t event) const;
  void check_timeout(std::int64_t now_ms);
  void emit(const TelephoneEventReport& report);

  TelephoneEventReceiverConfig config_;
  std::uint32_t stale_window_;  // how far back a timestamp counts as "older", not as a new stream

  bool active_ = false;
  std::uint8_t event_ = 0;
  std::uint8_t volume_ = 0;
  std::uint32_t start_ts_ = 0;    // first segment
  std::uint32_t segment_ts_ = 0;  // current segment
  std::uint32_t base_ = 0;        // duration of the completed segments
  std::uint32_t segment_duration_ = 0;
  std::int64_t last_update_ms_ = 0;
  bool have_time_ = false;

  bool have_last_ = false;
  std::uint32_t last_ts_ = 0;  // newest segment timestamp seen

  // Ended events, to recognise their late packets. Older timestamps are caught
  // by the staleness rule; the ring must hold every event that can share one
  // timestamp (the 17 known codes), so that none is ever reported twice.
  static constexpr std::size_t kRecent = 24;
  Key recent_[kRecent];
  std::size_t recent_count_ = 0, recent_next_ = 0;

  TelephoneEventReport* out_ = nullptr;
  std::size_t out_capacity_ = 0, out_count_ = 0;
  TelephoneEventReceiverStats stats_;
};

}  // namespace mediacore
