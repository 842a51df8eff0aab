#include "jitter_buffer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace mediacore {

namespace {
// RFC 3550 appendix A.1: a sequence jump beyond this starts a new stream
// once a second packet confirms it.
constexpr std::int64_t kMaxDropout = 3000;
// Packets measured before the histogram alone sets the target.
constexpr std::uint64_t kWarmupPackets = 20;
// Packets measured between two computations of the target.
constexpr std::uint64_t kTargetEvery = 4;
}  // namespace

// ---------------------------------------------------------------- unwrappers

std::int64_t SequenceUnwrapper::unwrap(std::uint16_t seq) noexcept {
  if (!started_) {
    started_ = true;
    // Start one cycle up so that packets reordered before the first stay positive.
    last_ = (std::int64_t{1} << 16) + seq;
    return last_;
  }
  const auto delta = static_cast<std::int16_t>(static_cast<std::uint16_t>(seq - static_cast<std::uint16_t>(last_)));
  const std::int64_t value = last_ + delta;
  if (value > last_) last_ = value;
  return value;
}

std::int64_t SequenceUnwrapper::peek(std::uint16_t seq) const noexcept {
  if (!started_) return (std::int64_t{1} << 16) + seq;
  const auto delta = static_cast<std::int16_t>(static_cast<std::uint16_t>(seq - static_cast<std::uint16_t>(last_)));
  return last_ + delta;
}

std::int64_t TimestampUnwrapper::unwrap(std::uint32_t ts) noexcept {
  if (!started_) {
    started_ = true;
    last_ = (std::int64_t{1} << 32) + ts;
    return last_;
  }
  const auto delta = static_cast<std::int32_t>(static_cast<std::uint32_t>(ts - static_cast<std::uint32_t>(last_)));
  const std::int64_t value = last_ + delta;
  if (value > last_) last_ = value;
  return value;
}

// ---------------------------------------------------------------- packet store

namespace {
std::size_t slot_count(int capacity) {
  if (capacity < 2 || capacity > (1 << 20)) throw std::invalid_argument("capacity must be in 2..2^20 packets");
  std::size_t n = 1;
  while (n < static_cast<std::size_t>(capacity)) n <<= 1;
  return n;
}
}  // namespace

PacketStore::PacketStore(int capacity, int max_payload)
    : capacity_(capacity),
      mask_(slot_count(capacity) - 1),
      max_payload_(max_payload),
      slots_(mask_ + 1),
      payloads_((mask_ + 1) * static_cast<std::size_t>(max_payload > 0 ? max_payload : 1)) {
  if (max_payload < 1) throw std::invalid_argument("max_payload must be at least 1 byte");
}

PacketStore::Insert PacketStore::insert(std::int64_t seq, std::int64_t timestamp, bool marker,
                                        const std::uint8_t* payload, std::size_t size,
                                        double arrival_ms) noexcept {
  if (seq < head_) return Insert::BeforeHead;
  if (seq >= head_ + capacity_) return Insert::PastWindow;
  if (size > static_cast<std::size_t>(max_payload_)) return Insert::PastWindow;
  Slot& s = slot(seq);
  if (s.seq == seq && (s.held || s.played)) return Insert::Duplicate;
  s.seq = seq;
  s.timestamp = timestamp;
  s.arrival_ms = arrival_ms;
  s.size = static_cast<std::uint32_t>(size);
  s.marker = marker;
  s.held = true;
  s.played = false;
  if (size) {
    std::memcpy(&payloads_[index(seq) * static_cast<std::size_t>(max_payload_)], payload, size);
  }
  ++held_;
  if (seq > highest_) highest_ = seq;
  return Insert::Ok;
}

const PacketStore::Slot* PacketStore::find(std::int64_t seq) const noexcept {
  if (seq < head_ || seq >= head_ + capacity_) return nullptr;
  const Slot& s = slot(seq);
  return (s.seq == seq && s.held) ? &s : nullptr;
}

const std::uint8_t* PacketStore::payload(const Slot* s) const noexcept {
  return &payloads_[index(s->seq) * static_cast<std::size_t>(max_payload_)];
}

