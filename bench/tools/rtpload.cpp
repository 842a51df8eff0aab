// rtpload: the RTP traffic generator for the relay benchmarks. The same
// program drives Hotline's engine and rtpengine, so the comparison is fair.
//
//   rtpload --endpoints N [--pps 50] [--duration S] [--warmup S] [--payload 160]
//           [--pt 0] [--host 127.0.0.1]
//
// It binds N UDP sockets (one per phone), prints "PORTS p1 ... pN", then reads
// one line "GO d1 ... dN" from stdin: endpoint i sends to port di (0: it only
// listens). Every endpoint sends `pps` packets per second, spread evenly over
// each period so that traffic is smooth, not bursty. Each payload starts with
// the send time (CLOCK_MONOTONIC ns), the sender's index and a flag saying
// whether it was sent after the warm-up; receivers count and time only those,
// so the loss and latency figures cover the measurement window exactly.
// After `duration` seconds it stops sending, listens 0.5 s more for late
// packets, and prints one JSON object with sent, received, loss and one-way
// latency percentiles (µs), plus its own CPU time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct Endpoint {
  int fd = -1;
  sockaddr_in dest{};
  bool sends = false;
  std::uint16_t seq = 0;
  std::uint32_t ts = 0;
  std::int64_t next_send_ns = 0;
};

