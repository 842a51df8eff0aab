// Native self-check of the jitter buffer, playout, PLC and time-stretch under
// random traces (run under ASan + UBSan by tests/native/test_native.py).
//
// Properties: whatever arrives (reordered, duplicated, late, lost, garbage,
// oversize, wrapping, jumping, changing SSRC), the buffer hands out each
// packet at most once, in increasing order within a stream, with the payload
// that was put; every packet received is accounted for exactly once; with a
// fixed delay and no adaptation it plays what a plain std::map buffer plays;
// the playout always writes exactly one frame; the DSP never reads or writes
// outside its buffers (the sanitizers check that part).
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "check.hpp"
#include "codec.hpp"
#include "jitter_buffer.hpp"
#include "jitter_reference.hpp"
#include "playout.hpp"
#include "plc.hpp"
#include "time_stretch.hpp"

using namespace mediacore;

namespace {

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uniform() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
};

struct Packet {
  std::uint16_t seq;
  std::uint32_t ts;
  std::uint32_t ssrc;
  bool marker;
  double arrival;
  std::vector<std::uint8_t> payload;
};

// A random stream in arrival order. The payload's first 8 bytes name the
// packet (ssrc epoch and index) so the consumer can check what it got.
std::vector<Packet> random_trace(Rng& rng, int n, std::uint16_t seq0, std::uint32_t ts0) {
  std::vector<Packet> out;
  std::uint32_t ssrc = 1000;
  std::uint16_t seq = seq0;
  std::uint32_t ts = ts0;
  for (int i = 0; i < n; ++i) {
    if (rng.uniform() < 0.003) {  // SSRC change with a fresh sequence space
      ssrc += 1;
      seq = static_cast<std::uint16_t>(rng.next());
      ts = static_cast<std::uint32_t>(rng.next());
    }
    if (rng.uniform() < 0.002) ts += static_cast<std::uint32_t>(rng.next() % 2000000000u);  // timestamp jump
    const bool lost = rng.uniform() < 0.03;
    const double send = i * 20.0;
    double delay = 20.0 + 15.0 * rng.uniform() * rng.uniform() * 4.0;
    if (rng.uniform() < 0.02) delay += 200.0 * rng.uniform();  // spike
    if (!lost) {
      Packet p{seq, ts, ssrc, rng.uniform() < 0.05, send + delay, {}};
      int size = 160;
      const double r = rng.uniform();
      if (r < 0.01) size = 0;                   // empty: invalid
      else if (r < 0.02) size = 1600;           // oversize: invalid
      else if (r < 0.05) size = 1 + rng.below(1500);
      p.payload.assign(static_cast<std::size_t>(size), static_cast<std::uint8_t>(i));
      if (size >= 8) {
        const std::uint64_t tag = (static_cast<std::uint64_t>(ssrc) << 32) | static_cast<std::uint32_t>(i);
        std::memcpy(p.payload.data(), &tag, 8);
      }
      out.push_back(p);
      if (rng.uniform() < 0.02) {  // duplicate
        Packet d = p;
        d.arrival += 5.0 * rng.uniform();
        out.push_back(d);
      }
    }
    seq = static_cast<std::uint16_t>(seq + 1);
    ts += 160;
  }
  // Arrival order (stable insertion sort keeps it simple and allocation-free).
  for (std::size_t i = 1; i < out.size(); ++i) {
    for (std::size_t j = i; j > 0 && out[j].arrival < out[j - 1].arrival; --j) std::swap(out[j], out[j - 1]);
  }
  return out;
}