const PacketStore::Slot* PacketStore::first_from(std::int64_t from) const noexcept {
  if (held_ == 0) return nullptr;
  const std::int64_t end = std::min(highest_, head_ + capacity_ - 1);
  for (std::int64_t seq = std::max(from, head_); seq <= end; ++seq) {
    const Slot& s = slot(seq);
    if (s.seq == seq && s.held) return &s;
  }
  return nullptr;
}

void PacketStore::take(std::int64_t seq) noexcept {
  Slot& s = slot(seq);
  if (s.seq == seq && s.held) {
    s.held = false;
    s.played = true;
    --held_;
  }
}

bool PacketStore::was_taken(std::int64_t seq) const noexcept {
  if (seq < 0) return false;
  const Slot& s = slot(seq);
  return s.seq == seq && s.played;
}

int PacketStore::advance(std::int64_t new_head) noexcept {
  if (new_head <= head_) return 0;
  int dropped = 0;
  const std::int64_t end = std::min(new_head, head_ + capacity_);
  for (std::int64_t seq = head_; seq < end && held_ > 0; ++seq) {
    Slot& s = slot(seq);
    if (s.seq == seq && s.held) {
      s.held = false;
      --held_;
      ++dropped;
    }
  }
  head_ = new_head;
  if (highest_ < head_ - 1) highest_ = head_ - 1;
  return dropped;
}

void PacketStore::rewind(std::int64_t new_head) noexcept {
  if (new_head < head_ && new_head > highest_ - capacity_) head_ = new_head;
}

void PacketStore::clear(std::int64_t head) noexcept {
  for (Slot& s : slots_) s = Slot{};
  held_ = 0;
  head_ = head;
  highest_ = head - 1;
}

// ---------------------------------------------------------------- delay estimator

DelayEstimator::DelayEstimator(const JitterBufferConfig& config)
    : window_ms_(config.reference_window_ms),
      quantile_(config.quantile),
      grow_(1.0 / config.forget_factor),
      times_(),
      values_(),
      fine_(kBuckets, 0.0),
      coarse_(kBuckets / kFinePerCoarse, 0.0) {}

void DelayEstimator::reset_reference() noexcept {
  front_ = 0;
  count_ = 0;
}

double DelayEstimator::reference_ms() const noexcept { return count_ ? values_[front_] : 0.0; }

double DelayEstimator::update(double arrival_ms, double transit_ms) noexcept {
  constexpr unsigned kMask = kWindow - 1;
  static_assert((kWindow & (kWindow - 1)) == 0, "the window ring is a power of two");
  // Monotonic deque: the front is the smallest transit within the window.
  while (count_ > 0 && values_[(static_cast<unsigned>(front_ + count_) - 1u) & kMask] >= transit_ms) --count_;
  if (count_ == kWindow) {
    front_ = static_cast<int>((static_cast<unsigned>(front_) + 1u) & kMask);
    --count_;
  }
  const unsigned back = static_cast<unsigned>(front_ + count_) & kMask;
  times_[back] = arrival_ms;
  values_[back] = transit_ms;
  ++count_;
  while (count_ > 1 && times_[front_] < arrival_ms - window_ms_) {
    front_ = static_cast<int>((static_cast<unsigned>(front_) + 1u) & kMask);
    --count_;
  }
  last_transit_ = transit_ms;
  const double relative = transit_ms - values_[front_];
  const int bucket = static_cast<int>(std::min(relative, static_cast<double>(kBuckets - 1)));
  add_to_histogram(bucket < 0 ? 0 : bucket);
  ++packets_;
  return relative;
}

void DelayEstimator::add_to_histogram(int bucket) noexcept {
  // Forgetting by making each new observation weigh 1/f times the previous
  // one; rescale everything before the weights overflow.
  weight_ *= grow_;
  if (weight_ > 1e200) {
    const double scale = 1.0 / weight_;
    for (double& b : fine_) b *= scale;
    for (double& b : coarse_) b *= scale;
    total_ *= scale;
    weight_ = 1.0;
  }
  fine_[static_cast<std::size_t>(bucket)] += weight_;
  coarse_[static_cast<std::size_t>(bucket / kFinePerCoarse)] += weight_;
  total_ += weight_;
}

