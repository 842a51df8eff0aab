#include "net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace mediacore {

std::uint16_t Address::port() const noexcept {
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void Address::set_port(std::uint16_t port) noexcept {
  if (storage.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (storage.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string Address::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (storage.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string Address::to_string() const {
  if (!valid()) return "-";
  if (storage.ss_family == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
  return host() + ":" + std::to_string(port());
}

bool Address::same_host(const Address& other) const noexcept {
  if (storage.ss_family != other.storage.ss_family) return false;
  if (storage.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&other.storage)->sin_addr.s_addr;
  }
  if (storage.ss_family == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&other.storage)->sin6_addr, 16) == 0;
  }
  return false;
}

bool Address::operator==(const Address& other) const noexcept {
  return same_host(other) && port() == other.port();
}

Address Address::parse(const std::string& host, int port) {
  if (port < 0 || port > 65535) throw std::invalid_argument("port out of range: " + std::to_string(port));
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    a.length = sizeof(sockaddr_in);
    return a;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    a.length = sizeof(sockaddr_in6);
    return a;
  }
  throw std::invalid_argument("not a numeric IP address: '" + host + "'");
}

Address Address::from_sockaddr(const sockaddr* sa, socklen_t length) noexcept {
  Address a;
  if (sa == nullptr || length == 0 || length > static_cast<socklen_t>(sizeof a.storage)) return a;
  std::memcpy(&a.storage, sa, length);
  a.length = length;
  return a;
}

PortAllocator::PortAllocator(const std::string& bind_host, int port_min, int port_max, int socket_buffer_bytes)
    : bind_(Address::parse(bind_host, 0)), buffer_bytes_(socket_buffer_bytes) {
  if (port_min < 1024 || port_max > 65535 || port_min >= port_max) {
    throw std::invalid_argument("RTP port range must be within 1024..65535 and hold at least one pair");
  }
  for (int p = port_min + (port_min & 1); p + 1 <= port_max; p += 2) free_.push_back(static_cast<std::uint16_t>(p));
  if (free_.empty()) throw std::invalid_argument("RTP port range holds no even/odd pair");
  stats_.pairs_total = static_cast<std::uint32_t>(free_.size());
}

namespace {
int open_udp(const Address& bind, std::uint16_t port, int buffer_bytes) {
  int fd = ::socket(bind.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  Address a = bind;
  a.set_port(port);
  if (::bind(fd, a.sa(), a.length) != 0) {
    ::close(fd);
    return -1;
  }
  if (buffer_bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  return fd;
}
}  // namespace

bool PortAllocator::bind_pair(std::uint16_t port, SocketPair* out) {
  int rtp = open_udp(bind_, port, buffer_bytes_);
  if (rtp < 0) return false;
  int rtcp = open_udp(bind_, static_cast<std::uint16_t>(port + 1), 0);
  if (rtcp < 0) {
    ::close(rtp);
    return false;
  }
  out->rtp_fd = rtp;
  out->rtcp_fd = rtcp;
  out->rtp_port = port;
  return true;
}

bool PortAllocator::allocate(SocketPair* out) {
  std::lock_guard<std::mutex> lock(mu_);
  // Try each free pair at most once; a pair another process holds goes to
  // the back, to be tried again later.
  for (std::size_t tries = free_.size(); tries > 0; --tries) {
    const std::uint16_t port = free_.front();
    free_.pop_front();
    if (bind_pair(port, out)) {
      ++stats_.pairs_in_use;
      return true;
    }
    ++stats_.bind_failures;
    free_.push_back(port);
  }
  ++stats_.exhausted;
  return false;
}

void PortAllocator::release(SocketPair* pair) {
  if (pair->rtp_fd >= 0) ::close(pair->rtp_fd);
  if (pair->rtcp_fd >= 0) ::close(pair->rtcp_fd);
  std::lock_guard<std::mutex> lock(mu_);
  if (pair->rtp_port != 0) {
    free_.push_back(pair->rtp_port);
    --stats_.pairs_in_use;
  }
  *pair = SocketPair{};
}

PortAllocatorStats PortAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace mediacore
