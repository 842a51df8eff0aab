// iobench: what each relay I/O design costs per packet on this machine, so
// the engine's choice (a port per call, recvmmsg per ready socket, sendto)
// rests on a measurement (README, "Relay I/O").
//
//   iobench [--packets N] [--calls C]
//
// Prints one JSON object: CPU microseconds per packet, measured with
// getrusage(RUSAGE_THREAD) around the relay's side only, for:
//   port_per_call   recvmmsg on each call's socket (one packet each), sendto per packet
//   port_per_call_connected   the same with connect()ed sockets (send, no route lookup)
//   shared_port     one socket for every call: recvmmsg and sendmmsg batches of 32
// A background thread drains the far ends so their buffers never fill.
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double thread_cpu() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int udp(sockaddr_in* out) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  if (out) *out = a;
  int buf = 8 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  return s;
}

constexpr int kBatch = 32;

struct Result {
  double recv_us = 0, send_us = 0;
  long packets = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int packets = 300000, calls = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--packets") packets = std::atoi(argv[i + 1]);
    else if (k == "--calls") calls = std::atoi(argv[i + 1]);
  }
  char pkt[172];
  std::memset(pkt, 0xff, sizeof pkt);
  std::vector<int> far(static_cast<std::size_t>(calls));
  std::vector<sockaddr_in> far_addr(static_cast<std::size_t>(calls));
  for (int i = 0; i < calls; ++i) far[static_cast<std::size_t>(i)] = udp(&far_addr[static_cast<std::size_t>(i)]);
  std::atomic<bool> stop{false};
  std::thread drain([&] {
    char buf[2048];
    while (!stop) {
      for (int s : far) {
        while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        }
      }
    }
  });
  const int src = udp(nullptr);
  static char rx[kBatch][2048];
  mmsghdr m[kBatch];
  iovec iov[kBatch];
  sockaddr_in from[kBatch];
  auto arm = [&] {
    for (int k = 0; k < kBatch; ++k) {
      iov[k] = {rx[k], sizeof rx[k]};
      m[k].msg_hdr = msghdr{};
      m[k].msg_hdr.msg_iov = &iov[k];
      m[k].msg_hdr.msg_iovlen = 1;
      m[k].msg_hdr.msg_name = &from[k];
      m[k].msg_hdr.msg_namelen = sizeof from[k];
    }
  };
  const int rounds = packets / calls;

  auto per_call = [&](bool connected) {
    Result r;
    std::vector<int> mine(static_cast<std::size_t>(calls));
    std::vector<sockaddr_in> mine_addr(static_cast<std::size_t>(calls));
    for (int i = 0; i < calls; ++i) {
      mine[static_cast<std::size_t>(i)] = udp(&mine_addr[static_cast<std::size_t>(i)]);
      if (connected) {
        connect(mine[static_cast<std::size_t>(i)], reinterpret_cast<sockaddr*>(&far_addr[static_cast<std::size_t>(i)]),
                sizeof far_addr[0]);
      }
    }
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < calls; ++i) {
        // A connected socket only accepts its peer: send from the far end then.
        const int from_fd = connected ? far[static_cast<std::size_t>(i)] : src;
        sendto(from_fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&mine_addr[static_cast<std::size_t>(i)]),
               sizeof mine_addr[0]);
      }
      const double c0 = thread_cpu();
      for (int i = 0; i < calls; ++i) {
        arm();
        const int n = recvmmsg(mine[static_cast<std::size_t>(i)], m, kBatch, MSG_DONTWAIT, nullptr);
        if (n > 0) r.packets += n;
      }
      const double c1 = thread_cpu();
      for (int i = 0; i < calls; ++i) {
        if (connected) {
          send(mine[static_cast<std::size_t>(i)], pkt, sizeof pkt, 0);
        } else {
          sendto(mine[static_cast<std::size_t>(i)], pkt, sizeof pkt, 0,
                 reinterpret_cast<sockaddr*>(&far_addr[static_cast<std::size_t>(i)]), sizeof far_addr[0]);
        }
      }
      const double c2 = thread_cpu();
      r.recv_us += (c1 - c0) * 1e6;
      r.send_us += (c2 - c1) * 1e6;
    }
    for (int s : mine) close(s);
    return r;
  };

  auto shared = [&] {
    Result r;
    sockaddr_in addr;
    const int port = udp(&addr);
    mmsghdr sm[kBatch];
    iovec siov[kBatch];
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < calls; ++i) sendto(src, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      const double c0 = thread_cpu();
      for (int left = calls; left > 0;) {
        arm();
        const int n = recvmmsg(port, m, kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) break;
        r.packets += n;
        left -= n;
      }
      const double c1 = thread_cpu();
      for (int i = 0; i < calls; i += kBatch) {
        int k = 0;
        for (; k < kBatch && i + k < calls; ++k) {
          siov[k] = {pkt, sizeof pkt};
          sm[k].msg_hdr = msghdr{};
          sm[k].msg_hdr.msg_iov = &siov[k];
          sm[k].msg_hdr.msg_iovlen = 1;
          sm[k].msg_hdr.msg_name = &far_addr[static_cast<std::size_t>(i + k)];
          sm[k].msg_hdr.msg_namelen = sizeof far_addr[0];
        }
        sendmmsg(port, sm, static_cast<unsigned>(k), 0);
      }
      const double c2 = thread_cpu();
      r.recv_us += (c1 - c0) * 1e6;
      r.send_us += (c2 - c1) * 1e6;
    }
    close(port);
    return r;
  };

  const Result a = per_call(false), b = per_call(true), c = shared();
  stop = true;
  drain.join();
  auto row = [](const char* name, const Result& r, bool last) {
    const double n = r.packets > 0 ? static_cast<double>(r.packets) : 1.0;
    std::printf("  \"%s\": {\"packets\": %ld, \"recv_us\": %.3f, \"send_us\": %.3f, \"total_us\": %.3f}%s\n", name,
                r.packets, r.recv_us / n, r.send_us / n, (r.recv_us + r.send_us) / n, last ? "" : ",");
  };
  std::printf("{\n  \"calls\": %d,\n", calls);
  row("port_per_call", a, false);
  row("port_per_call_connected", b, false);
  row("shared_port", c, true);
  std::printf("}\n");
  return 0;
}