double DelayEstimator::quantile_ms() const noexcept {
  if (total_ <= 0) return 0.0;
  const double wanted = quantile_ * total_;
  double below = 0;
  const int coarse = kBuckets / kFinePerCoarse;
  for (int c = 0; c < coarse; ++c) {
    const double here = coarse_[static_cast<std::size_t>(c)];
    if (below + here >= wanted) {
      for (int b = c * kFinePerCoarse; b < (c + 1) * kFinePerCoarse; ++b) {
        below += fine_[static_cast<std::size_t>(b)];
        if (below >= wanted) return static_cast<double>(b + 1);  // the bucket's upper edge
      }
      return static_cast<double>((c + 1) * kFinePerCoarse);
    }
    below += here;
  }
  return static_cast<double>(kBuckets);
}

// ---------------------------------------------------------------- jitter buffer

namespace {
const JitterBufferConfig& validated(const JitterBufferConfig& c) {
  if (c.clock_rate < 1000 || c.clock_rate > 192000) throw std::invalid_argument("clock_rate must be in 1000..192000 Hz");
  if (c.frame_samples < 1 || c.frame_samples > c.clock_rate)
    throw std::invalid_argument("frame_samples must be in 1..clock_rate (at most one second)");
  if (c.capacity < 2 || c.capacity > 32768) throw std::invalid_argument("capacity must be in 2..32768 packets");
  if (c.max_payload < 1 || c.max_payload > 65535) throw std::invalid_argument("max_payload must be in 1..65535 bytes");
  if (!(c.min_delay_ms >= 0) || !(c.max_delay_ms >= c.min_delay_ms) || !(c.max_delay_ms <= 10000))
    throw std::invalid_argument("delays must satisfy 0 <= min_delay_ms <= max_delay_ms <= 10000");
  if (!(c.initial_delay_ms >= 0) || !(c.initial_delay_ms <= 10000))
    throw std::invalid_argument("initial_delay_ms must be in 0..10000");
  if (!(c.quantile > 0 && c.quantile < 1)) throw std::invalid_argument("quantile must be in (0, 1)");
  if (!(c.forget_factor > 0.5 && c.forget_factor < 1)) throw std::invalid_argument("forget_factor must be in (0.5, 1)");
  if (!(c.reference_window_ms > 0 && c.reference_window_ms <= 60000))
    throw std::invalid_argument("reference_window_ms must be in (0, 60000]");
  if (!(c.margin_ms >= 0 && c.margin_ms <= 1000)) throw std::invalid_argument("margin_ms must be in 0..1000");
  if (!(c.max_hold_ms >= 0 && c.max_hold_ms <= 10000)) throw std::invalid_argument("max_hold_ms must be in 0..10000");
  return c;
}
}  // namespace

JitterBuffer::JitterBuffer(const JitterBufferConfig& config)
    : config_(validated(config)),
      store_(config.capacity, config.max_payload),
      estimator_(config),
      ms_per_sample_(1000.0 / config.clock_rate),
      packet_samples_(config.frame_samples) {
  update_target();
}

void JitterBuffer::reset() noexcept {
  reset_stream();
  have_ssrc_ = false;
}

void JitterBuffer::reset_stream() noexcept {
  stats_.packets_discarded += static_cast<std::uint64_t>(store_.held());
  store_.clear(0);
  seq_unwrap_.reset();
  ts_unwrap_.reset();
  estimator_.reset_reference();
  have_packet_ = false;
  played_any_ = false;
  anchored_ = false;
  held_samples_ = 0;
  underrun_since_ms_ = -1;
  probe_pending_ = false;
  reference_from_seq_ = 0;
}

void JitterBuffer::update_target() noexcept {
  // The target moves slowly: recompute it every few packets, not every get.
  const std::uint64_t packets = estimator_.packets();
  if (packets != 0 && packets - target_packets_ < kTargetEvery && packets >= kWarmupPackets) return;
  target_packets_ = packets;
  const double quantile = estimator_.quantile_ms();
  double target = quantile + config_.margin_ms;
  if (estimator_.packets() < kWarmupPackets) target = std::max(target, config_.initial_delay_ms);
  target_ms_ = std::clamp(target, config_.min_delay_ms, config_.max_delay_ms);
  minimum_ms_ = quantile;
}

