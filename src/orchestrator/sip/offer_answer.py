"""The offer/answer model (RFC 3264) for Hotline's audio: PCMU, PCMA, Opus
(RFC 7587: ``opus/48000/2``, fmtp passed through) and telephone-event
(RFC 4733: ``0-15``/``0-16``).

* :func:`create_offer` - an offer listing our codecs in preference order.
* :func:`create_answer` - the answer to an offer (RFC 3264 section 6): same
  number and order of m-lines; unsupported streams rejected with port 0
  (6: the offered formats are echoed); one audio codec chosen from the
  intersection (our order or the offerer's, by policy), with the offerer's
  payload type numbers (6.1); telephone-event with the rate of the chosen
  codec when offered; directions inverted (6.1); our ptime.
* :func:`apply_answer` - what the offerer learns from the answer (7).

Every function returns typed results (:class:`Negotiation`) saying which
codec, which payload types, where to send media, in which direction, whether
the peer put us on hold (``sendonly``/``inactive`` or the RFC 2543
``c=0.0.0.0`` form, RFC 3264 8.4) and the remote ptime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .errors import LocalProtocolError
from .sdp import Connection, Media, Origin, RtpMap, SdpParseError, SessionDescription

__all__ = ["Codec", "MediaPolicy", "StreamResult", "Negotiation", "create_offer", "create_answer",
           "apply_answer", "answer_direction"]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_KNOWN = {"pcmu": ("PCMU", 8000, 1, 0), "pcma": ("PCMA", 8000, 1, 8), "opus": ("opus", 48000, 2, None)}
_EVENT = "telephone-event"
_RTP_PROTOS = ("RTP/AVP",)


@dataclass(frozen=True)
class Codec:
    """A negotiated codec: name as in rtpmap, RTP clock rate, channels, payload type, fmtp."""

    name: str
    clock_rate: int
    channels: int
    payload_type: int
    fmtp: str | None = None


@dataclass(frozen=True, kw_only=True)
class MediaPolicy:
    """What we offer and accept. ``codecs`` is our preference order."""

    codecs: tuple[str, ...] = ("opus", "PCMU", "PCMA")
    prefer: Literal["local", "remote"] = "local"
    telephone_event: bool = True
    telephone_events: str = "0-16"  # events we can send and receive (RFC 4733 3.2: 0-15 DTMF, 16 flash)
    ptime: int | None = 20
    maxptime: int | None = None
    opus_fmtp: str | None = "useinbandfec=1"
    dynamic_payload_types: tuple[int, int] = (96, 101)  # opus, telephone-event in our offers

    def __post_init__(self) -> None:
        if isinstance(self.codecs, str) or not self.codecs:
            raise ValueError("codecs: must be a non-empty tuple of codec names")
        for c in self.codecs:
            if c.lower() not in _KNOWN:
                raise ValueError(f"codecs: {c!r} is not one of PCMU, PCMA, opus")
        if self.prefer not in ("local", "remote"):
            raise ValueError("prefer: must be 'local' or 'remote'")
        if self.ptime is not None and not 10 <= self.ptime <= 120:
            raise ValueError("ptime: must be 10..120 ms")
        _parse_events(self.telephone_events)


@dataclass(frozen=True)
class StreamResult:
    """The outcome for one m-line, from our point of view."""

    index: int
    media: str
    accepted: bool
    codec: Codec | None = None
    telephone_event: Codec | None = None
    remote_address: str | None = None
    remote_port: int = 0
    direction: Direction = "inactive"  # what *we* may do: send, receive, both, neither
    remote_hold: bool = False
    remote_ptime: int | None = None
    remote_maxptime: int | None = None


@dataclass(frozen=True)
class Negotiation:
    streams: tuple[StreamResult, ...]

    @property
    def audio(self) -> StreamResult | None:
        """The first accepted audio stream (the one a call uses)."""
        return next((s for s in self.streams if s.accepted and s.media == "audio"), None)


def _parse_events(text: str) -> set[int]:
    events: set[int] = set()
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"([0-9]{1,3})(?:-([0-9]{1,3}))?", part)
        if not m:
            raise ValueError(f"telephone_events: bad event list {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi > 255:
            raise ValueError(f"telephone_events: bad range {part!r}")
        events.update(range(lo, hi + 1))
    return events


def _format_events(events: set[int]) -> str:
    out, ordered = [], sorted(events)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def answer_direction(offered: str, wanted: str = "sendrecv") -> Direction:
    """The answer's direction attribute (RFC 3264 6.1) given what we want."""
    we_may_send = offered in ("sendrecv", "recvonly") and wanted in ("sendrecv", "sendonly")
    we_may_recv = offered in ("sendrecv", "sendonly") and wanted in ("sendrecv", "recvonly")
    return _direction(we_may_send, we_may_recv)


