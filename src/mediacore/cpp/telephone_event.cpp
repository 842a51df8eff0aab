#include "telephone_event.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mediacore::telephone_event {

int parse(const std::uint8_t* payload, std::size_t size, EventBlock* out, std::size_t capacity) noexcept {
  if (payload == nullptr || size == 0) return kEmpty;
  if (size % kBlockSize != 0) return kNotMultipleOf4;
  const std::size_t blocks = size / kBlockSize;
  if (blocks > kMaxBlocks) return kTooManyBlocks;
  if (out == nullptr || blocks > capacity) return kNoRoom;
  for (std::size_t i = 0; i < blocks; ++i) {
    const std::uint8_t* p = payload + i * kBlockSize;
    out[i].event = p[0];
    out[i].end = (p[1] & 0x80u) != 0;
    out[i].volume = static_cast<std::uint8_t>(p[1] & 0x3Fu);
    out[i].duration = static_cast<std::uint16_t>((p[2] << 8) | p[3]);
  }
  return static_cast<int>(blocks);
}

int serialize(const EventBlock& block, std::uint8_t* out, std::size_t capacity) noexcept {
  if (out == nullptr || capacity < kBlockSize || block.volume > kMaxVolume) return -1;
  out[0] = block.event;
  out[1] = static_cast<std::uint8_t>((block.end ? 0x80u : 0u) | block.volume);
  out[2] = static_cast<std::uint8_t>(block.duration >> 8);
  out[3] = static_cast<std::uint8_t>(block.duration & 0xFFu);
  return static_cast<int>(kBlockSize);
}

}  // namespace mediacore::telephone_event

