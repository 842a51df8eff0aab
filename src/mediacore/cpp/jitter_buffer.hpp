// Adaptive RTP jitter buffer: the packet layer (no decoding, no PCM).
//
// Packets come in with `put(seq, timestamp, ssrc, marker, payload, arrival)`
// in arrival order; `get(now)` is called by a playout clock and returns the
// next frame in RTP timestamp order with an explicit kind (as pjmedia does):
//   Normal     a packet is here for this frame: decode it;
//   Concealed  the packet for this frame is missing or late: conceal it;
//   Empty      nothing to play (before the first packet, between talkspurts,
//              after a long gap): play comfort silence.
//
// Sequence numbers and timestamps (RFC 3550 section 5.1) are unwrapped to 64
// bits, so wraps at 2^16 and 2^32 are invisible above this layer. Packets are
// stored in a ring of fixed-size slots indexed by unwrapped sequence number,
// allocated once by the constructor: put() and get() never allocate.
//
// Delay: every packet's transit time (arrival - timestamp / clock rate) is
// measured against the smallest transit of the last `reference_window_ms`
// (the "relative delay", as WebRTC NetEQ's DelayManager does); the relative
// delays go into a forgetting histogram, and the target delay is its
// `quantile` (clamped to [min_delay_ms, max_delay_ms]). The playout delay of
// the next frame is `now - timestamp / rate - reference`: a packet is on time
// exactly when its relative delay is below it. The buffer moves toward the
// target at talkspurt starts (the gap is silence) and, when `adapt_frames` is
// on, by dropping or inserting whole frames; the PCM layer (playout.hpp) turns
// `adapt_frames` off and time-stretches instead. An underrun (nothing buffered)
// conceals without advancing the timeline, so a delay spike costs concealment
// but no packet; the delay this adds is taken back when the next packet lets
// the buffer skip what was already concealed, or later by acceleration.
//
// Clock-free: time only comes in as arguments (milliseconds, any origin).
// Stats use the W3C webrtc-stats names (RTCInboundRtpStreamStats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mediacore {

enum class FrameKind : std::uint8_t { Normal = 0, Concealed = 1, Empty = 2 };

// put() results. Negative: the packet was malformed (counted in packets_invalid).
enum class PutResult : std::int8_t {
  Ok = 0,
  Duplicate = 1,  // already buffered or already played
  Late = 2,       // its playout time has passed
  Discarded = 3,  // outside the buffer's window (too old, or pushed out)
  Invalid = -1,   // empty, oversize or null payload, or a non-finite time
};

struct JitterBufferConfig {
  int clock_rate = 8000;         // RTP clock (Hz)
  int frame_samples = 160;       // one playout frame, in RTP clock units (20 ms at 8 kHz)
  int capacity = 64;             // packets held at most (slots allocated once)
  int max_payload = 1500;        // bytes per packet; bigger payloads are Invalid
  double min_delay_ms = 0.0;     // bounds of the target delay
  double max_delay_ms = 500.0;
  double initial_delay_ms = 40.0;  // target floor until 20 packets have been measured
  double quantile = 0.99;        // of the relative-delay histogram
  double forget_factor = 0.998;  // per packet (memory about 1/(1-f) packets)
  double reference_window_ms = 2000.0;
  double margin_ms = 0.0;        // added to the quantile
  double max_hold_ms = 80.0;     // underrun concealment before going Empty (PLC is silent from 60 ms)
  bool adapt_frames = true;      // drop/insert whole frames toward the target
};

// Counters. W3C webrtc-stats names in snake_case; delays are sums in seconds
// over emitted samples, as the W3C defines them.
struct JitterStats {
  double jitter_buffer_delay = 0;          // s * samples
  double jitter_buffer_target_delay = 0;   // s * samples
  double jitter_buffer_minimum_delay = 0;  // s * samples (the quantile before clamping to min_delay)
  std::uint64_t jitter_buffer_emitted_count = 0;  // samples
  std::uint64_t total_samples_received = 0;        // samples played out (all kinds)
  std::uint64_t concealed_samples = 0;
  std::uint64_t silent_concealed_samples = 0;
  std::uint64_t concealment_events = 0;
  std::uint64_t inserted_samples_for_deceleration = 0;
  std::uint64_t removed_samples_for_acceleration = 0;
  std::uint64_t packets_received = 0;    // well-formed packets, whatever became of them
  std::uint64_t packets_duplicated = 0;
  std::uint64_t packets_late = 0;
  std::uint64_t packets_reordered = 0;   // arrived after a higher sequence number, still in time
  std::uint64_t packets_lost = 0;        // skipped by the playout and never received
  std::uint64_t packets_discarded = 0;   // pushed out (overflow, too old, flush over max delay)
  std::uint64_t packets_invalid = 0;
  std::uint64_t buffer_resets = 0;       // SSRC changes, sequence or timestamp jumps
  double target_delay_ms = 0;            // current target
  double playout_delay_ms = 0;           // playout delay at the last get()
};

