"""SDP and media engine glue: one :class:`MediaSession` per SIP leg.

Media is always anchored in the engine: every SDP we send carries the
address and port of the leg's own engine leg, never the other party's.
The session turns offer/answer outcomes (RFC 3264, through
:mod:`orchestrator.sip.offer_answer`) into engine leg settings:

* codec and payload type, telephone-event payload type (RFC 4733), ptime;
* where to send (the remote c=/m= address), unless the remote puts us on
  hold with the RFC 2543 form ``c=0.0.0.0`` (then the old address is kept and
  nothing is sent, RFC 3264 8.4);
* the engine direction - what *we* do: a remote ``sendonly`` makes us
  ``recvonly`` - with the media timeout off while we expect no packets;
* the o= line's session version goes up whenever our description changes
  (RFC 3264 8), and stays when we repeat it.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from orchestrator.sip import (
    Codec,
    MediaPolicy,
    SessionDescription,
    StreamResult,
    apply_answer,
    create_answer,
    create_offer,
)
from orchestrator.sip.offer_answer import Direction
from orchestrator.sip.sdp import SdpParseError

__all__ = ["MediaSession", "NoAcceptableMedia", "ENGINE_CODECS"]

#: SDP encoding name (lower case) -> the engine's codec name
ENGINE_CODECS = {"pcmu": "PCMU", "pcma": "PCMA", "opus": "opus"}
_PTIMES = (10, 20, 30, 40, 60)


@functools.lru_cache(maxsize=64)
def _preferring(policy: MediaPolicy, name: str) -> MediaPolicy:
    """``policy`` with codec ``name`` moved first (policies are frozen: one copy per pair)."""
    first = [c for c in policy.codecs if c.lower() == name]
    if not first:
        return policy
    rest = [c for c in policy.codecs if c.lower() != name]
    return replace(policy, codecs=tuple(first + rest), prefer="local")


@functools.lru_cache(maxsize=64)
def _remote_first(policy: MediaPolicy) -> MediaPolicy:
    return replace(policy, prefer="remote")


class NoAcceptableMedia(SdpParseError):
    """No audio stream we can take (answer 488 Not Acceptable Here)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status_hint=488)