void check_buffer_on_random_traces() {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    Rng rng{seed * 0x9E3779B97F4A7C15ull};
    JitterBufferConfig c;
    c.capacity = 8 + rng.below(64);
    c.max_payload = 1500;
    c.adapt_frames = seed % 2 == 0;
    JitterBuffer jb(c);
    const auto trace = random_trace(rng, 4000, static_cast<std::uint16_t>(65000 + seed * 37),
                                    static_cast<std::uint32_t>(0xFFFF0000u + seed));
    std::size_t i = 0;
    std::uint64_t emitted = 0;
    std::uint64_t last_tag = 0;
    std::int64_t last_seq = -1;
    std::uint64_t resets_seen = 0;
    for (int tick = 0; tick < 4000 + 100; ++tick) {
      const double now = tick * 20.0;
      for (; i < trace.size() && trace[i].arrival <= now; ++i) {
        const Packet& p = trace[i];
        jb.put(p.seq, p.ts, p.ssrc, p.marker, p.payload.data(), p.payload.size(), p.arrival);
      }
      const JitterFrame f = jb.get(now);
      CHECK(f.samples > 0);
      if (jb.stats().buffer_resets != resets_seen) {
        resets_seen = jb.stats().buffer_resets;
        last_seq = -1;
        last_tag = 0;
      }
      if (f.kind == FrameKind::Normal) {
        ++emitted;
        REQUIRE(f.payload != nullptr);
        CHECK(f.size >= 1 && f.size <= 1500);
        CHECK(f.sequence > last_seq);
        last_seq = f.sequence;
        if (f.size >= 8) {
          std::uint64_t tag;
          std::memcpy(&tag, f.payload, 8);
          if (tag >> 32 == last_tag >> 32) CHECK(tag > last_tag);  // same source: later packet
          last_tag = tag;
        }
      } else {
        CHECK(f.payload == nullptr);
      }
    }
    const JitterStats& s = jb.stats();
    CHECK_EQ(s.packets_received + s.packets_invalid, static_cast<std::uint64_t>(trace.size()));
    CHECK_EQ(emitted + s.packets_duplicated + s.packets_late + s.packets_discarded +
                 static_cast<std::uint64_t>(jb.buffered_packets()),
             s.packets_received);
    CHECK(s.packets_invalid > 0);
    CHECK(s.buffer_resets > 0);
  }
}

void check_fixed_delay_matches_map_buffer() {
  // In order, no loss, constant transit: both play the same packets on the same ticks.
  JitterBufferConfig c;
  c.min_delay_ms = c.max_delay_ms = c.initial_delay_ms = 40;
  c.adapt_frames = false;
  JitterBuffer jb(c);
  MapJitterBuffer ref(8000, 160, 40.0);
  std::uint8_t payload[160] = {};
  for (int tick = 0; tick < 300; ++tick) {
    const double now = tick * 20.0;
    const int k = tick - 1;  // packet k arrives at k*20 + 10
    if (k >= 0 && k < 250) {
      const auto seq = static_cast<std::uint16_t>(65500 + k);
      const auto ts = static_cast<std::uint32_t>(k * 160);
      jb.put(seq, ts, 5, k == 0, payload, sizeof payload, k * 20.0 + 10.0);
      ref.put(seq, ts, payload, sizeof payload, k * 20.0 + 10.0);
    }
    const JitterFrame f = jb.get(now);
    std::int64_t ref_seq = -1;
    const FrameKind ref_kind = ref.get(now, &ref_seq);
    if (tick < 253) {  // then ours holds (conceals) at the end of the stream, the map goes empty
      CHECK_EQ(static_cast<int>(f.kind), static_cast<int>(ref_kind));
      if (f.kind == FrameKind::Normal) CHECK_EQ(f.sequence, ref_seq);
    }
  }
}