// One frame handed out by get(). Pointers stay valid until the next put()/get().
struct JitterFrame {
  FrameKind kind = FrameKind::Empty;
  int samples = 0;                  // RTP clock units this frame covers
  std::int64_t timestamp = 0;       // unwrapped RTP timestamp of its first sample
  std::int64_t sequence = -1;       // unwrapped sequence number (-1 if none)
  bool marker = false;
  const std::uint8_t* payload = nullptr;  // Normal: the packet
  std::size_t size = 0;
  double arrival_ms = 0;            // Normal: when it arrived
  // Concealed: the packet right after the missing one, when already here
  // (Opus in-band FEC rebuilds the lost frame from it).
  const std::uint8_t* next_payload = nullptr;
  std::size_t next_size = 0;
};

// RFC 3550 sequence / timestamp extension to 64 bits around the last value.
class SequenceUnwrapper {
 public:
  std::int64_t unwrap(std::uint16_t seq) noexcept;
  // What unwrap() would return, without moving.
  std::int64_t peek(std::uint16_t seq) const noexcept;
  void reset() noexcept { started_ = false; }

 private:
  std::int64_t last_ = 0;
  bool started_ = false;
};

class TimestampUnwrapper {
 public:
  std::int64_t unwrap(std::uint32_t ts) noexcept;
  void reset() noexcept { started_ = false; }

 private:
  std::int64_t last_ = 0;
  bool started_ = false;
};

// Fixed-capacity packet store keyed by unwrapped sequence number: a ring of
// `capacity` slots covering sequence numbers [head, head + capacity).
class PacketStore {
 public:
  struct Slot {
    std::int64_t seq = -1;
    std::int64_t timestamp = 0;
    double arrival_ms = 0;
    std::uint32_t size = 0;
    bool marker = false;
    bool held = false;    // holds a packet not yet taken
    bool played = false;  // seq was taken by pop(); remembered to spot duplicates
  };
  enum class Insert : std::uint8_t { Ok, Duplicate, BeforeHead, PastWindow };

  PacketStore(int capacity, int max_payload);

  Insert insert(std::int64_t seq, std::int64_t timestamp, bool marker, const std::uint8_t* payload,
                std::size_t size, double arrival_ms) noexcept;
  // The held packet with this sequence number, or nullptr.
  const Slot* find(std::int64_t seq) const noexcept;
  const std::uint8_t* payload(const Slot* slot) const noexcept;
  // The held packet with the smallest sequence number >= from, or nullptr.
  const Slot* first_from(std::int64_t from) const noexcept;
  // Marks `seq` as taken (remembered for duplicate detection).
  void take(std::int64_t seq) noexcept;
  // True if `seq` (< head) was taken, i.e. a copy of it is a duplicate.
  bool was_taken(std::int64_t seq) const noexcept;
  // Moves the head forward to `new_head`; returns how many held packets it dropped.
  int advance(std::int64_t new_head) noexcept;
  // Moves the head back (only allowed while nothing before it was played).
  void rewind(std::int64_t new_head) noexcept;
  void clear(std::int64_t head) noexcept;

  std::int64_t head() const noexcept { return head_; }
  int held() const noexcept { return held_; }
  int capacity() const noexcept { return capacity_; }
  std::int64_t highest() const noexcept { return highest_; }  // highest held seq, or head-1

 private:
  // Slots are a power of two >= capacity, so indexing is a mask, not a division.
  std::size_t index(std::int64_t seq) const noexcept { return static_cast<std::size_t>(seq) & mask_; }
  Slot& slot(std::int64_t seq) noexcept { return slots_[index(seq)]; }
  const Slot& slot(std::int64_t seq) const noexcept { return slots_[index(seq)]; }

  int capacity_;
  std::size_t mask_;
  int max_payload_;
  std::vector<Slot> slots_;
  std::vector<std::uint8_t> payloads_;
  std::int64_t head_ = 0;
  std::int64_t highest_ = -1;
  int held_ = 0;
};

// Relative-delay estimator: windowed minimum transit (monotonic deque) and a
// forgetting histogram of relative delays in 1 ms buckets. Forgetting is a
// growing weight per observation (rescaled before it overflows), so adding
// costs two stores (a fine and a coarse bucket) and the quantile one walk
// over 32 coarse plus at most 32 fine buckets.
class DelayEstimator {
 public:
  explicit DelayEstimator(const JitterBufferConfig& config);

