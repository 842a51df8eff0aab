"""Opus (RFC 6716) through libopus, for RTP as RFC 7587 carries it.

The codec runs natively: one libopus state per object, allocated when it is
built; encoding or decoding a frame is one call into C++ with no Python in
between (the media engine uses the same C++ objects with no Python at all).

- ``Encoder`` takes one 10, 20, 40 or 60 ms frame of int16 PCM at 8, 16 or
  48 kHz and returns the Opus packet (``bytes``). A packet of 1-2 bytes is a
  DTX frame: nothing worth sending (RFC 7587 section 3.1.3).
- ``Decoder`` turns a packet into int16 PCM; ``conceal(samples)`` runs the
  codec's own loss concealment, and ``decode_fec(next_payload, samples)``
  rebuilds a lost frame from the in-band FEC carried by the packet after it
  (``None`` when that packet carries none: conceal instead).
- ``Fmtp`` is the SDP ``a=fmtp`` of RFC 7587 section 6.1: ``Fmtp.parse`` reads
  a peer's, ``to_sdp`` writes ours, ``Fmtp.for_decoder`` says what our decoder
  wants, and ``encoder_settings_for(remote)`` turns a peer's into the settings
  of the encoder that sends to it (RFC 7587 section 7.1).
- The RTP clock of Opus is 48 kHz whatever the PCM rate:
  ``rtp_timestamp_increment(samples, sample_rate)`` converts.

Channels are 1 (the norm for calls) or 2; stereo PCM is interleaved (or an
``(n, 2)`` array) and sample counts are per channel.

>>> import numpy as np
>>> from mediacore import opus
>>> enc, dec = opus.Encoder(16000, fec=True, packet_loss_percent=10), opus.Decoder(16000)
>>> packet = enc.encode(np.zeros(320, np.int16))          # 20 ms at 16 kHz
>>> dec.decode(packet).shape
(320,)
>>> opus.Fmtp.parse("maxplaybackrate=16000; useinbandfec=1").to_sdp()
'maxplaybackrate=16000; useinbandfec=1'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mediacore import _opus

__all__ = [
    "Encoder",
    "Decoder",
    "EncoderSettings",
    "EncoderStatistics",
    "DecoderStatistics",
    "Fmtp",
    "PacketInfo",
    "packet_info",
    "encoder_settings_for",
    "default_max_average_bitrate",
    "rtp_timestamp_increment",
    "samples_for_rtp_ticks",
    "RTP_CLOCK_RATE",
    "MAX_PACKET_BYTES",
    "LIBOPUS_VERSION",
    "RATES",
    "FRAME_MS",
    "APPLICATIONS",
    "BANDWIDTHS",
]

#: RTP timestamps of Opus always count at 48 kHz (RFC 7587 section 4.1).
RTP_CLOCK_RATE: int = _opus.RTP_CLOCK_RATE
#: The largest packet ``Encoder.encode`` can return.
MAX_PACKET_BYTES: int = _opus.MAX_PACKET_BYTES
#: The libopus the module is linked with, e.g. ``"libopus 1.3.1"``.
LIBOPUS_VERSION: str = _opus.LIBOPUS_VERSION
#: PCM rates the codec objects take.
RATES = (8000, 16000, 48000)
#: Frame durations the encoder takes, in ms.
FRAME_MS = (10, 20, 40, 60)
#: libopus applications: tuned for speech, for general audio, or for lowest delay.
APPLICATIONS = ("voip", "audio", "restricted-lowdelay")
#: The audio bandwidths of RFC 7587 table 1, narrowest first.
BANDWIDTHS = ("narrowband", "mediumband", "wideband", "superwideband", "fullband")


# ---------------------------------------------------------------- argument checks


def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be {lo}..{hi}, got {value}")
    return int(value)


def _bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _rate(value, name: str = "sample_rate") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in RATES:
        raise ValueError(f"{name} must be 8000, 16000 or 48000, got {value!r}")
    return int(value)


def _channels(value) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {value!r}")
    return int(value)


def _choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# ---------------------------------------------------------------- encoder


@dataclass(frozen=True, kw_only=True)
class EncoderSettings:
    """Everything an ``Encoder`` is built from; validated when made.

    ``bitrate`` is in b/s (6000..510000) or ``None`` for libopus's choice;
    ``fec`` adds in-band FEC, which libopus only spends bits on when
    ``packet_loss_percent`` (the loss it should protect against) is above 0;
    ``frame_ms`` is the packet duration to send (``encode`` takes any of
    10/20/40/60 ms; this is what the remote's ptime asked for).
    """

    sample_rate: int = 16000
    channels: int = 1
    application: str = "voip"
    bitrate: int | None = None
    complexity: int = 5
    fec: bool = False
    packet_loss_percent: int = 0
    dtx: bool = False
    cbr: bool = False
    max_bandwidth: str = "fullband"
    frame_ms: int = 20

    def __post_init__(self) -> None:
        _rate(self.sample_rate)
        _channels(self.channels)
        _choice(self.application, "application", APPLICATIONS)
        if self.bitrate is not None:
            _int(self.bitrate, "bitrate", 6000, 510000)
        _int(self.complexity, "complexity", 0, 10)
        _bool(self.fec, "fec")
        _int(self.packet_loss_percent, "packet_loss_percent", 0, 100)
        _bool(self.dtx, "dtx")
        _bool(self.cbr, "cbr")
        _choice(self.max_bandwidth, "max_bandwidth", BANDWIDTHS)
        if self.frame_ms not in FRAME_MS:
            raise ValueError(f"frame_ms must be 10, 20, 40 or 60, got {self.frame_ms!r}")

    @property
    def frame_samples(self) -> int:
        """Samples per channel in one ``frame_ms`` frame."""
        return self.sample_rate * self.frame_ms // 1000

    def _native(self) -> dict:
        d = dataclasses.asdict(self)
        d["bitrate"] = self.bitrate or 0
        return d

    @classmethod
    def _from_native(cls, d: dict) -> EncoderSettings:
        return cls(**{**d, "bitrate": d["bitrate"] or None})


@dataclass(frozen=True)
class EncoderStatistics:
    """Counters of an ``Encoder`` since it was made."""

    frames: int  #: frames encoded
    bytes: int  #: payload bytes produced
    dtx_frames: int  #: frames that came out as 1-2 bytes (DTX: nothing to send)
    rejected_frames: int  #: frames refused (wrong size) or failed


class Encoder(_opus.Encoder):
    """An Opus encoder (libopus, native).

    ``encode(pcm)`` takes one frame: 10, 20, 40 or 60 ms of int16 samples at
    ``sample_rate`` (interleaved, or shaped ``(n, 2)``, for stereo) and returns
    the packet. Settings can change between frames: ``bitrate``,
    ``complexity``, ``packet_loss_percent`` (from RTCP loss reports), ``fec``,
    ``dtx``, ``cbr`` and ``max_bandwidth`` are writable properties.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        channels: int = 1,
        application: str = "voip",
        bitrate: int | None = None,
        complexity: int = 5,
        fec: bool = False,
        packet_loss_percent: int = 0,
        dtx: bool = False,
        cbr: bool = False,
        *,
        max_bandwidth: str = "fullband",
        frame_ms: int = 20,
    ) -> None:
        s = EncoderSettings(
            sample_rate=sample_rate, channels=channels, application=application, bitrate=bitrate,
            complexity=complexity, fec=fec, packet_loss_percent=packet_loss_percent, dtx=dtx, cbr=cbr,
            max_bandwidth=max_bandwidth, frame_ms=frame_ms,
        )
        super().__init__(s.sample_rate, s.channels, s.application, s.bitrate or 0, s.complexity, s.fec,
                         s.packet_loss_percent, s.dtx, s.cbr, s.max_bandwidth, s.frame_ms)

    @classmethod
    def from_settings(cls, settings: EncoderSettings) -> Encoder:
        """An encoder built from ``settings`` (e.g. from ``encoder_settings_for``)."""
        if not isinstance(settings, EncoderSettings):
            raise ValueError(f"settings must be an EncoderSettings, got {type(settings).__name__}")
        return cls(**dataclasses.asdict(settings))

    @property
    def settings(self) -> EncoderSettings:
        """The settings in force now."""
        return EncoderSettings._from_native(self._settings())

    @property
    def bitrate(self) -> int | None:
        """Target bitrate in b/s, or ``None`` when libopus chooses (see ``effective_bitrate``)."""
        return _opus.Encoder.bitrate.__get__(self) or None

    @bitrate.setter
    def bitrate(self, value: int | None) -> None:
        _opus.Encoder.bitrate.__set__(self, 0 if value is None else _int(value, "bitrate", 6000, 510000))

    def statistics(self) -> EncoderStatistics:
        """Counters since the encoder was made."""
        return EncoderStatistics(**self._stats())

    def __repr__(self) -> str:
        s = self.settings
        return (f"Encoder(sample_rate={s.sample_rate}, channels={s.channels}, application={s.application!r}, "
                f"bitrate={s.bitrate}, complexity={s.complexity}, fec={s.fec}, "
                f"packet_loss_percent={s.packet_loss_percent}, dtx={s.dtx}, cbr={s.cbr}, "
                f"max_bandwidth={s.max_bandwidth!r})")


