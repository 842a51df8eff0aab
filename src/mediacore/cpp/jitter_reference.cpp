#include "jitter_reference.hpp"

#include <stdexcept>

namespace mediacore {

MapJitterBuffer::MapJitterBuffer(int clock_rate, int frame_samples, double delay_ms)
    : delay_ms_(delay_ms) {
  if (clock_rate <= 0 || frame_samples <= 0 || !(delay_ms >= 0))
    throw std::invalid_argument("bad MapJitterBuffer configuration");
}

PutResult MapJitterBuffer::put(std::uint16_t seq, std::uint32_t timestamp, const std::uint8_t* payload,
                               std::size_t size, double arrival_ms) {
  if (!payload || size == 0) return PutResult::Invalid;
  const std::int64_t seq64 = seq_unwrap_.unwrap(seq);
  const std::int64_t ts64 = ts_unwrap_.unwrap(timestamp);
  if (!have_first_) {
    have_first_ = true;
    first_arrival_ms_ = arrival_ms;
    next_seq_ = seq64;
  }
  if (started_ && seq64 < next_seq_) return PutResult::Late;
  if (packets_.count(seq64)) return PutResult::Duplicate;
  packets_.emplace(seq64, Packet{ts64, arrival_ms, std::vector<std::uint8_t>(payload, payload + size)});
  return PutResult::Ok;
}

FrameKind MapJitterBuffer::get(double now_ms, std::int64_t* sequence) {
  *sequence = -1;
  if (!started_) {
    if (packets_.empty() || now_ms < first_arrival_ms_ + delay_ms_) return FrameKind::Empty;
    started_ = true;
    next_seq_ = packets_.begin()->first;
  }
  // Drop whatever fell behind.
  while (!packets_.empty() && packets_.begin()->first < next_seq_) packets_.erase(packets_.begin());
  const std::int64_t seq = next_seq_++;
  auto it = packets_.find(seq);
  if (it == packets_.end()) return packets_.empty() ? FrameKind::Empty : FrameKind::Concealed;
  *sequence = seq;
  packets_.erase(it);
  return FrameKind::Normal;
}

}  // namespace mediacore
