// The media engine under AddressSanitizer + UndefinedBehaviorSanitizer: a live
// scenario over real loopback sockets with every path the engine has (relay,
// transcode, players, recording, conference with supervision, RFC 4733 in and
// out), garbage packets, legs destroyed while packets flow, and a close with
// calls still up. Run by tests/native/test_native.py; any sanitizer report
// fails it, as does a failed CHECK.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "engine.hpp"
#include "g711.hpp"

using namespace mediacore;

namespace {

struct Udp {
  int fd = -1;
  std::uint16_t port = 0;
  Udp() {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    timeval tv{0, 20000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Udp() { ::close(fd); }
  void send(std::uint16_t to, const std::uint8_t* data, std::size_t n) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(to);
    ::sendto(fd, data, n, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  int drain() const {  // packets waiting, read and counted
    int n = 0;
    std::uint8_t buf[2048];
    while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;
    return n;
  }
};

std::vector<std::uint8_t> rtp(std::uint16_t seq, std::uint32_t ts, std::uint8_t pt, std::size_t payload,
                              std::uint8_t fill = 0xFF) {
  std::vector<std::uint8_t> p(12 + payload, fill);
  p[0] = 0x80;
  p[1] = pt;
  p[2] = static_cast<std::uint8_t>(seq >> 8);
  p[3] = static_cast<std::uint8_t>(seq);
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<std::uint8_t>(ts >> (24 - 8 * i));
  p[8] = 0xAB;
  p[9] = 0xCD;
  p[10] = 0x12;
  p[11] = 0x34;
  return p;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string write_prompt() {
  const std::string path = "/tmp/hotline-check-engine-prompt.wav";
  const int n = 4000;
  std::vector<std::int16_t> pcm(n);
  for (int i = 0; i < n; ++i) pcm[i] = static_cast<std::int16_t>(6000 * std::sin(2 * M_PI * 500 * i / 8000.0));
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](std::uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](std::uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4);
  u32(36 + 2 * n);
  f.write("WAVEfmt ", 8);
  u32(16);
  u16(1);
  u16(1);
  u32(8000);
  u32(16000);
  u16(2);
  u16(16);
  f.write("data", 4);
  u32(2 * n);
  f.write(reinterpret_cast<const char*>(pcm.data()), 2 * n);
  return path;
}

}  // namespace

int main() {
  const std::string prompt = write_prompt();
  EngineConfig cfg;
  cfg.port_min = 46000;
  cfg.port_max = 46399;
  cfg.threads = 2;
  cfg.stats_interval_ms = 100;
  cfg.rtcp_interval_ms = 200;
  std::vector<Event> events;
  {
    Engine engine(cfg);
    Udp x, y, z, w;
    LegConfig lc;
    lc.codec = CodecId::PCMU;
    lc.payload_type = 0;
    lc.telephone_event_pt = 101;
    lc.remote_host = "127.0.0.1";

    // Relay with garbage mixed in.
    lc.remote_port = x.port;
    const LegInfo a = engine.create_leg(lc);
    lc.remote_port = y.port;
    const LegInfo b = engine.create_leg(lc);
    engine.bridge(a.id, b.id);
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
      auto p = rtp(static_cast<std::uint16_t>(65500 + i), 160u * i, 0, 160);
      x.send(a.rtp_port, p.data(), p.size());
      std::vector<std::uint8_t> junk(rng() % 300);
      for (auto& c : junk) c = static_cast<std::uint8_t>(rng());
      if (!junk.empty() && (junk[0] & 0xC0) == 0x80) junk[0] = 0x40;  // keep it invalid RTP
      x.send(a.rtp_port, junk.data(), junk.size());
      x.send(a.rtcp_port, junk.data(), junk.size());
      if (i % 20 == 0) sleep_ms(5);
    }
    sleep_ms(200);
    const int relayed = y.drain();
    CHECK(relayed >= 180);
    const LegStats st = engine.leg_stats(a.id);
    CHECK(st.dropped_malformed >= 150);
    CHECK(st.packets_relayed >= 180);

    // Transcoding, a prompt, a recording, RFC 4733 both ways.
    LegConfig alaw = lc;
    alaw.codec = CodecId::PCMA;
    alaw.payload_type = 8;
    alaw.remote_port = z.port;
    const LegInfo c = engine.create_leg(alaw);
    engine.leave(engine.bridge(a.id, b.id), a.id);  // rebridge then split: rooms come and go
    const ObjectId room2 = engine.bridge(a.id, c.id);
    RecordSpec rs;
    rs.path = "/tmp/hotline-check-engine-rec.wav";
    const ObjectId rec = engine.record(a.id, rs);
    PlaySpec ps;
    ps.path = prompt;
    ps.stop_on_dtmf = true;
    engine.play(c.id, ps);
    engine.send_dtmf(c.id, "12#", 80, 60);
    for (int i = 0; i < 50; ++i) {
      auto p = rtp(static_cast<std::uint16_t>(i), 160u * i, 0, 160, static_cast<std::uint8_t>(i));
      x.send(a.rtp_port, p.data(), p.size());
      sleep_ms(20);
    }
    CHECK(z.drain() >= 40);
    engine.pause_recording(rec);
    engine.resume_recording(rec);
    engine.stop_recording(rec);

    // A conference with a supervisor, members leaving while it mixes.
    const ObjectId room = engine.create_room();
    std::vector<LegInfo> members;
    for (int i = 0; i < 6; ++i) {
      lc.remote_port = w.port;
      members.push_back(engine.create_leg(lc));
      engine.join(room, members.back().id, i < 5);
    }
    engine.supervise(room, members[5].id, members[0].id, members[1].id, 1);
    PlaySpec tone;
    tone.kind = PlayKind::Tone;
    tone.tone = "ringback";
    engine.play(room, tone);
    std::atomic<bool> sending{true};
    std::thread sender([&] {
      int i = 0;
      while (sending) {
        for (const auto& m : members) {
          auto p = rtp(static_cast<std::uint16_t>(i), 160u * static_cast<std::uint32_t>(i), 0, 160);
          w.send(m.rtp_port, p.data(), p.size());
        }
        ++i;
        sleep_ms(20);
      }
    });
    sleep_ms(200);
    engine.supervise(room, members[5].id, members[0].id, members[1].id, 3);
    sleep_ms(100);
    engine.destroy_leg(members[2].id);  // under traffic
    engine.leave(room, members[3].id);
    sleep_ms(200);
    sending = false;
    sender.join();
    CHECK(w.drain() > 20);

    engine.wait_events(events, 100);
    const EngineStats es = engine.stats();
    CHECK(es.events_dropped == 0);
    CHECK(es.port_pairs_in_use >= 7);
    (void)room2;
    // Close with live calls, a playing tone and recordings pending.
    engine.close();
    CHECK(engine.closed());
  }
  std::remove(prompt.c_str());
  std::remove("/tmp/hotline-check-engine-rec.wav");
  return check::finish();
}