  // Records one packet's transit (ms); returns its relative delay (ms).
  double update(double arrival_ms, double transit_ms) noexcept;
  // Forgets the transit reference (new source or timestamp jump); keeps the histogram.
  void reset_reference() noexcept;
  // Smallest transit in the window (ms); valid once has_reference().
  double reference_ms() const noexcept;
  bool has_reference() const noexcept { return count_ > 0; }
  double last_transit_ms() const noexcept { return last_transit_; }
  // The `quantile` of the relative delays (ms), unclamped; 0 before any packet.
  double quantile_ms() const noexcept;
  std::uint64_t packets() const noexcept { return packets_; }

  static constexpr int kBuckets = 1024;  // 1 ms each

 private:
  void add_to_histogram(int bucket) noexcept;

  double window_ms_;
  double quantile_;
  double grow_;  // 1 / forget_factor
  // Monotonic deque of (arrival, transit), increasing transit, as a ring.
  static constexpr int kWindow = 1024;
  double times_[kWindow];
  double values_[kWindow];
  int front_ = 0;
  int count_ = 0;
  double last_transit_ = 0;
  static constexpr int kFinePerCoarse = 32;
  std::vector<double> fine_;    // kBuckets
  std::vector<double> coarse_;  // kBuckets / kFinePerCoarse
  double total_ = 0;
  double weight_ = 1;
  std::uint64_t packets_ = 0;
};

class JitterBuffer {
 public:
  explicit JitterBuffer(const JitterBufferConfig& config = {});

  PutResult put(std::uint16_t seq, std::uint32_t timestamp, std::uint32_t ssrc, bool marker,
                const std::uint8_t* payload, std::size_t size, double arrival_ms) noexcept;
  JitterFrame get(double now_ms) noexcept;

  // True when the frame after the current one can be handed out now without
  // waiting (the packet is here): the playout may pull it early to accelerate.
  bool next_ready() const noexcept;
  // Delay the next frame would have if played at `now_ms`, against the transit
  // reference (ms). 0 before the first packet.
  double playout_delay_ms(double now_ms) const noexcept;
  double target_delay_ms() const noexcept { return target_ms_; }
  // Packet duration in RTP clock units (default frame_samples). The playout
  // calls it when a decoded packet turns out longer or shorter; it also moves
  // the timeline of the packet just returned.
  void set_packet_samples(int samples) noexcept;
  int packet_samples() const noexcept { return packet_samples_; }
  bool playing() const noexcept { return anchored_; }
  int buffered_packets() const noexcept { return store_.held(); }

  const JitterStats& stats() const noexcept { return stats_; }
  const JitterBufferConfig& config() const noexcept { return config_; }
  void reset() noexcept;

 private:
  void reset_stream() noexcept;
  void update_target() noexcept;
  bool try_anchor(double now_ms) noexcept;
  int packet_samples(const PacketStore::Slot& slot) const noexcept;
  void emit_normal(JitterFrame& f, const PacketStore::Slot& slot, double now_ms) noexcept;
  void skip_to(std::int64_t seq) noexcept;

  JitterBufferConfig config_;
  PacketStore store_;
  DelayEstimator estimator_;
  SequenceUnwrapper seq_unwrap_;
  TimestampUnwrapper ts_unwrap_;
  JitterStats stats_;

  bool have_ssrc_ = false;
  std::uint32_t ssrc_ = 0;
  bool have_packet_ = false;      // a packet of this source was accepted
  bool played_any_ = false;       // something of this source was taken
  std::int64_t highest_seq_ = 0;
  bool anchored_ = false;         // playing a talkspurt
  std::int64_t pts_ = 0;          // unwrapped timestamp of the next frame
  std::int64_t held_samples_ = 0; // concealment inserted by underruns, not yet skipped back
  double last_arrival_ms_ = 0;
  double underrun_since_ms_ = -1;
  double target_ms_ = 0;
  double minimum_ms_ = 0;
  std::uint64_t target_packets_ = 0;  // packets measured when target_ms_ was computed
  double ms_per_sample_ = 0;
  int packet_samples_ = 0;        // last measured packet duration
  FrameKind last_kind_ = FrameKind::Empty;
  bool probe_pending_ = false;    // a sequence jump waits for confirmation
  std::uint16_t probe_seq_ = 0;
  std::int64_t reference_from_seq_ = 0;  // packets before it predate the transit reference
};

}  // namespace mediacore
