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
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import trio

from orchestrator.sip import Address

__all__ = ["UdpTransport", "UdpStatistics", "MAX_DATAGRAM"]

MAX_DATAGRAM = 65535
Receiver = Callable[[bytes, Address], None]


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

    def statistics(self) -> UdpStatistics:
        return UdpStatistics(local=self.local, datagrams_received=self._rx, bytes_received=self._rx_bytes,
                             datagrams_sent=self._tx, bytes_sent=self._tx_bytes, send_dropped=self._dropped,
                             send_errors=self._send_errors, receive_errors=self._rx_errors)

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
        return sock

    async def serve(self, receiver: Receiver, *,
                    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the local Address, then deliver datagrams until cancelled."""
        sock = self._open()
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.local = Address(host, port, "UDP")
        recvfrom = sock.recvfrom
        batch = self.max_batch
        try:
            task_status.started(self.local)
            while True:
                await trio.lowlevel.wait_readable(sock)
                for _ in range(batch):
                    try:
                        data, peer = recvfrom(MAX_DATAGRAM)
                    except BlockingIOError:
                        break
                    except OSError:
                        self._rx_errors += 1  # e.g. an ICMP error queued on the socket
                        continue
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