def _direction(send: bool, recv: bool) -> Direction:
    return "sendrecv" if send and recv else "sendonly" if send else "recvonly" if recv else "inactive"


def _invert(direction: str) -> Direction:
    inverse = {"sendonly": "recvonly", "recvonly": "sendonly"}
    return inverse.get(direction, direction)  # type: ignore[return-value]


def _direction_of(sdp: SessionDescription, media: Media) -> str:
    return media.direction or sdp.direction or "sendrecv"


def _ptime(sdp: SessionDescription, media: Media, name: str) -> int | None:
    value = media.attribute(name) or sdp.attribute(name)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def _remote(sdp: SessionDescription, media: Media) -> tuple[str | None, bool]:
    conn = sdp.connection_for(media)
    if conn is None:
        raise SdpParseError("SDP: no c= line for a media stream (RFC 4566 5.7)")
    host = conn.host
    return host, host in ("0.0.0.0", "::")


def _codec_key(rtpmap: RtpMap) -> str | None:
    name = rtpmap.encoding.lower()
    if name in ("pcmu", "pcma") and rtpmap.clock_rate == 8000 and rtpmap.channels == 1:
        return name
    if name == "opus" and rtpmap.clock_rate == 48000 and rtpmap.channels == 2:
        return name
    return None


def _codec(rtpmap: RtpMap, fmtp: str | None) -> Codec:
    return Codec(rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels, rtpmap.payload_type, fmtp)


def _session(address: str, session_id: int, session_version: int, username: str) -> SessionDescription:
    addrtype = "IP6" if ":" in address else "IP4"
    origin = Origin(username, str(session_id), str(session_version), "IN", addrtype, address)
    return SessionDescription(origin=origin, session_name="-", connection=Connection("IN", addrtype, address))


def create_offer(*, address: str, port: int, policy: MediaPolicy = MediaPolicy(), session_id: int,
                 session_version: int, direction: Direction = "sendrecv",
                 username: str = "hotline") -> SessionDescription:
    """An audio offer with our codecs in preference order (RFC 3264 section 5)."""
    if not 0 < port <= 65535:
        raise LocalProtocolError(f"port: must be 1..65535, not {port!r}")
    if direction not in ("sendrecv", "sendonly", "recvonly", "inactive"):
        raise LocalProtocolError(f"direction: {direction!r}")
    sdp = _session(address, session_id, session_version, username)
    media = Media("audio", port, "RTP/AVP", [])
    opus_pt, event_pt = policy.dynamic_payload_types
    for name in policy.codecs:
        enc, rate, chans, static = _KNOWN[name.lower()]
        pt = static if static is not None else opus_pt
        media.formats.append(str(pt))
        media.attributes.append(("rtpmap", str(RtpMap(pt, enc, rate, chans))))
        if enc == "opus" and policy.opus_fmtp:
            media.attributes.append(("fmtp", f"{pt} {policy.opus_fmtp}"))
    if policy.telephone_event:
        media.formats.append(str(event_pt))
        media.attributes.append(("rtpmap", f"{event_pt} {_EVENT}/8000"))
        media.attributes.append(("fmtp", f"{event_pt} {policy.telephone_events}"))
    if policy.ptime:
        media.attributes.append(("ptime", str(policy.ptime)))
    if policy.maxptime:
        media.attributes.append(("maxptime", str(policy.maxptime)))
    media.attributes.append((direction, None))
    sdp.media.append(media)
    return sdp