void put32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int endpoints = 0, pps = 50, payload = 160, pt = 0;
  double duration = 10, warmup = 2;
  std::string host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--endpoints") endpoints = std::atoi(v.c_str());
    else if (k == "--pps") pps = std::atoi(v.c_str());
    else if (k == "--duration") duration = std::atof(v.c_str());
    else if (k == "--warmup") warmup = std::atof(v.c_str());
    else if (k == "--payload") payload = std::atoi(v.c_str());
    else if (k == "--pt") pt = std::atoi(v.c_str());
    else if (k == "--host") host = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (endpoints <= 0 || pps <= 0 || payload < 16 || payload > 1400 || duration <= warmup) {
    std::fprintf(stderr, "usage: rtpload --endpoints N [--pps 50] [--duration S] [--warmup S] [--payload 160]\n");
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  std::vector<Endpoint> eps(static_cast<std::size_t>(endpoints));
  const int ep = epoll_create1(0);
  std::printf("PORTS");
  for (int i = 0; i < endpoints; ++i) {
    Endpoint& e = eps[static_cast<std::size_t>(i)];
    e.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (e.fd < 0) {
      std::perror("socket");
      return 1;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    if (bind(e.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("bind");
      return 1;
    }
    socklen_t len = sizeof a;
    getsockname(e.fd, reinterpret_cast<sockaddr*>(&a), &len);
    int buf = 1 << 20;
    setsockopt(e.fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, e.fd, &ev);
    std::printf(" %u", ntohs(a.sin_port));
  }
  std::printf("\n");
  std::fflush(stdout);

  std::string line;
  if (!std::getline(std::cin, line) || line.rfind("GO", 0) != 0) {
    std::fprintf(stderr, "expected a GO line\n");
    return 2;
  }
  std::istringstream in(line.substr(2));
  for (auto& e : eps) {
    int port = 0;
    in >> port;
    e.dest.sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &e.dest.sin_addr);
    e.dest.sin_port = htons(static_cast<std::uint16_t>(port));
    e.sends = port > 0;
  }

  const std::int64_t period = 1000000000LL / pps;
  const std::int64_t t0 = now_ns() + 50000000LL;  // start in 50 ms
  for (int i = 0; i < endpoints; ++i) {
    eps[static_cast<std::size_t>(i)].next_send_ns = t0 + period * i / endpoints;  // spread over the period
    eps[static_cast<std::size_t>(i)].seq = static_cast<std::uint16_t>(i * 7919);
  }
  const std::int64_t measure_from = t0 + static_cast<std::int64_t>(warmup * 1e9);
  const std::int64_t stop_at = t0 + static_cast<std::int64_t>(duration * 1e9);
  const std::int64_t end_at = stop_at + 500000000LL;

  std::vector<std::uint8_t> pkt(static_cast<std::size_t>(12 + payload), 0xFF);
  std::uint64_t sent = 0, sent_measured = 0, received = 0, received_measured = 0, send_errors = 0;
  std::uint64_t late_for_window = 0;
  std::vector<std::uint32_t> latency_hist(1000001, 0);  // µs, up to 1 s
  std::uint64_t latency_over = 0;

  constexpr int kBatch = 32;
  std::vector<std::uint8_t> rx(static_cast<std::size_t>(kBatch) * 2048);
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  epoll_event evs[256];
  std::size_t next = 0;  // round-robin cursor for sending
  double cpu_at_measure = -1, cpu_at_stop = -1;

  for (;;) {
    const std::int64_t now = now_ns();
    if (now >= end_at) break;
    if (cpu_at_measure < 0 && now >= measure_from) cpu_at_measure = cpu_seconds();
    if (cpu_at_stop < 0 && now >= stop_at) cpu_at_stop = cpu_seconds();
    // Send everything due.
    if (now < stop_at) {
      for (std::size_t k = 0; k < eps.size(); ++k) {
        Endpoint& e = eps[(next + k) % eps.size()];
        if (!e.sends || e.next_send_ns > now) continue;
        const bool measured = e.next_send_ns >= measure_from;
        pkt[0] = 0x80;
        pkt[1] = static_cast<std::uint8_t>(pt & 0x7F);
        pkt[2] = static_cast<std::uint8_t>(e.seq >> 8);
        pkt[3] = static_cast<std::uint8_t>(e.seq);
        put32(&pkt[4], e.ts);
        put32(&pkt[8], static_cast<std::uint32_t>(&e - eps.data()) + 1);
        const std::int64_t t = now_ns();
        std::memcpy(&pkt[12], &t, 8);
        put32(&pkt[20], static_cast<std::uint32_t>(&e - eps.data()));
        pkt[24] = measured ? 1 : 0;
        if (sendto(e.fd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&e.dest), sizeof e.dest) < 0) {
          ++send_errors;
        }
        ++sent;
        if (measured) ++sent_measured;
        ++e.seq;
        e.ts += 8000 / static_cast<std::uint32_t>(pps);
        e.next_send_ns += period;
        if (e.next_send_ns <= now) ++late_for_window;  // we are behind schedule
      }
      next = (next + 1) % eps.size();
    }
    // Receive until the next send is due (at most 1 ms).
    std::int64_t wait_ns = 1000000;
    const int n = epoll_wait(ep, evs, 256, static_cast<int>(wait_ns / 1000000));
    for (int i = 0; i < n; ++i) {
      const int fd = eps[evs[i].data.u32].fd;
      for (int j = 0; j < kBatch; ++j) {
        iov[j].iov_base = rx.data() + static_cast<std::size_t>(j) * 2048;
        iov[j].iov_len = 2048;
        msgs[j].msg_hdr = msghdr{};
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
      }
      const int got = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      const std::int64_t arrival = now_ns();
      for (int j = 0; j < got; ++j) {
        ++received;
        const std::uint8_t* p = rx.data() + static_cast<std::size_t>(j) * 2048;
        if (msgs[j].msg_len < 25) continue;
        std::int64_t t = 0;
        std::memcpy(&t, p + 12, 8);
        if (p[24] != 1) continue;
        ++received_measured;
        const std::int64_t us = (arrival - t) / 1000;
        if (us >= 0 && us <= 1000000) {
          ++latency_hist[static_cast<std::size_t>(us)];
        } else {
          ++latency_over;
        }
      }
    }
  }
  const double cpu_total = cpu_seconds();
  if (cpu_at_measure < 0) cpu_at_measure = cpu_total;
  if (cpu_at_stop < 0) cpu_at_stop = cpu_total;

  auto percentile = [&](double q) -> long {
    const std::uint64_t total = received_measured;
    if (total == 0) return -1;
    const auto target = static_cast<std::uint64_t>(q * static_cast<double>(total));
    std::uint64_t acc = 0;
    for (std::size_t us = 0; us < latency_hist.size(); ++us) {
      acc += latency_hist[us];
      if (acc > target) return static_cast<long>(us);
    }
    return 1000001;
  };
  long max_us = -1;
  for (std::size_t us = latency_hist.size(); us-- > 0;) {
    if (latency_hist[us]) {
      max_us = static_cast<long>(us);
      break;
    }
  }
  const double window = duration - warmup;
  const std::uint64_t expected = sent_measured;  // every packet sent should come back to someone
  std::printf(
      "{\"endpoints\": %d, \"pps_per_endpoint\": %d, \"window_s\": %.3f, \"sent\": %llu, \"received\": %llu, "
      "\"sent_measured\": %llu, \"received_measured\": %llu, \"loss_ratio\": %.6f, \"send_errors\": %llu, "
      "\"behind_schedule\": %llu, \"latency_us\": {\"p50\": %ld, \"p90\": %ld, \"p99\": %ld, \"p999\": %ld, "
      "\"max\": %ld, \"over_1s\": %llu}, \"cpu_s\": {\"total\": %.3f, \"window\": %.3f}}\n",
      endpoints, pps, window, static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(sent_measured), static_cast<unsigned long long>(received_measured),
      expected ? 1.0 - static_cast<double>(received_measured) / static_cast<double>(expected) : 0.0,
      static_cast<unsigned long long>(send_errors), static_cast<unsigned long long>(late_for_window), percentile(0.5),
      percentile(0.9), percentile(0.99), percentile(0.999), max_us, static_cast<unsigned long long>(latency_over),
      cpu_total, cpu_at_stop - cpu_at_measure);
  return 0;
}
