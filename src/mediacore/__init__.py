"""mediacore: Hotline's native media engine and DSP units, usable on their own.

Submodules (each documented, each with ``__all__``):

- ``g711``, ``l16``, ``opus``: codecs (G.711 bit-exact, L16, Opus through libopus)
- ``resample``: 8/16/48 kHz polyphase resampling with state across frames
- ``jitter``, ``plc``, ``netsim``: adaptive jitter buffer, loss concealment, network traces
- ``dtmf``, ``tones``: RFC 4733 events, in-band DTMF detection, tone generation
- ``mixer``: mix-minus conference mixer with a per-edge gain matrix
- ``recorder``: crash-safe WAV and Ogg Opus recorders
- ``rtp``, ``rtcp``, ``emodel``: RTP/RTCP packets, E-model (ITU-T G.107) MOS
- ``engine``: the real-time engine (sockets, threads, bridges, conferences)

The top-level names ``JitterBuffer``, ``Mixer`` and ``Engine`` are the
contract's shortcuts. Everything loads on first use, so ``import mediacore``
is cheap and pulls in only what a program touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = (
    "dtmf", "emodel", "engine", "g711", "jitter", "l16", "mixer", "netsim", "opus", "plc", "recorder",
    "resample", "rtcp", "rtp", "tones",
)
_SHORTCUTS = {"JitterBuffer": "jitter", "Mixer": "mixer", "Engine": "engine"}

__all__ = [*_SUBMODULES, *_SHORTCUTS]

if TYPE_CHECKING:
    from mediacore import (dtmf, emodel, engine, g711, jitter, l16, mixer, netsim, opus, plc, recorder,
                           resample, rtcp, rtp, tones)
    from mediacore.engine import Engine
    from mediacore.jitter import JitterBuffer
    from mediacore.mixer import Mixer


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"mediacore.{name}")
    if name in _SHORTCUTS:
        return getattr(importlib.import_module(f"mediacore.{_SHORTCUTS[name]}"), name)
    raise AttributeError(f"module 'mediacore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
