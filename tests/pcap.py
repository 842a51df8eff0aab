"""A small pure-Python reader of packet captures, for tests.

Reads classic pcap (microsecond and nanosecond, either byte order) and pcapng
(section header, interface description, enhanced and simple packet blocks,
per-interface timestamp resolution), decodes the link layers tools produce on
this machine (Ethernet with 802.1Q tags, Linux cooked SLL and SLL2, BSD
loopback, raw IP), IPv4 and IPv6, and returns UDP datagrams with their
capture time:

    >>> from tests.pcap import udp_datagrams
    >>> for d in udp_datagrams("/usr/share/sip-tester/dtmf_2833_1.pcap"):
    ...     print(d.time, d.src, d.dst, d.payload[:2].hex())  # doctest: +SKIP

Frames it cannot decode (ARP, TCP, IP fragments after the first...) are
skipped: ``read_frames`` still returns them. Truncated or malformed files raise
``PcapError`` saying where.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PcapError", "Frame", "UdpDatagram", "read_frames", "udp_datagrams"]

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D


class PcapError(ValueError):
    """The file is not a capture this reader understands, or is truncated."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: capture time (seconds, epoch), link type and bytes."""

    time: float
    link_type: int
    data: bytes
    original_length: int


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """A UDP datagram: capture time (seconds, epoch), addresses and payload."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_frames(path: str | Path) -> list[Frame]:
    """Every frame of a pcap or pcapng file, in file order."""
    data = Path(path).read_bytes()
    if len(data) < 4:
        raise PcapError(f"{path}: too short to be a capture ({len(data)} bytes)")
    if data[:4] in _PCAP_MAGIC:
        return list(_read_pcap(data, str(path)))
    if struct.unpack("<I", data[:4])[0] == _PCAPNG_SHB:
        return list(_read_pcapng(data, str(path)))
    raise PcapError(f"{path}: not a pcap or pcapng file (magic {data[:4].hex()})")


def udp_datagrams(path: str | Path, *, port: int | None = None) -> list[UdpDatagram]:
    """The UDP datagrams of a capture (only those to or from ``port`` if given)."""
    out = []
    for frame in read_frames(path):
        datagram = _decode_udp(frame)
        if datagram is None:
            continue
        if port is not None and port not in (datagram.src[1], datagram.dst[1]):
            continue
        out.append(datagram)
    return out


# ---------------------------------------------------------------- containers

def _read_pcap(data: bytes, name: str) -> Iterator[Frame]:
    order, resolution = _PCAP_MAGIC[data[:4]]
    if len(data) < 24:
        raise PcapError(f"{name}: truncated pcap global header")
    link_type = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF  # upper bits: FCS info
    pos = 24
    while pos < len(data):
        if pos + 16 > len(data):
            raise PcapError(f"{name}: truncated record header at byte {pos}")
        seconds, fraction, captured, original = struct.unpack(order + "IIII", data[pos:pos + 16])
        pos += 16
        if pos + captured > len(data):
            raise PcapError(f"{name}: record at byte {pos - 16} claims {captured} bytes, file ends first")
        yield Frame(seconds + fraction * resolution, link_type, data[pos:pos + captured], original)
        pos += captured


def _read_pcapng(data: bytes, name: str) -> Iterator[Frame]:
    order = "<"
    interfaces: list[tuple[int, float]] = []  # (link type, seconds per timestamp unit)
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise PcapError(f"{name}: truncated block header at byte {pos}")
        block_type = struct.unpack(order + "I", data[pos:pos + 4])[0]
        if block_type == _PCAPNG_SHB:
            # The byte order of a section is given by its own header.
            magic = data[pos + 8:pos + 12]
            if magic == struct.pack("<I", _PCAPNG_BYTE_ORDER_MAGIC):
                order = "<"
            elif magic == struct.pack(">I", _PCAPNG_BYTE_ORDER_MAGIC):
                order = ">"
            else:
                raise PcapError(f"{name}: bad section header byte-order magic at byte {pos}")
            interfaces = []
        length = struct.unpack(order + "I", data[pos + 4:pos + 8])[0]
        if length < 12 or length % 4 or pos + length > len(data):
            raise PcapError(f"{name}: bad block length {length} at byte {pos}")
        body = data[pos + 8:pos + length - 4]
        if block_type == 1:  # interface description
            link_type = struct.unpack(order + "H", body[0:2])[0]
            interfaces.append((link_type, _tsresol(body[8:], order)))
        elif block_type in (6, 2):  # enhanced packet (6), obsolete packet (2)
            if block_type == 6:
                iface, high, low, captured, original = struct.unpack(order + "IIIII", body[:20])
            else:
                iface, _drops, high, low, captured, original = struct.unpack(order + "HHIIII", body[:20])
            if iface >= len(interfaces):
                raise PcapError(f"{name}: packet block at byte {pos} names interface {iface}, not described")
            if 20 + captured > len(body):
                raise PcapError(f"{name}: packet block at byte {pos} is shorter than its captured length")
            link_type, unit = interfaces[iface]
            yield Frame(((high << 32) | low) * unit, link_type, body[20:20 + captured], original)
        elif block_type == 3:  # simple packet: no timestamp
            if not interfaces:
                raise PcapError(f"{name}: simple packet block at byte {pos} before any interface")
            original = struct.unpack(order + "I", body[:4])[0]
            captured = min(original, len(body) - 4)
            yield Frame(0.0, interfaces[0][0], body[4:4 + captured], original)
        pos += length


def _tsresol(options: bytes, order: str) -> float:
    """Seconds per timestamp unit from an interface's options (default microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack(order + "HH", options[pos:pos + 4])
        if code == 0:
            break
        if code == 9 and length >= 1:  # if_tsresol
            value = options[pos + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
        pos += 4 + (length + 3) // 4 * 4
    return 1e-6


# ---------------------------------------------------------------- protocols

def _decode_udp(frame: Frame) -> UdpDatagram | None:
    ip = _network_payload(frame.link_type, frame.data)
    if ip is None:
        return None
    version, packet = ip
    if version == 4:
        parsed = _ipv4_udp(packet)
    else:
        parsed = _ipv6_udp(packet)
    if parsed is None:
        return None
    src_ip, dst_ip, segment = parsed
    if len(segment) < 8:
        return None
    src_port, dst_port, length = struct.unpack("!HHH", segment[:6])
    if length < 8:
        return None
    return UdpDatagram(frame.time, (src_ip, src_port), (dst_ip, dst_port), bytes(segment[8:length]))


def _network_payload(link_type: int, data: bytes) -> tuple[int, bytes] | None:
    """(IP version, IP packet) of a frame, or None if it carries no IP."""
    ethertype: int | None
    if link_type == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = struct.unpack("!H", data[12:14])[0]
        pos = 14
        while ethertype in (0x8100, 0x88A8) and len(data) >= pos + 4:  # VLAN tags
            ethertype = struct.unpack("!H", data[pos + 2:pos + 4])[0]
            pos += 4
        payload = data[pos:]
    elif link_type == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        ethertype = struct.unpack("!H", data[14:16])[0]
        payload = data[16:]
    elif link_type == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        ethertype = struct.unpack("!H", data[0:2])[0]
        payload = data[20:]
    elif link_type == LINKTYPE_NULL:
        if len(data) < 4:
            return None
        family = struct.unpack("<I", data[:4])[0]
        if family > 0xFFFF:  # written in big-endian by the capturing host
            family = struct.unpack(">I", data[:4])[0]
        ethertype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else None
        payload = data[4:]
    elif link_type in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        ethertype = None
        payload = data
    else:
        return None
    if ethertype is None:
        if not payload:
            return None
        version = payload[0] >> 4
        return (version, payload) if version in (4, 6) else None
    if ethertype == 0x0800:
        return 4, payload
    if ethertype == 0x86DD:
        return 6, payload
    return None


def _ipv4_udp(packet: bytes) -> tuple[str, str, bytes] | None:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header = (packet[0] & 0x0F) * 4
    total = struct.unpack("!H", packet[2:4])[0]
    flags_fragment = struct.unpack("!H", packet[6:8])[0]
    if header < 20 or total < header or packet[9] != 17:
        return None
    if flags_fragment & 0x3FFF:  # more fragments, or not the first: not reassembled here
        return None
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    return src, dst, packet[header:min(total, len(packet))]


_IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options


def _ipv6_udp(packet: bytes) -> tuple[str, str, bytes] | None:
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    payload_length = struct.unpack("!H", packet[4:6])[0]
    next_header = packet[6]
    src = str(ipaddress.IPv6Address(packet[8:24]))
    dst = str(ipaddress.IPv6Address(packet[24:40]))
    body = packet[40:40 + payload_length]
    while next_header in _IPV6_EXTENSIONS and len(body) >= 8:
        next_header, length = body[0], (body[1] + 1) * 8
        body = body[length:]
    if next_header != 17:
        return None
    return src, dst, body