PutResult JitterBuffer::put(std::uint16_t seq, std::uint32_t timestamp, std::uint32_t ssrc, bool marker,
                            const std::uint8_t* payload, std::size_t size, double arrival_ms) noexcept {
  if (size == 0 || payload == nullptr || size > static_cast<std::size_t>(config_.max_payload) ||
      !std::isfinite(arrival_ms)) {
    ++stats_.packets_invalid;
    return PutResult::Invalid;
  }
  ++stats_.packets_received;

  if (!have_ssrc_) {
    have_ssrc_ = true;
    ssrc_ = ssrc;
  } else if (ssrc != ssrc_) {
    ssrc_ = ssrc;
    reset_stream();
    ++stats_.buffer_resets;
  }

  if (have_packet_) {
    // A sequence jump (RFC 3550 A.1): start over only when the next packet follows it.
    const std::int64_t probe = seq_unwrap_.peek(seq);
    const std::int64_t delta = probe - highest_seq_;
    if (delta > kMaxDropout || delta < -kMaxDropout) {
      if (probe_pending_ && seq == probe_seq_) {
        reset_stream();
        ++stats_.buffer_resets;
      } else {
        probe_pending_ = true;
        probe_seq_ = static_cast<std::uint16_t>(seq + 1);
        ++stats_.packets_discarded;
        return PutResult::Discarded;
      }
    }
  }
  probe_pending_ = false;

  std::int64_t seq64 = seq_unwrap_.unwrap(seq);
  std::int64_t ts64 = ts_unwrap_.unwrap(timestamp);
  double transit = arrival_ms - static_cast<double>(ts64) * ms_per_sample_;

  if (have_packet_ && estimator_.has_reference()) {
    // A timestamp jump: the transit moves by more than any network could.
    const double jump_ms = std::max(2000.0, 4.0 * config_.max_delay_ms);
    const double moved = transit - estimator_.last_transit_ms();
    if (std::fabs(moved) > jump_ms && seq64 > highest_seq_) {
      ++stats_.buffer_resets;
      if (moved < 0) {
        // Forward: the older packets still play first, then the gap starts
        // a new talkspurt against a new transit reference.
        estimator_.reset_reference();
        reference_from_seq_ = seq64;
      } else {
        // Backward: the new timestamps are behind the timeline; start over.
        reset_stream();
        seq64 = seq_unwrap_.unwrap(seq);
        ts64 = ts_unwrap_.unwrap(timestamp);
        transit = arrival_ms - static_cast<double>(ts64) * ms_per_sample_;
      }
    }
  }

  if (!have_packet_) {
    have_packet_ = true;
    store_.clear(seq64);
    highest_seq_ = seq64;
  }

  if (seq64 < store_.head()) {
    if (!played_any_ && !anchored_ && seq64 > store_.highest() - store_.capacity() + 1) {
      store_.rewind(seq64);  // reordered before playout started
    } else if (store_.was_taken(seq64)) {
      ++stats_.packets_duplicated;
      return PutResult::Duplicate;
    } else {
      ++stats_.packets_late;
      if (stats_.packets_lost > 0) --stats_.packets_lost;  // it was counted lost when skipped
      estimator_.update(arrival_ms, transit);
      return PutResult::Late;
    }
  }
  if (anchored_ && ts64 < pts_) {
    const PacketStore::Slot* same = store_.find(seq64);
    if (same) {
      ++stats_.packets_duplicated;
      return PutResult::Duplicate;
    }
    ++stats_.packets_late;
    estimator_.update(arrival_ms, transit);
    return PutResult::Late;
  }
  if (seq64 >= store_.head() + store_.capacity()) {
    // Make room: everything older than the window is pushed out.
    const std::int64_t new_head = seq64 - store_.capacity() + 1;
    const std::int64_t span = new_head - store_.head();
    const int dropped = store_.advance(new_head);
    stats_.packets_discarded += static_cast<std::uint64_t>(dropped);
    if (played_any_) stats_.packets_lost += static_cast<std::uint64_t>(std::max<std::int64_t>(0, span - dropped));
    anchored_ = false;
    held_samples_ = 0;
  }

  switch (store_.insert(seq64, ts64, marker, payload, size, arrival_ms)) {
    case PacketStore::Insert::Ok:
      break;
    case PacketStore::Insert::Duplicate:
      ++stats_.packets_duplicated;
      return PutResult::Duplicate;
    case PacketStore::Insert::BeforeHead:
    case PacketStore::Insert::PastWindow:
      ++stats_.packets_discarded;
      return PutResult::Discarded;
  }
  if (seq64 < highest_seq_) ++stats_.packets_reordered;
  highest_seq_ = std::max(highest_seq_, seq64);
  last_arrival_ms_ = arrival_ms;
  estimator_.update(arrival_ms, transit);
  return PutResult::Ok;
}