# ---------------------------------------------------------------- decoder


@dataclass(frozen=True)
class DecoderStatistics:
    """Counters of a ``Decoder`` since it was made (sample counts are per channel)."""

    packets: int  #: packets decoded
    samples: int  #: samples from decoded packets
    concealed_samples: int  #: samples made up by ``conceal``
    concealment_events: int  #: ``conceal`` calls
    fec_recovered: int  #: lost frames rebuilt by ``decode_fec``
    fec_samples: int  #: samples from ``decode_fec``
    fec_unavailable: int  #: ``decode_fec`` calls whose packet had no usable FEC
    corrupt_packets: int  #: payloads refused as invalid Opus packets


class Decoder(_opus.Decoder):
    """An Opus decoder (libopus, native) producing int16 PCM at ``sample_rate``.

    - ``decode(payload)``: one packet (any valid Opus packet up to 120 ms, from
      any encoder at any rate) to PCM; ``ValueError`` if it is not one.
    - ``conceal(samples)``: libopus's concealment of ``samples`` lost samples
      (a multiple of 2.5 ms, up to 120 ms).
    - ``decode_fec(next_payload, samples)``: the lost ``samples`` before
      ``next_payload`` rebuilt from its in-band FEC, or ``None`` when it has
      none for that span (then ``conceal``). Decode ``next_payload`` after.
    - ``samples_in(payload)``: samples per channel the payload holds.
    """

    def __init__(self, sample_rate: int = 16000, channels: int = 1) -> None:
        super().__init__(_rate(sample_rate), _channels(channels))

    def statistics(self) -> DecoderStatistics:
        """Counters since the decoder was made."""
        return DecoderStatistics(**self._stats())

    def __repr__(self) -> str:
        return f"Decoder(sample_rate={self.sample_rate}, channels={self.channels})"


