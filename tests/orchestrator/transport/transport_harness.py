"""Helpers for the transport tests: a raw UDP/TCP client on loopback and SIP text."""

from __future__ import annotations

import functools
import re
import socket
from pathlib import Path

import trio

from orchestrator.sip import SipParseError, parse_datagram

RFC4475 = Path(__file__).resolve().parent.parent / "sip" / "fixtures" / "rfc4475"


def trio_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))
    return wrapper


def options(port: int, *, transport: str = "UDP", branch: str = "z9hG4bKopt1", rport: bool = True,
            via_port: int | None = None, extra: str = "", method: str = "OPTIONS", call_id: str = "opt-1",
            cseq: int = 1) -> bytes:
    via = f"SIP/2.0/{transport} 127.0.0.1:{via_port or port};branch={branch}" + (";rport" if rport else "")
    return (f"{method} sip:probe@127.0.0.1 SIP/2.0\r\n"
            f"Via: {via}\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:tester@127.0.0.1>;tag=t1\r\n"
            "To: <sip:probe@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n").encode()


def rfc4475(name: str, port: int) -> bytes:
    """An RFC 4475 torture message with its top Via pointed at our test socket."""
    data = (RFC4475 / f"{name}.dat").read_bytes()
    return re.sub(rb"Via:[ \t]*SIP/[0-9.]+/[A-Z]+ [^;\r\n]+", f"Via: SIP/2.0/UDP 127.0.0.1:{port}".encode(),
                  data, count=1)


class UdpClient:
    """A plain Trio UDP socket on 127.0.0.1."""

    def __init__(self) -> None:
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.raw.bind(("127.0.0.1", 0))
        self.port = self.raw.getsockname()[1]
        self.sock = trio.socket.from_stdlib_socket(self.raw)

    async def __aenter__(self) -> UdpClient:
        return self

    def send_now(self, data: bytes, to) -> None:
        """Send without a checkpoint: nothing else runs before the caller's next statement."""
        self.raw.sendto(data, (to.host, to.port))

    async def __aexit__(self, *exc: object) -> None:
        self.sock.close()

    async def send(self, data: bytes, to) -> None:
        await self.sock.sendto(data, (to.host, to.port))

    async def receive(self, *, skip_100: bool = True):
        """The next SIP message. Anything that does not parse is skipped: on a shared test
        machine another process's stray RTP can land on a port we were just given."""
        while True:
            data, _ = await self.sock.recvfrom(65535)
            try:
                message = parse_datagram(data)
            except SipParseError:
                continue
            if not (skip_100 and getattr(message, "status_code", None) == 100):
                return message
