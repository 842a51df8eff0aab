"""Conference mixer: N-party mix-minus with a per-edge gain matrix.

A :class:`Mixer` connects numbered *slots* (one per party), as pjmedia's
conference bridge does. Each tick, every slot gives one frame of what its party
says (``set_input`` or a row of ``mix(inputs)``) and gets one frame of what it
hears::

    heard[d] = saturate_int16( sum over s of gain(s, d) * said[s] )

The gain matrix is never dense. Slots that are *conference members* (the
default) hear every other member at unity gain and never themselves (mix-minus),
computed as "bus total minus own contribution", so a 100-party conference costs
O(N) per tick. Explicit edges (:meth:`Mixer.connect`, :meth:`Mixer.disconnect`)
override that default for one ordered pair; supervisor listen, whisper and barge
are just such edges (:meth:`Mixer.listen`, :meth:`Mixer.whisper`,
:meth:`Mixer.barge`), and switching between them on a live call takes effect at
the next tick with a one-frame gain ramp, so no click is heard. Mute and deaf
ramp the same way.

Gains are quantized to 1/4096 (Q12), from 0.0 to 8.0. A slot that was given no
input since the last tick is silent for that tick. The arithmetic is exact and
documented in ``src/mediacore/cpp/mixer.hpp``.

>>> import numpy as np
>>> from mediacore.mixer import Mixer
>>> m = Mixer(sample_rate=8000, frame_ms=20)
>>> a, b, c = m.add_slot(), m.add_slot(), m.add_slot()
>>> heard = m.mix(np.full((3, 160), [[100], [20], [3]], dtype=np.int16))
>>> heard[:, 0].tolist()          # each hears the other two
[23, 103, 120]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from mediacore import _mixer

__all__ = ["Mixer", "MixerStats", "SUPERVISOR_MODES", "GAIN_MAX"]

#: The largest gain an edge can have (+18 dB).
GAIN_MAX = _mixer.GAIN_MAX / _mixer.GAIN_ONE

#: The modes :meth:`Mixer.supervise` accepts.
SUPERVISOR_MODES = ("off", "listen", "whisper", "barge")

_MODES = {
    "off": _mixer.SupervisorMode.OFF,
    "listen": _mixer.SupervisorMode.LISTEN,
    "whisper": _mixer.SupervisorMode.WHISPER,
    "barge": _mixer.SupervisorMode.BARGE,
}


@dataclass(frozen=True, kw_only=True)
class MixerStats:
    """Counters of a :class:`Mixer` (``Mixer.statistics()``)."""

    ticks: int
    """Mix ticks run."""
    clipped_samples: int
    """Output samples that saturated at the int16 limits."""
    slots: int
    """Slots in use."""
    edges: int
    """Explicit edges (overrides of the conference default)."""


class Mixer:
    """N-party mix-minus conference mixer with a per-edge gain matrix.

    ``sample_rate`` is 8000, 16000 or 48000 Hz; every frame is ``frame_ms``
    milliseconds (``frame_samples`` samples). At most ``max_slots`` parties
    (up to 1024).
    """

    __slots__ = ("_m",)

    def __init__(self, sample_rate: int = 8000, frame_ms: int = 20, max_slots: int = 256) -> None:
        if sample_rate not in (8000, 16000, 48000):
            raise ValueError(f"sample_rate must be 8000, 16000 or 48000, got {sample_rate!r}")
        if not isinstance(frame_ms, int) or not 1 <= frame_ms <= 120:
            raise ValueError(f"frame_ms must be an integer from 1 to 120, got {frame_ms!r}")
        if not isinstance(max_slots, int) or not 1 <= max_slots <= _mixer.MAX_SLOTS:
            raise ValueError(f"max_slots must be an integer from 1 to {_mixer.MAX_SLOTS}, got {max_slots!r}")
        self._m = _mixer.Mixer(sample_rate, frame_ms, max_slots)

    # ------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        """Samples per second of every frame."""
        return self._m.sample_rate

    @property
    def frame_samples(self) -> int:
        """Samples in one frame (one tick)."""
        return self._m.frame_samples

    @property
    def slot_bound(self) -> int:
        """One past the highest slot id in use: the rows ``mix(inputs)`` needs."""
        return self._m.slot_bound

    @property
    def slots(self) -> list[int]:
        """The slot ids in use, ascending."""
        return [s for s in range(self._m.slot_bound) if self._m.has_slot(s)]

    # ------------------------------------------------------------ slots
    def add_slot(self, conference: bool = True) -> int:
        """Add a party and return its slot id (the lowest free one).

        With ``conference=True`` it joins the conference bus: it hears every
        other member and every member hears it. With ``conference=False`` it is
        connected to nobody until edges say otherwise (a supervisor, a player).
        """
        slot = self._m.add_slot(bool(conference))
        if slot < 0:
            raise ValueError(f"the mixer is full ({self._m.max_slots} slots)")
        return slot

    def remove_slot(self, slot: int) -> None:
        """Remove a party and every edge into or out of it."""
        self._slot(slot, "slot")
        self._m.remove_slot(slot)

    def set_conference(self, slot: int, member: bool = True) -> None:
        """Make a slot a conference member (or not). Takes effect at the next tick."""
        self._slot(slot, "slot")
        self._m.set_conference(slot, bool(member))

    def conference(self, slots: Iterable[int]) -> None:
        """Make every slot in ``slots`` a conference member: all hear all, minus themselves."""
        slots = list(slots)
        for s in slots:
            self._slot(s, "slots")
        for s in slots:
            self._m.set_conference(s, True)

    def is_member(self, slot: int) -> bool:
        """Whether a slot is on the conference bus."""
        self._slot(slot, "slot")
        return bool(self._m.conference(slot))

    def mute(self, slot: int, on: bool = True) -> None:
        """Nobody hears this slot while muted (ramped over one frame)."""
        self._slot(slot, "slot")
        self._m.set_mute(slot, bool(on))

    def deafen(self, slot: int, on: bool = True) -> None:
        """This slot hears silence while deaf (ramped over one frame)."""
        self._slot(slot, "slot")
        self._m.set_deaf(slot, bool(on))

    def is_muted(self, slot: int) -> bool:
        self._slot(slot, "slot")
        return bool(self._m.muted(slot))

    def is_deaf(self, slot: int) -> bool:
        self._slot(slot, "slot")
        return bool(self._m.deaf(slot))

    # ------------------------------------------------------------ edges
    def connect(self, src: int, dst: int, gain: float = 1.0) -> None:
        """``dst`` hears ``src`` at ``gain`` (0.0 to 8.0), overriding the conference default.

        ``src == dst`` is allowed (sidetone). A change is ramped over the next frame.
        """
        self._slot(src, "src")
        self._slot(dst, "dst")
        self._m.set_edge(src, dst, _gain_q12(gain))

    def disconnect(self, src: int, dst: int) -> None:
        """``dst`` no longer hears ``src``, even if both are conference members."""
        self._slot(src, "src")
        self._slot(dst, "dst")
        self._m.set_edge(src, dst, 0)

    def reset_edge(self, src: int, dst: int) -> None:
        """Drop the explicit edge ``src -> dst``: the pair follows the conference default again."""
        self._slot(src, "src")
        self._slot(dst, "dst")
        self._m.clear_edge(src, dst)

    def gain(self, src: int, dst: int) -> float:
        """The gain at which ``dst`` hears ``src`` from the next tick on (explicit or default)."""
        self._slot(src, "src")
        self._slot(dst, "dst")
        return self._m.gain(src, dst) / _mixer.GAIN_ONE

    def has_edge(self, src: int, dst: int) -> bool:
        """Whether ``src -> dst`` has an explicit edge."""
        self._slot(src, "src")
        self._slot(dst, "dst")
        return bool(self._m.has_edge(src, dst))

    # ------------------------------------------------------------ supervisor modes
    def supervise(self, supervisor: int, caller: int, agent: int, mode: str) -> None:
        """Set how a supervisor joins a caller/agent call; switching modes is glitch-free.

        - ``"listen"``: the supervisor hears both; nobody hears the supervisor.
        - ``"whisper"``: listen, and the agent (only) hears the supervisor.
        - ``"barge"``: all three hear each other.
        - ``"off"``: the supervisor neither hears nor is heard.

        Only the four edges between the supervisor and the two parties are set;
        the supervisor should not be a conference member (``add_slot(conference=False)``).
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(SUPERVISOR_MODES)}, got {mode!r}")
        self._slot(supervisor, "supervisor")
        self._slot(caller, "caller")
        self._slot(agent, "agent")
        if len({supervisor, caller, agent}) != 3:
            raise ValueError("supervisor, caller and agent must be three different slots")
        self._m.set_supervisor(supervisor, caller, agent, _MODES[mode])

    def listen(self, supervisor: int, caller: int, agent: int) -> None:
        """Supervisor hears caller and agent; neither hears the supervisor."""
        self.supervise(supervisor, caller, agent, "listen")

    def whisper(self, supervisor: int, caller: int, agent: int) -> None:
        """Supervisor hears both and talks to the agent only."""
        self.supervise(supervisor, caller, agent, "whisper")

    def barge(self, supervisor: int, caller: int, agent: int) -> None:
        """Supervisor joins the call: all three hear each other."""
        self.supervise(supervisor, caller, agent, "barge")

    # ------------------------------------------------------------ ticks
    def set_input(self, slot: int, pcm: np.ndarray) -> None:
        """Give ``slot`` one frame (``frame_samples`` int16 samples) for the next tick."""
        self._slot(slot, "slot")
        self._m.set_input(slot, pcm)

    def mix(self, inputs: np.ndarray | None = None) -> np.ndarray | None:
        """Run one tick.

        Without ``inputs``, mixes the frames given by :meth:`set_input` (read the
        results with :meth:`output`) and returns None. With ``inputs``, an int16
        array of shape ``(rows, frame_samples)`` whose row ``r`` is what slot ``r``
        says (``rows >= slot_bound``; rows of unused ids are ignored), returns
        a new array of the same shape whose row ``r`` is what slot ``r`` hears.
        """
        if inputs is None:
            self._m.mix()
            return None
        return self._m.mix_rows(inputs)

    def mix_g711(self, codes: np.ndarray, law: str = "ulaw") -> np.ndarray:
        """One G.711 tick: decode each row of ``codes`` (uint8, ``(rows, frame_samples)``),
        mix, and return what each slot hears, encoded with the same law.

        Rows of unused ids come back as encoded silence. Needs an 8 kHz mixer.
        """
        if law not in ("ulaw", "alaw"):
            raise ValueError(f"law must be 'ulaw' or 'alaw', got {law!r}")
        if self._m.sample_rate != 8000:
            raise ValueError(f"G.711 is 8000 Hz; this mixer runs at {self._m.sample_rate} Hz")
        return self._m.mix_g711(codes, law == "ulaw")

    def output(self, slot: int) -> np.ndarray:
        """A copy of what ``slot`` heard in the last tick."""
        self._slot(slot, "slot")
        return self._m.output(slot)

    def statistics(self) -> MixerStats:
        """A frozen snapshot of the mixer's counters."""
        st = self._m.stats()
        return MixerStats(ticks=st.ticks, clipped_samples=st.clipped_samples, slots=st.slots, edges=st.edges)

    def __repr__(self) -> str:
        return (f"Mixer(sample_rate={self.sample_rate}, frame_samples={self.frame_samples}, "
                f"slots={len(self.slots)})")

    # ------------------------------------------------------------ helpers
    def _slot(self, slot: object, name: str) -> None:
        if not isinstance(slot, (int, np.integer)) or isinstance(slot, bool) or not self._m.has_slot(int(slot)):
            raise ValueError(f"{name} {slot!r} is not a slot of this mixer")


def _gain_q12(gain: float) -> int:
    try:
        g = float(gain)
    except (TypeError, ValueError):
        raise ValueError(f"gain must be a number, got {gain!r}") from None
    if not 0.0 <= g <= GAIN_MAX:
        raise ValueError(f"gain must be from 0.0 to {GAIN_MAX}, got {gain!r}")
    return round(g * _mixer.GAIN_ONE)
