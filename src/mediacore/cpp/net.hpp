// Network plumbing for the media engine: socket addresses, non-blocking UDP
// sockets, and the RTP/RTCP port allocator.
//
// The allocator hands out even RTP ports with RTCP on the next odd port (RFC
// 3550 section 11), binds both before returning, and recycles released pairs
// last-in-last-out, so that a port is reused as late as possible and stray
// packets of an ended call do not reach the next one.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace mediacore {

// An IPv4 or IPv6 UDP endpoint.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  bool valid() const noexcept { return length != 0; }
  int family() const noexcept { return storage.ss_family; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  std::string host() const;
  std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"
  bool same_host(const Address& other) const noexcept;
  bool operator==(const Address& other) const noexcept;
  bool operator!=(const Address& other) const noexcept { return !(*this == other); }
  const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }

  // A numeric IPv4/IPv6 literal and a port; throws std::invalid_argument
  // otherwise (no DNS: the signalling layer resolves names).
  static Address parse(const std::string& host, int port);
  static Address from_sockaddr(const sockaddr* sa, socklen_t length) noexcept;
};

// A pair of bound, non-blocking UDP sockets for one RTP session.
struct SocketPair {
  int rtp_fd = -1;
  int rtcp_fd = -1;
  std::uint16_t rtp_port = 0;  // rtcp_port = rtp_port + 1
};

struct PortAllocatorStats {
  std::uint32_t pairs_total = 0;    // pairs in the configured range
  std::uint32_t pairs_in_use = 0;
  std::uint64_t bind_failures = 0;  // pairs skipped because something else held a port
  std::uint64_t exhausted = 0;      // allocate() calls that found nothing
};

// Thread-safe (called from the Python thread and from engine workers).
class PortAllocator {
 public:
  // [port_min, port_max] inclusive; RTP ports are the even ones in the range
  // whose odd neighbour is also in it. Throws std::invalid_argument for a bad
  // range or address.
  PortAllocator(const std::string& bind_host, int port_min, int port_max, int socket_buffer_bytes = 0);

  // Binds a pair; returns false (and counts) when every pair is in use or
  // fails to bind. Sockets are non-blocking and close-on-exec.
  bool allocate(SocketPair* out);
  // Closes both sockets and recycles the pair.
  void release(SocketPair* pair);

  PortAllocatorStats stats() const;
  const Address& bind_address() const noexcept { return bind_; }

 private:
  bool bind_pair(std::uint16_t port, SocketPair* out);

  Address bind_;
  int buffer_bytes_;
  mutable std::mutex mu_;
  std::deque<std::uint16_t> free_;
  PortAllocatorStats stats_;
};

}  // namespace mediacore