namespace mediacore {

namespace te = telephone_event;

namespace {

// Serial-number order of RTP timestamps: is a before b?
bool before(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }

}  // namespace

// ------------------------------------------------------------------ sender

TelephoneEventSender::TelephoneEventSender(const TelephoneEventSenderConfig& config) : config_(config) {
  if (config.clock_rate < 1000 || config.clock_rate > 192000) {
    throw std::invalid_argument("clock_rate must be within 1000 ... 192000 Hz, got " +
                                std::to_string(config.clock_rate));
  }
  if (config.packet_interval == 0 || config.packet_interval > te::kMaxSegmentDuration) {
    throw std::invalid_argument("packet_interval must be within 1 ... 65535 timestamp units");
  }
  if (config.end_repeats < 1 || config.end_repeats > 10) {
    throw std::invalid_argument("end_repeats must be within 1 ... 10, got " + std::to_string(config.end_repeats));
  }
  if (config.min_gap > 0x7FFFFFFFu) throw std::invalid_argument("min_gap is too large");
}

int TelephoneEventSender::enqueue(std::uint8_t event, std::uint32_t duration, std::uint8_t volume) noexcept {
  if (duration == 0 || duration > 0x7FFFFFFFu || volume > te::kMaxVolume) {
    ++stats_.rejected;
    return -2;
  }
  if (count_ == kQueueCapacity) {
    ++stats_.rejected;
    return -1;
  }
  queue_[(head_ + count_) % kQueueCapacity] = Queued{event, volume, duration};
  ++count_;
  return 0;
}

void TelephoneEventSender::cancel() noexcept {
  count_ = 0;
  if (state_ == State::kSending) {
    // The next packet reports what was sent so far, with the E bit.
    current_.duration = std::max<std::uint32_t>(sent_, 1);
  } else if (state_ == State::kRepeating && !final_segment_) {
    // Repeating a segment's last packet: turn the repeats into the event's end.
    last_.end = true;
    te::serialize(te::EventBlock{last_.event, true, last_.volume, last_.duration}, last_.payload,
                  sizeof last_.payload);
    final_segment_ = true;
    current_.duration = sent_;
  }
}

int TelephoneEventSender::tick(std::uint32_t now, TelephoneEventPacket* out) noexcept {
  if (out == nullptr) return 0;

  if (state_ == State::kRepeating) {
    *out = last_;
    out->retransmission = true;
    ++stats_.packets;
    if (--repeats_left_ == 0) {
      if (final_segment_) {
        state_ = State::kIdle;
      } else {
        segment_start_ += te::kMaxSegmentDuration;
        ++stats_.segments;
        state_ = State::kSending;
      }
    }
    return 1;
  }

  if (state_ == State::kIdle) {
    if (count_ == 0) return 0;
    if (have_next_start_ && before(now, next_start_)) return 0;
    current_ = queue_[head_];
    head_ = (head_ + 1) % kQueueCapacity;
    --count_;
    event_start_ = segment_start_ = now;
    sent_ = 0;
    first_packet_ = true;
    state_ = State::kSending;
    ++stats_.events;
  }

  // Duration of the whole event after this interval, never going backwards.
  std::uint32_t elapsed = now + config_.packet_interval - event_start_;
  if (static_cast<std::int32_t>(elapsed) < static_cast<std::int32_t>(sent_)) elapsed = sent_;
  const std::uint32_t total = std::min(elapsed, current_.duration);
  const std::uint32_t offset = segment_start_ - event_start_;  // completed segments
  std::uint32_t in_segment = total - offset;
  if (in_segment == 0) return 0;  // no progress (the caller repeated a timestamp)

  const bool segment_full = in_segment >= te::kMaxSegmentDuration;
  if (segment_full) in_segment = te::kMaxSegmentDuration;
  sent_ = offset + in_segment;
  const bool event_done = sent_ == current_.duration;
  const bool ends_packet = event_done || segment_full;

  TelephoneEventPacket packet{};
  packet.timestamp = segment_start_;
  packet.marker = first_packet_;
  packet.event = current_.event;
  packet.end = event_done;
  packet.volume = current_.volume;
  packet.duration = static_cast<std::uint16_t>(in_segment);
  packet.retransmission = false;
  te::serialize(te::EventBlock{packet.event, packet.end, packet.volume, packet.duration}, packet.payload,
                sizeof packet.payload);
  first_packet_ = false;
  *out = packet;
  ++stats_.packets;

  if (ends_packet) {
    final_segment_ = event_done;
    if (event_done) {
      have_next_start_ = true;
      next_start_ = event_start_ + current_.duration + config_.min_gap;
    }
    if (config_.end_repeats > 1) {
      last_ = packet;
      last_.marker = false;  // only an event's first packet has the M bit, even when it is also its last
      repeats_left_ = config_.end_repeats - 1;
      state_ = State::kRepeating;
    } else if (event_done) {
      state_ = State::kIdle;
    } else {
      segment_start_ += te::kMaxSegmentDuration;
      ++stats_.segments;
    }
  }
  return 1;
}

// ------------------------------------------------------------------ receiver

TelephoneEventReceiver::TelephoneEventReceiver(const TelephoneEventReceiverConfig& config) : config_(config) {
  if (config.clock_rate < 1000 || config.clock_rate > 192000) {
    throw std::invalid_argument("clock_rate must be within 1000 ... 192000 Hz, got " +
                                std::to_string(config.clock_rate));
  }
  if (config.timeout_ms < 1 || config.timeout_ms > 3600000) {
    throw std::invalid_argument("timeout_ms must be within 1 ... 3600000 ms");
  }
  // A timestamp up to 10 s behind the newest event is a late packet; further
  // back it is a new stream (the peer restarted with a fresh random base).
  stale_window_ = static_cast<std::uint32_t>(config.clock_rate) * 10u;
}

void TelephoneEventReceiver::reset() noexcept {
  active_ = false;
  have_time_ = false;
  have_last_ = false;
  recent_count_ = recent_next_ = 0;
  base_ = segment_duration_ = 0;
}

void TelephoneEventReceiver::emit(const TelephoneEventReport& report) {
  if (out_count_ < out_capacity_) {
    out_[out_count_++] = report;
  } else {
    ++stats_.reports_dropped;
  }
}

void TelephoneEventReceiver::remember(std::uint32_t timestamp, std::uint8_t event) {
  recent_[recent_next_] = Key{timestamp, event};
  recent_next_ = (recent_next_ + 1) % kRecent;
  if (recent_count_ < kRecent) ++recent_count_;
}

bool TelephoneEventReceiver::remembered(std::uint32_t timestamp, std::uint8_t event) const {
  for (std::size_t i = 0; i < recent_count_; ++i) {
    if (recent_[i].timestamp == timestamp && recent_[i].event == event) return true;
  }
  return false;
}

void TelephoneEventReceiver::end_active(TelephoneEventEndReason reason) {
  TelephoneEventReport report{};
  report.kind = TelephoneEventReportKind::kEnd;
  report.reason = reason;
  report.event = event_;
  report.volume = volume_;
  report.timestamp = start_ts_;
  report.duration = base_ + segment_duration_;
  emit(report);
  remember(segment_ts_, event_);
  active_ = false;
  if (reason == TelephoneEventEndReason::kNewEvent) ++stats_.lost_ends;
  if (reason == TelephoneEventEndReason::kTimeout) ++stats_.timeouts;
}

void TelephoneEventReceiver::check_timeout(std::int64_t now_ms) {
  if (!active_ || now_ms == kNoTime) return;
  if (!have_time_) {  // the event's packets came without a time: its clock starts now
    last_update_ms_ = now_ms;
    have_time_ = true;
    return;
  }
  if (now_ms - last_update_ms_ >= config_.timeout_ms) end_active(TelephoneEventEndReason::kTimeout);
}

void TelephoneEventReceiver::process_block(std::uint32_t timestamp, const te::EventBlock& block,
                                           std::int64_t now_ms) {
  const auto touch = [&] {
    if (now_ms != kNoTime) {
      last_update_ms_ = now_ms;
      have_time_ = true;
    }
  };

  if (active_) {
    if (timestamp == segment_ts_ && block.event == event_) {  // an update of the current segment
      segment_duration_ = std::max<std::uint32_t>(segment_duration_, block.duration);
      touch();
      if (block.end) end_active(TelephoneEventEndReason::kEndBit);
      return;
    }
    if (block.event == event_ && timestamp == segment_ts_ + te::kMaxSegmentDuration) {  // next segment
      remember(segment_ts_, event_);
      base_ += te::kMaxSegmentDuration;
      segment_ts_ = timestamp;
      segment_duration_ = block.duration;
      last_ts_ = timestamp;
      ++stats_.segments;
      touch();
      if (block.end) end_active(TelephoneEventEndReason::kEndBit);
      return;
    }
    if (remembered(timestamp, block.event)) {
      ++stats_.duplicates;
      return;
    }
    if (before(timestamp, segment_ts_) && segment_ts_ - timestamp <= stale_window_) {
      ++stats_.stale;
      return;
    }
    end_active(TelephoneEventEndReason::kNewEvent);
  } else {
    if (remembered(timestamp, block.event)) {
      ++stats_.duplicates;
      return;
    }
    if (have_last_ && before(timestamp, last_ts_) && last_ts_ - timestamp <= stale_window_) {
      ++stats_.stale;
      return;
    }
  }

  active_ = true;
  event_ = block.event;
  volume_ = block.volume;
  start_ts_ = segment_ts_ = timestamp;
  base_ = 0;
  segment_duration_ = block.duration;
  have_last_ = true;
  last_ts_ = timestamp;
  have_time_ = false;
  touch();
  ++stats_.events;
  TelephoneEventReport report{};
  report.kind = TelephoneEventReportKind::kStart;
  report.reason = TelephoneEventEndReason::kNone;
  report.event = event_;
  report.volume = volume_;
  report.timestamp = start_ts_;
  report.duration = 0;
  emit(report);
  if (block.end) end_active(TelephoneEventEndReason::kEndBit);
}

int TelephoneEventReceiver::receive(std::uint32_t timestamp, bool /*marker*/, const std::uint8_t* payload,
                                    std::size_t size, std::int64_t now_ms, TelephoneEventReport* out,
                                    std::size_t capacity) noexcept {
  ++stats_.packets;
  te::EventBlock blocks[te::kMaxBlocks];
  const int n = te::parse(payload, size, blocks, te::kMaxBlocks);
  if (n < 0) {
    ++stats_.malformed;
    return -1;
  }
  out_ = out;
  out_capacity_ = out == nullptr ? 0 : capacity;
  out_count_ = 0;
  check_timeout(now_ms);
  std::uint32_t block_ts = timestamp;
  for (int i = 0; i < n; ++i) {
    const te::EventBlock& block = blocks[i];
    if (block.event > te::kMaxKnownEvent) {
      ++stats_.unknown_events;
    } else {
      process_block(block_ts, block, now_ms);
    }
    block_ts += block.duration;  // packed events follow each other (RFC 4733 2.5.1.5)
  }
  const int written = static_cast<int>(out_count_);
  out_ = nullptr;
  out_capacity_ = out_count_ = 0;
  return written;
}

int TelephoneEventReceiver::poll(std::int64_t now_ms, TelephoneEventReport* out, std::size_t capacity) noexcept {
  out_ = out;
  out_capacity_ = out == nullptr ? 0 : capacity;
  out_count_ = 0;
  check_timeout(now_ms);
  const int written = static_cast<int>(out_count_);
  out_ = nullptr;
  out_capacity_ = out_count_ = 0;
  return written;
}

int TelephoneEventReceiver::flush(TelephoneEventReport* out, std::size_t capacity) noexcept {
  out_ = out;
  out_capacity_ = out == nullptr ? 0 : capacity;
  out_count_ = 0;
  if (active_) end_active(TelephoneEventEndReason::kFlush);
  const int written = static_cast<int>(out_count_);
  out_ = nullptr;
  out_capacity_ = out_count_ = 0;
  return written;
}

}  // namespace mediacore