double JitterBuffer::playout_delay_ms(double now_ms) const noexcept {
  if (!estimator_.has_reference()) return 0.0;
  std::int64_t ts = pts_;
  if (!anchored_) {
    const PacketStore::Slot* first = store_.first_from(store_.head());
    if (!first) return 0.0;
    ts = first->timestamp;
  }
  return now_ms - static_cast<double>(ts) * ms_per_sample_ - estimator_.reference_ms();
}

bool JitterBuffer::next_ready() const noexcept {
  if (!anchored_) return false;
  const PacketStore::Slot* p = store_.find(store_.head());
  return p && p->timestamp == pts_;
}

int JitterBuffer::packet_samples(const PacketStore::Slot& /*slot*/) const noexcept { return packet_samples_; }

void JitterBuffer::set_packet_samples(int samples) noexcept {
  if (samples < 1 || samples > 16 * config_.frame_samples || samples == packet_samples_) return;
  // Called right after get() returned the packet: move the timeline to its real end.
  if (anchored_ && last_kind_ == FrameKind::Normal) pts_ += samples - packet_samples_;
  packet_samples_ = samples;
}

void JitterBuffer::skip_to(std::int64_t seq) noexcept {
  const std::int64_t span = seq - store_.head();
  if (span <= 0) return;
  const int dropped = store_.advance(seq);
  stats_.packets_discarded += static_cast<std::uint64_t>(dropped);
  stats_.packets_lost += static_cast<std::uint64_t>(span - dropped);
}

bool JitterBuffer::try_anchor(double now_ms) noexcept {
  const PacketStore::Slot* first = store_.first_from(store_.head());
  if (!first) return false;
  const double delay = now_ms - static_cast<double>(first->timestamp) * ms_per_sample_ - estimator_.reference_ms();
  const bool start = delay >= target_ms_ || delay >= config_.max_delay_ms || store_.held() >= store_.capacity() - 1;
  if (!start) return false;
  if (first->seq != store_.head()) {
    if (played_any_) {
      skip_to(first->seq);
    } else {
      store_.advance(first->seq);
    }
  }
  anchored_ = true;
  pts_ = first->timestamp;
  held_samples_ = 0;
  underrun_since_ms_ = -1;
  return true;
}

void JitterBuffer::emit_normal(JitterFrame& f, const PacketStore::Slot& slot, double now_ms) noexcept {
  const int samples = packet_samples(slot);
  f.kind = FrameKind::Normal;
  f.samples = samples;
  f.timestamp = slot.timestamp;
  f.sequence = slot.seq;
  f.marker = slot.marker;
  f.payload = store_.payload(&slot);
  f.size = slot.size;
  f.arrival_ms = slot.arrival_ms;
  const double wait_s = std::max(0.0, now_ms - slot.arrival_ms) / 1000.0;
  stats_.jitter_buffer_delay += wait_s * samples;
  stats_.jitter_buffer_target_delay += target_ms_ / 1000.0 * samples;
  stats_.jitter_buffer_minimum_delay += minimum_ms_ / 1000.0 * samples;
  stats_.jitter_buffer_emitted_count += static_cast<std::uint64_t>(samples);
  stats_.total_samples_received += static_cast<std::uint64_t>(samples);
  const std::int64_t seq = slot.seq;
  pts_ = slot.timestamp + samples;
  store_.take(seq);
  store_.advance(seq + 1);
  played_any_ = true;
  underrun_since_ms_ = -1;
  held_samples_ = 0;  // the hold credit only covers the underrun it came from
  last_kind_ = FrameKind::Normal;
}

