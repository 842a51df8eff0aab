// A deliberately plain fixed-delay jitter buffer on std::map: one heap node
// and one payload vector per packet, the textbook way. It is the baseline the
// jitter benchmarks run beside JitterBuffer (bench/test_bench_jitter.py), not
// something to use: it allocates per packet and never adapts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "jitter_buffer.hpp"

namespace mediacore {

class MapJitterBuffer {
 public:
  MapJitterBuffer(int clock_rate, int frame_samples, double delay_ms);

  PutResult put(std::uint16_t seq, std::uint32_t timestamp, const std::uint8_t* payload, std::size_t size,
                double arrival_ms);
  // The kind of the next frame; *sequence gets the packet's unwrapped number (or -1).
  FrameKind get(double now_ms, std::int64_t* sequence);
  std::size_t buffered() const { return packets_.size(); }

 private:
  struct Packet {
    std::int64_t timestamp;
    double arrival_ms;
    std::vector<std::uint8_t> payload;
  };
  SequenceUnwrapper seq_unwrap_;
  TimestampUnwrapper ts_unwrap_;
  std::map<std::int64_t, Packet> packets_;
  double delay_ms_;
  bool started_ = false;
  std::int64_t next_seq_ = 0;
  double first_arrival_ms_ = 0;
  bool have_first_ = false;
};

}  // namespace mediacore