# ---------------------------------------------------------------- packets and RTP


@dataclass(frozen=True, kw_only=True)
class PacketInfo:
    """What an Opus packet holds, from its TOC byte (RFC 6716 section 3.1)."""

    mode: str  #: "silk", "hybrid" or "celt"
    bandwidth: str  #: one of BANDWIDTHS
    channels: int
    frames: int
    frame_ms: float  #: 2.5, 5, 10, 20, 40 or 60
    has_fec: bool  #: carries in-band FEC (LBRR) for the frame before it

    @property
    def duration_ms(self) -> float:
        return self.frames * self.frame_ms


def packet_info(payload: bytes) -> PacketInfo:
    """Inspect a packet without decoding it; ``ValueError`` if it is not a valid Opus packet."""
    info = _opus.inspect_packet(payload)
    if info is None:
        raise ValueError("payload is not a valid Opus packet (RFC 6716 section 3)")
    mode, bandwidth, channels, frames, per_frame_48k, has_fec = info
    return PacketInfo(mode=mode, bandwidth=bandwidth, channels=channels, frames=frames,
                      frame_ms=per_frame_48k / 48, has_fec=has_fec)


def rtp_timestamp_increment(samples: int, sample_rate: int) -> int:
    """RTP timestamp ticks (48 kHz) for ``samples`` at ``sample_rate``: 320 at 16 kHz -> 960."""
    return _opus.rtp_ticks(_int(samples, "samples", 0, 2**32 - 1), _rate(sample_rate))