def create_answer(offer: SessionDescription, *, address: str, port: int, policy: MediaPolicy = MediaPolicy(),
                  session_id: int, session_version: int, direction: Direction = "sendrecv",
                  username: str = "hotline") -> tuple[SessionDescription, Negotiation]:
    """The answer to ``offer`` and what was agreed (RFC 3264 section 6).

    ``direction`` is what we would like; the answer narrows it to what the
    offer allows. Raises :class:`SdpParseError` for an offer without a usable
    c= line. Only the first acceptable audio stream is accepted.
    """
    if not 0 < port <= 65535:
        raise LocalProtocolError(f"port: must be 1..65535, not {port!r}")
    answer = _session(address, session_id, session_version, username)
    answer.timings = [type(t)(t.start, t.stop) for t in offer.timings]
    results = []
    have_audio = False
    for index, m in enumerate(offer.media):
        chosen = None if have_audio else _choose(m, policy)
        if chosen is None:
            answer.media.append(Media(m.media, 0, m.proto, list(m.formats) or ["0"]))
            results.append(StreamResult(index, m.media, False))
            continue
        have_audio = True
        codec, event = chosen
        remote_host, c_hold = _remote(offer, m)
        offered_dir = _direction_of(offer, m)
        ours = answer_direction(offered_dir, direction)
        media = Media("audio", port, m.proto, [str(codec.payload_type)])
        media.attributes.append(("rtpmap", str(RtpMap(codec.payload_type, codec.name, codec.clock_rate,
                                                       codec.channels))))
        if codec.fmtp:
            media.attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
        if event is not None:
            media.formats.append(str(event.payload_type))
            media.attributes.append(("rtpmap", f"{event.payload_type} {event.name}/{event.clock_rate}"))
            media.attributes.append(("fmtp", f"{event.payload_type} {event.fmtp}"))
        if policy.ptime:
            media.attributes.append(("ptime", str(policy.ptime)))
        if policy.maxptime:
            media.attributes.append(("maxptime", str(policy.maxptime)))
        media.attributes.append((ours, None))
        answer.media.append(media)
        results.append(StreamResult(
            index, "audio", True, codec, event, remote_host, m.port, ours,
            remote_hold=c_hold or offered_dir in ("sendonly", "inactive"),
            remote_ptime=_ptime(offer, m, "ptime"), remote_maxptime=_ptime(offer, m, "maxptime")))
    return answer, Negotiation(tuple(results))


def _choose(m: Media, policy: MediaPolicy) -> tuple[Codec, Codec | None] | None:
    if m.media != "audio" or m.port == 0 or m.proto not in _RTP_PROTOS:
        return None
    maps = m.rtpmaps()
    fmtps = m.fmtp()
    offered: dict[str, RtpMap] = {}
    for fmt in m.formats:
        rtpmap = maps.get(int(fmt)) if fmt.isdigit() else None
        key = _codec_key(rtpmap) if rtpmap else None
        if key and key not in offered:
            offered[key] = rtpmap  # type: ignore[assignment]
    ours = [c.lower() for c in policy.codecs]
    candidates = [k for k in ours if k in offered] if policy.prefer == "local" \
        else [k for k in offered if k in ours]
    if not candidates:
        return None
    rtpmap = offered[candidates[0]]
    codec = _codec(rtpmap, fmtps.get(rtpmap.payload_type) if candidates[0] == "opus" else None)
    event = None
    if policy.telephone_event:
        events = [r for r in maps.values()
                  if r.encoding.lower() == _EVENT and str(r.payload_type) in m.formats]
        events.sort(key=lambda r: (r.clock_rate != codec.clock_rate, m.formats.index(str(r.payload_type))))
        if events:
            ev = events[0]
            try:
                offered_events = _parse_events(fmtps.get(ev.payload_type) or "0-15")
            except ValueError:
                offered_events = set(range(16))
            common = offered_events & _parse_events(policy.telephone_events)
            if common:
                event = Codec(ev.encoding, ev.clock_rate, 1, ev.payload_type, _format_events(common))
    return codec, event


def apply_answer(offer: SessionDescription, answer: SessionDescription) -> Negotiation:
    """What the offerer learns from ``answer`` (RFC 3264 section 7)."""
    if len(answer.media) != len(offer.media):
        raise SdpParseError("SDP answer must have as many m-lines as the offer (RFC 3264 6)")
    results = []
    for index, (o, a) in enumerate(zip(offer.media, answer.media, strict=True)):
        if a.media != o.media:
            raise SdpParseError("SDP answer m-lines must match the offer's media types, in order")
        if a.port == 0:
            results.append(StreamResult(index, a.media, False))
            continue
        maps, fmtps = a.rtpmaps(), a.fmtp()
        offered = set(o.formats)
        codec = event = None
        for fmt in a.formats:
            rtpmap = maps.get(int(fmt)) if fmt.isdigit() else None
            if rtpmap is None:
                continue
            if rtpmap.encoding.lower() == _EVENT and event is None:
                event = _codec(rtpmap, fmtps.get(rtpmap.payload_type))
            elif codec is None and _codec_key(rtpmap) and (fmt in offered or rtpmap.payload_type < 96):
                codec = _codec(rtpmap, fmtps.get(rtpmap.payload_type))
        if codec is None:
            results.append(StreamResult(index, a.media, False))
            continue
        host, c_hold = _remote(answer, a)
        answered = _direction_of(answer, a)
        results.append(StreamResult(
            index, a.media, True, codec, event, host, a.port, _invert(answered),
            remote_hold=c_hold or answered in ("sendonly", "inactive"),
            remote_ptime=_ptime(answer, a, "ptime"), remote_maxptime=_ptime(answer, a, "maxptime")))
    return Negotiation(tuple(results))