class MediaSession:
    """The media side of one SIP leg: an engine leg plus our SDP state."""

    def __init__(self, engine: Any, *, policy: MediaPolicy, affinity: int = 0, media_timeout: float = 60.0,
                 session_id: int = 1, advertised_host: str | None = None,
                 registry: dict[int, Any] | None = None) -> None:
        self.engine = engine
        self.policy = policy
        self.affinity = affinity & 0xFFFFFFFF
        self.media_timeout = media_timeout
        self.advertised_host = advertised_host
        self.registry = registry  # engine leg id -> owner, for routing engine events
        self.owner: Any = None
        self.leg: Any = None  # mediacore.engine.Leg once created
        self.codec: Codec | None = None
        self.telephone_event: Codec | None = None
        self.direction: Direction = "sendrecv"
        self.remote: tuple[str, int] | None = None
        self.remote_hold = False
        self.local_sdp: SessionDescription | None = None
        self.last_offer: SessionDescription | None = None  # our offer whose answer may still come
        self._session_id = session_id
        self._version = 0
        self._last_lines: list[str] | None = None

    @property
    def id(self) -> int | None:
        return None if self.leg is None else self.leg.id

    @property
    def host(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        # Before the engine leg exists (only while computing an answer) any address will
        # do: answer() rewrites it with the leg's own once the leg is made.
        return self.leg.host if self.leg is not None else "0.0.0.0"

    def _policy_for(self, prefer: Codec | None) -> MediaPolicy:
        if prefer is None:
            return self.policy
        return _preferring(self.policy, prefer.name.lower())

    def _create(self, **options: Any) -> None:
        self.leg = self.engine.create_leg(affinity=self.affinity, **options)
        if self.registry is not None:
            self.registry[self.leg.id] = self.owner

    def _ensure_leg(self, codec: str, payload_type: int | None) -> None:
        if self.leg is None:
            self._create(codec=codec, payload_type=payload_type, media_timeout=self.media_timeout)

    def _stamp(self, sdp: SessionDescription) -> bytes:
        """Set the o= version (bumped only when the description changed) and serialize."""
        lines = [line for m in sdp.media for line in m.lines()]
        if self._last_lines is None or lines != self._last_lines:
            self._version += 1
            self._last_lines = lines
        sdp.origin.session_version = str(self._version)
        self.local_sdp = sdp
        return sdp.serialize()

    # -- we answer ------------------------------------------------------------------------
    def answer(self, offer_body: bytes, *, prefer: Codec | None = None, prefer_remote: bool = False,
               direction: Direction = "sendrecv") -> bytes:
        """Our answer to ``offer_body``; the engine leg is created or updated to match.

        Raises :class:`SdpParseError` for a malformed offer and
        :class:`NoAcceptableMedia` when no audio stream can be accepted.
        """
        offer = SessionDescription.parse(offer_body)
        policy = self._policy_for(prefer)
        if prefer_remote and prefer is None:
            policy = _remote_first(policy)
        port = self.leg.rtp_port if self.leg is not None else 9
        answer, negotiation = create_answer(offer, address=self.host, port=port, policy=policy,
                                            session_id=self._session_id, session_version=self._version or 1,
                                            direction=direction)
        audio = negotiation.audio
        if audio is None or audio.codec is None:
            raise NoAcceptableMedia("no acceptable audio codec in the offer")
        self._apply(audio)
        for m in answer.media:
            if m.port != 0 and m.media == "audio":
                m.port = self.leg.rtp_port
        answer.origin.address = self.host
        if answer.connection is not None:
            answer.connection.address = self.host
        return self._stamp(answer)

    # -- we offer -------------------------------------------------------------------------
    def offer(self, *, prefer: Codec | None = None, direction: Direction = "sendrecv") -> bytes:
        """An offer from our engine leg (created now if needed, with the preferred codec)."""
        policy = self._policy_for(prefer)
        if self.leg is None:
            name = ENGINE_CODECS[policy.codecs[0].lower()]
            self._ensure_leg(name, policy.dynamic_payload_types[0] if name == "opus" else None)
        sdp = create_offer(address=self.host, port=self.leg.rtp_port, policy=policy, direction=direction,
                           session_id=self._session_id, session_version=self._version or 1)
        self.last_offer = sdp
        return self._stamp(sdp)

    def accept_answer(self, answer_body: bytes) -> StreamResult:
        """Apply the answer to our last offer (it may come in a 183 and again in the 200)."""
        if self.last_offer is None:
            raise SdpParseError("an SDP answer arrived but we made no offer")
        negotiation = apply_answer(self.last_offer, SessionDescription.parse(answer_body))
        audio = negotiation.audio
        if audio is None or audio.codec is None:
            raise NoAcceptableMedia("the answer accepted no audio stream we offered")
        self._apply(audio)
        return audio

    # -- engine ---------------------------------------------------------------------------
    def _apply(self, audio: StreamResult) -> None:
        codec = audio.codec
        assert codec is not None
        name = ENGINE_CODECS.get(codec.name.lower())
        if name is None:
            raise NoAcceptableMedia(f"codec {codec.name} is not supported by the media engine")
        ptime = audio.remote_ptime if audio.remote_ptime in _PTIMES else 20
        if name == "opus" and ptime == 30:
            ptime = 20
        hold_address = audio.remote_address in ("0.0.0.0", "::") or audio.remote_port == 0
        if not hold_address and audio.remote_address:
            self.remote = (audio.remote_address, audio.remote_port)
        direction = audio.direction
        if hold_address:
            direction = "recvonly" if direction in ("sendrecv", "recvonly") else "inactive"
        receives = direction in ("sendrecv", "recvonly")
        options = dict(
            codec=name, payload_type=codec.payload_type, ptime=ptime,
            telephone_event=audio.telephone_event.payload_type if audio.telephone_event else None,
            remote=self.remote, direction=direction,
            media_timeout=self.media_timeout if receives else 0.0,
        )
        if self.leg is None:
            self._create(**options)
        else:
            self.engine.update_leg(self.leg.id, **options)
        self.codec = codec
        self.telephone_event = audio.telephone_event
        self.direction = direction
        self.remote_hold = audio.remote_hold

    def set_media_timeout(self, seconds: float) -> None:
        if self.leg is not None and self.direction in ("sendrecv", "recvonly"):
            self.engine.update_leg(self.leg.id, media_timeout=seconds)

    def destroy(self) -> None:
        self.owner = None
        if self.leg is not None:
            if self.registry is not None:
                self.registry.pop(self.leg.id, None)
            try:
                self.engine.destroy_leg(self.leg.id)
            except (KeyError, RuntimeError):
                pass
            self.leg = None