def samples_for_rtp_ticks(ticks: int, sample_rate: int) -> int:
    """Samples at ``sample_rate`` spanned by ``ticks`` of the 48 kHz RTP clock."""
    return _opus.samples_for_rtp_ticks(_int(ticks, "ticks", 0, 2**32 - 1), _rate(sample_rate))


# ---------------------------------------------------------------- RFC 7587 fmtp


@dataclass(frozen=True, kw_only=True)
class Fmtp:
    """The Opus SDP format parameters (RFC 7587 section 6.1), defaults per the RFC.

    Receive-side preferences (``maxplaybackrate``, ``maxaveragebitrate``,
    ``stereo``, ``cbr``, ``useinbandfec``, ``usedtx``, ``ptime``, ``maxptime``)
    say what the sender of the other side should do; ``sprop-*`` describe what
    this side will send. ``minptime`` is WebRTC's, not RFC 7587's. ``None``
    means "not given" (the RFC default applies).
    """

    maxplaybackrate: int = 48000
    sprop_maxcapturerate: int = 48000
    maxptime: int = 120
    ptime: int = 20
    minptime: int | None = None
    maxaveragebitrate: int | None = None
    stereo: bool = False
    sprop_stereo: bool = False
    cbr: bool = False
    useinbandfec: bool = False
    usedtx: bool = False

    def __post_init__(self) -> None:
        _int(self.maxplaybackrate, "maxplaybackrate", 8000, 48000)
        _int(self.sprop_maxcapturerate, "sprop_maxcapturerate", 8000, 48000)
        _int(self.maxptime, "maxptime", 3, 120)
        _int(self.ptime, "ptime", 3, 120)
        if self.minptime is not None:
            _int(self.minptime, "minptime", 3, 120)
        if self.maxaveragebitrate is not None:
            _int(self.maxaveragebitrate, "maxaveragebitrate", 6000, 510000)
        for name in ("stereo", "sprop_stereo", "cbr", "useinbandfec", "usedtx"):
            _bool(getattr(self, name), name)

    @classmethod
    def parse(cls, text: str) -> Fmtp:
        """Parse the parameters of an ``a=fmtp:<pt>`` line (the part after the payload type).

        Tolerant: spaces, case, empty items and unknown parameters are fine;
        out-of-range numbers are clamped (maxaveragebitrate outside
        6000..510000 is ignored, as the RFC says). A known parameter with no
        value, a non-numeric number or a flag other than 0/1 is a ValueError.
        """
        if not isinstance(text, str):
            raise ValueError(f"fmtp must be a str, got {type(text).__name__}")
        d = _opus.parse_fmtp(text)
        return cls._from_native(d)

    def to_sdp(self) -> str:
        """Our ``a=fmtp`` parameters, canonical: only values that differ from
        the defaults, in a fixed order. ptime and maxptime are not included:
        they go in ``a=ptime`` / ``a=maxptime`` lines (RFC 7587 section 7).
        An empty string means "all defaults" (then write no a=fmtp line)."""
        return _opus.format_fmtp(self._native())

    @classmethod
    def for_decoder(
        cls,
        sample_rate: int,
        channels: int = 1,
        *,
        fec: bool = True,
        dtx: bool = False,
        cbr: bool = False,
        max_average_bitrate: int | None = None,
        capture_rate: int = 48000,
        capture_stereo: bool = False,
    ) -> Fmtp:
        """The fmtp to offer or answer with for a decoder at ``sample_rate``:
        play at that rate, in ``channels``, FEC welcome (we decode it), and
        what we will capture (``capture_rate``, ``capture_stereo``)."""
        _rate(sample_rate)
        _channels(channels)
        if max_average_bitrate is not None:
            _int(max_average_bitrate, "max_average_bitrate", 6000, 510000)
        _int(capture_rate, "capture_rate", 8000, 48000)
        d = _opus.fmtp_for_decoder(sample_rate, channels, _bool(fec, "fec"), _bool(dtx, "dtx"), _bool(cbr, "cbr"),
                                   max_average_bitrate or 0, capture_rate, _bool(capture_stereo, "capture_stereo"))
        return cls._from_native(d)

    @staticmethod
    def encoder_settings_for(remote_fmtp: Fmtp | str, base: EncoderSettings | None = None) -> EncoderSettings:
        """OUR encoder's settings for sending to a peer whose fmtp is ``remote_fmtp``
        (RFC 7587 section 7.1); see the module function of the same name."""
        return encoder_settings_for(remote_fmtp, base)

    def _native(self) -> dict:
        d = dataclasses.asdict(self)
        d["minptime"] = self.minptime or 0
        d["maxaveragebitrate"] = self.maxaveragebitrate or 0
        return d

    @classmethod
    def _from_native(cls, d: dict) -> Fmtp:
        return cls(**{**d, "minptime": d["minptime"] or None, "maxaveragebitrate": d["maxaveragebitrate"] or None})


