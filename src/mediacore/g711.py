"""G.711 mu-law (PCMU) and A-law (PCMA), ITU-T G.711.

Bit-exact with the ITU tables for every 16-bit input and every code. Encoders
take int16 samples (a numpy ``int16`` array or any C-contiguous int16 buffer)
and return one byte per sample; decoders take bytes and return a numpy
``int16`` array, or fill ``out=`` (a preallocated int16 array of the right
length, which saves the allocation in a per-frame loop). The work is done in
native code (the decoders use AVX2 when the CPU has it); buffers of 4096
samples or more release the GIL.

>>> import numpy as np
>>> from mediacore import g711
>>> g711.ulaw_decode(g711.ulaw_encode(np.array([0, 1000, -1000], dtype=np.int16)))
array([    0,   988,  -988], dtype=int16)
"""

from __future__ import annotations

from mediacore._g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

__all__ = ["ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode", "ULAW_SILENCE", "ALAW_SILENCE"]

#: The code a zero sample encodes to.
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