void check_playout_always_writes_one_frame() {
  Rng rng{77};
  for (int codec = 0; codec < 3; ++codec) {
    std::unique_ptr<AudioDecoder> dec;
    if (codec == 0) dec = std::make_unique<G711Decoder>(CodecId::PCMU);
    if (codec == 1) dec = std::make_unique<G711Decoder>(CodecId::PCMA);
    if (codec == 2) dec = std::make_unique<L16Decoder>(16000);
    PlayoutConfig c;
    c.buffer.clock_rate = dec->sample_rate();
    c.buffer.frame_samples = dec->sample_rate() / 50;
    Playout p(std::move(dec), c);
    const int frame = p.frame_samples();
    std::vector<std::int16_t> out(static_cast<std::size_t>(frame) + 8, 0x7777);
    std::vector<std::uint8_t> payload(2000);
    int ticks = 0;
    for (int tick = 0; tick < 3000; ++tick) {
      const double now = tick * 20.0;
      for (int j = rng.below(3); j > 0; --j) {
        const int size = rng.uniform() < 0.9 ? 2 * frame : rng.below(2000);
        for (int b = 0; b < size; ++b) payload[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(rng.next());
        const auto seq = static_cast<std::uint16_t>(tick + rng.below(5) - 2);
        p.put(seq, static_cast<std::uint32_t>(seq) * static_cast<std::uint32_t>(frame), 9, false, payload.data(),
              static_cast<std::size_t>(size), now - 30.0 * rng.uniform());
      }
      FrameKind kind = FrameKind::Empty;
      CHECK_EQ(p.tick(now, out.data(), static_cast<std::size_t>(frame), &kind), frame);
      CHECK(out[static_cast<std::size_t>(frame)] == 0x7777);  // nothing past the frame
      ++ticks;
    }
    CHECK_EQ(p.tick(0.0, out.data(), static_cast<std::size_t>(frame - 1)), -1);
    const JitterStats s = p.stats();
    CHECK_EQ(s.total_samples_received, static_cast<std::uint64_t>(ticks) * static_cast<std::uint64_t>(frame));
    CHECK(s.concealed_samples <= s.total_samples_received);
  }
}

void check_plc_and_stretch_stay_in_bounds() {
  Rng rng{4242};
  for (int rate : {8000, 16000, 48000}) {
    G711Plc plc(rate);
    std::vector<std::int16_t> buf(4000);
    for (int round = 0; round < 400; ++round) {
      const auto n = static_cast<std::size_t>(rng.below(3000));
      if (rng.uniform() < 0.5) {
        for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<std::int16_t>(rng.next());
        plc.good(buf.data(), buf.data(), n);
      } else {
        plc.conceal(buf.data(), n);
        // Silent from 60 ms of erasure on.
        const std::size_t first = plc.erased() - n;  // erasure position of buf[0]
        const auto silent_from = static_cast<std::size_t>(rate) * 60 / 1000;
        bool silent = true;
        for (std::size_t i = 0; i < n; ++i) silent = silent && (first + i < silent_from || buf[i] == 0);
        CHECK(silent);
      }
    }
    std::vector<std::int16_t> in(3000), out(6000);
    for (int round = 0; round < 300; ++round) {
      const auto n = static_cast<std::size_t>(rng.below(3000));
      const int period = 20 + rng.below(200);
      for (std::size_t i = 0; i < n; ++i)
        in[i] = static_cast<std::int16_t>((rng.uniform() < 0.5 ? 1 : 0) * (static_cast<int>(i) % period) * 50);
      stretch::Options o;
      o.max_quiet_samples = rng.below(3000);
      o.max_change = rng.below(400);
      const int a = stretch::accelerate(in.data(), n, rate, out.data(), out.size(), o);
      CHECK(a >= 0 && a <= static_cast<int>(n));
      const int e = stretch::preemptive_expand(in.data(), n, rate, out.data(), out.size(), o);
      CHECK(e >= static_cast<int>(n) && e <= static_cast<int>(out.size()));
      // In place.
      std::vector<std::int16_t> work(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
      work.resize(n + 3000);
      CHECK(stretch::preemptive_expand(work.data(), n, rate, work.data(), work.size(), o) >= static_cast<int>(n));
      CHECK(stretch::accelerate(work.data(), n, rate, work.data(), work.size(), o) <= static_cast<int>(n));
    }
  }
}

}  // namespace

int main() {
  check_buffer_on_random_traces();
  check_fixed_delay_matches_map_buffer();
  check_playout_always_writes_one_frame();
  check_plc_and_stretch_stay_in_bounds();
  return check::finish("check_jitter_buffer");
}