def encoder_settings_for(remote_fmtp: Fmtp | str, base: EncoderSettings | None = None) -> EncoderSettings:
    """Map the REMOTE side's fmtp onto OUR encoder (RFC 7587 section 7.1).

    Starting from ``base`` (default ``EncoderSettings()``):

    - ``max_bandwidth`` no wider than their ``maxplaybackrate`` renders, and
      ``sample_rate`` lowered to the smallest of 8/16/48 kHz that carries it;
    - ``bitrate``: base's, or if automatic the RFC 7587 section 3.1.1 figure
      for the bandwidth we code (voice: 12, 20 or 40 kb/s), capped by their
      ``maxaveragebitrate`` or, absent that, by the section 3.1.1 figure for
      their ``maxplaybackrate`` (the RFC's default);
    - mono unless they said ``stereo=1`` (and base is stereo);
    - ``fec``, ``dtx``, ``cbr`` as they asked; ``frame_ms`` from their ptime
      within [minptime, maxptime];
    - ``application``, ``complexity`` and ``packet_loss_percent`` from base
      (FEC only costs bits once the loss hint is above 0).
    """
    if isinstance(remote_fmtp, str):
        remote_fmtp = Fmtp.parse(remote_fmtp)
    if not isinstance(remote_fmtp, Fmtp):
        raise ValueError(f"remote_fmtp must be an Fmtp or a str, got {type(remote_fmtp).__name__}")
    if base is None:
        base = EncoderSettings()
    if not isinstance(base, EncoderSettings):
        raise ValueError(f"base must be an EncoderSettings, got {type(base).__name__}")
    return EncoderSettings._from_native(_opus.encoder_settings_for(remote_fmtp._native(), base._native()))


def default_max_average_bitrate(application: str = "voip", bandwidth: str = "fullband", channels: int = 1) -> int:
    """The RFC 7587 section 3.1.1 bitrate (b/s) that applies when no maxaveragebitrate is given."""
    return _opus.default_max_average_bitrate(_choice(application, "application", APPLICATIONS),
                                             _choice(bandwidth, "bandwidth", BANDWIDTHS), _channels(channels))