JitterFrame JitterBuffer::get(double now_ms) noexcept {
  JitterFrame f;
  f.samples = config_.frame_samples;
  f.timestamp = pts_;
  if (!std::isfinite(now_ms)) return f;
  update_target();
  stats_.target_delay_ms = target_ms_;

  if (!anchored_ && !try_anchor(now_ms)) {
    stats_.playout_delay_ms = playout_delay_ms(now_ms);
    last_kind_ = FrameKind::Empty;
    return f;
  }
  const double frame_ms = config_.frame_samples * ms_per_sample_;
  for (int guard = 0; guard <= store_.capacity() + 1; ++guard) {
    const double delay = playout_delay_ms(now_ms);
    stats_.playout_delay_ms = delay;
    const std::int64_t head = store_.head();
    const PacketStore::Slot* p = store_.find(head);
    if (p) {
      if (p->timestamp < pts_) {
        // Its time was already played or concealed.
        store_.take(head);
        store_.advance(head + 1);
        ++stats_.packets_late;
        continue;
      }
      if (p->timestamp > pts_) {
        // A gap in the timeline without a missing packet: the sender was
        // silent (DTX, a new talkspurt) or its timestamps jumped. Silence is
        // where the delay moves: start the next talkspurt at the target delay.
        anchored_ = false;
        held_samples_ = 0;
        if (!try_anchor(now_ms)) {
          f.timestamp = pts_;
          last_kind_ = FrameKind::Empty;
          return f;
        }
        continue;
      }
      // Too much delay: drop frames while packets are waiting.
      const bool over_max = delay > config_.max_delay_ms + frame_ms;
      const bool over_target = config_.adapt_frames && delay > target_ms_ + 2 * frame_ms;
      if ((over_max || over_target) && head >= reference_from_seq_ && store_.find(head + 1)) {
        const int samples = packet_samples(*p);
        store_.take(head);
        store_.advance(head + 1);
        pts_ += samples;
        ++stats_.packets_discarded;
        stats_.removed_samples_for_acceleration += static_cast<std::uint64_t>(samples);
        continue;
      }
      emit_normal(f, *p, now_ms);
      return f;
    }

    const PacketStore::Slot* next = store_.first_from(head + 1);
    if (next) {
      const std::int64_t gap = next->timestamp - pts_;
      if (gap <= 0 || held_samples_ >= gap) {
        // Either the missing packets' time has passed, or an underrun already
        // concealed for at least as long: continue with the next packet.
        if (gap > 0) held_samples_ -= gap;
        pts_ = next->timestamp;
        skip_to(next->seq);
        continue;
      }
      f.kind = FrameKind::Concealed;
      f.timestamp = pts_;
      f.sequence = head;
      // The next packet plays right after this frame (directly, or once the
      // underrun credit has skipped the rest of the gap): hand it over, so the
      // concealment can end on it (two-sided PLC, Opus FEC).
      if (gap - config_.frame_samples <= held_samples_) {
        f.next_payload = store_.payload(next);
        f.next_size = next->size;
      }
      pts_ += config_.frame_samples;
      skip_to(std::min(head + 1, next->seq));
      underrun_since_ms_ = -1;
    } else {
      // Underrun: nothing to play. Conceal without moving the timeline, so a
      // late packet is still played when it comes.
      if (underrun_since_ms_ < 0) underrun_since_ms_ = now_ms;
      if (now_ms - underrun_since_ms_ >= config_.max_hold_ms) {
        anchored_ = false;
        held_samples_ = 0;
        last_kind_ = FrameKind::Empty;
        return f;
      }
      f.kind = FrameKind::Concealed;
      f.timestamp = pts_;
      f.sequence = head;
      held_samples_ += config_.frame_samples;
    }
    stats_.concealed_samples += static_cast<std::uint64_t>(config_.frame_samples);
    stats_.total_samples_received += static_cast<std::uint64_t>(config_.frame_samples);
    if (last_kind_ != FrameKind::Concealed) ++stats_.concealment_events;
    last_kind_ = FrameKind::Concealed;
    return f;
  }
  last_kind_ = FrameKind::Empty;
  return f;
}

}  // namespace mediacore
