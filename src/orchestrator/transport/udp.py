"""SIP over UDP on Trio: one socket per listen address (RFC 3261 18.1, 18.2).

The socket is a non-blocking stdlib socket that Trio waits on with
``wait_readable``; datagrams are drained in batches (up to ``max_batch`` per
wake-up) and handed to the receiver callback as raw bytes with their source
address. Sending is synchronous: a UDP ``sendto`` on a non-blocking socket
either queues the datagram in the kernel or fails at once, so the SIP
endpoint can execute ``Send`` effects without a task switch. A full send
buffer drops the datagram and counts it (SIP over UDP retransmits); any other
error is reported to ``on_error`` so the transaction fails as RFC 3261 17.1.4
asks.

Queue delay. On Linux the socket asks the kernel to stamp each datagram with
its arrival time (``SO_TIMESTAMPNS``); :attr:`UdpTransport.queue_delay` is how
long datagrams wait in the socket buffer before we read them, smoothed over
about a quarter of a second (so a momentary burst does not count as an
overload, a sustained backlog does within that time). It is the signal
of overload that matters for SIP over UDP: once requests wait longer than the
peers' retransmission timer (T1, 500 ms), every late answer is preceded by
retransmissions that add to the load. The B2BUA refuses new calls while it
is high (CallManagerConfig.max_queue_delay).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from orchestrator.sip import Address

__all__ = ["UdpTransport", "UdpStatistics", "MAX_DATAGRAM"]

MAX_DATAGRAM = 65535
Receiver = Callable[[bytes, Address], None]
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not name it
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


@dataclass(frozen=True)
class UdpStatistics:
    local: Address | None
    datagrams_received: int
    bytes_received: int
    datagrams_sent: int
    bytes_sent: int
    send_dropped: int
    send_errors: int
    receive_errors: int
    queue_delay: float
    max_queue_delay: float


class UdpTransport:
    """A UDP listen address. ``await nursery.start(t.serve, receiver)`` returns its Address."""

    name = "UDP"
    reliable = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_batch: int = 64,
                 socket_buffer_bytes: int = 0) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError("host: must be a non-empty address string")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: must be 0..65535, not {port!r}")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError("max_batch: must be an int >= 1")
        self.host = host
        self.port = port
        self.max_batch = max_batch
        self.socket_buffer_bytes = socket_buffer_bytes
        self.local: Address | None = None
        self._sock: socket.socket | None = None
        self._rx = self._rx_bytes = self._tx = self._tx_bytes = 0
        self._dropped = self._send_errors = self._rx_errors = 0
        self.queue_delay = 0.0
        self.delay_time_constant = 0.25
        self._delay_updated = 0.0
        self._max_queue_delay = 0.0
        self._timestamps = False

    def statistics(self) -> UdpStatistics:
        return UdpStatistics(local=self.local, datagrams_received=self._rx, bytes_received=self._rx_bytes,
                             datagrams_sent=self._tx, bytes_sent=self._tx_bytes, send_dropped=self._dropped,
                             send_errors=self._send_errors, receive_errors=self._rx_errors,
                             queue_delay=self.queue_delay, max_queue_delay=self._max_queue_delay)

    def _open(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.socket_buffer_bytes:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer_bytes)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer_bytes)
            sock.bind((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            self._timestamps = True
        except OSError:  # not Linux: no queue delay measurement
            self._timestamps = False
        return sock

    async def serve(self, receiver: Receiver, *,
                    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the local Address, then deliver datagrams until cancelled."""
        sock = self._open()
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.local = Address(host, port, "UDP")
        recvmsg = sock.recvmsg
        batch = self.max_batch
        stamped = self._timestamps
        ancillary = _ANCILLARY if stamped else 0
        unpack = _TIMESPEC.unpack
        try:
            task_status.started(self.local)
            while True:
                await trio.lowlevel.wait_readable(sock)
                for _ in range(batch):
                    try:
                        data, cmsgs, _, peer = recvmsg(MAX_DATAGRAM, ancillary)
                    except BlockingIOError:
                        break
                    except OSError:
                        self._rx_errors += 1  # e.g. an ICMP error queued on the socket
                        continue
                    if stamped and cmsgs:
                        sec, nsec = unpack(cmsgs[0][2][:16])
                        now = time.time()
                        delay = min(10.0, max(0.0, now - sec - nsec * 1e-9))
                        weight = min(1.0, (now - self._delay_updated) / self.delay_time_constant)
                        self._delay_updated = now
                        self.queue_delay += (delay - self.queue_delay) * weight
                        if delay > self._max_queue_delay:
                            self._max_queue_delay = delay
                    self._rx += 1
                    self._rx_bytes += len(data)
                    receiver(data, Address(peer[0], peer[1], "UDP"))
        finally:
            self._sock = None
            sock.close()

    def send(self, data: bytes, destination: Address, on_error: Callable[[], None] | None = None) -> None:
        """Send one datagram now (never blocks, never raises for network errors)."""
        sock = self._sock
        if sock is None:
            self._send_errors += 1
            if on_error is not None:
                on_error()
            return
        try:
            sock.sendto(data, (destination.host, destination.port))
        except BlockingIOError:
            self._dropped += 1
            return
        except OSError:
            self._send_errors += 1
            if on_error is not None:
                on_error()
            return
        self._tx += 1
        self._tx_bytes += len(data)
