"""Sample-rate conversion between 8, 16 and 48 kHz.

A polyphase windowed-sinc (Kaiser) FIR resampler, native and allocation-free
per call. The low-pass runs at the higher rate and cuts at the lower rate's
Nyquist frequency fN: flat to within 0.002 dB up to 0.9 fN, at least 79 dB
down from fN on (measured from the designed filters; the tests check the
output itself: ripple under 0.05 dB, images and aliases under -70 dB).

``Resampler`` is stateful: feed it frames of any size and the output is
bit-identical to resampling the whole signal at once; it lags the input by
``delay`` output samples (the filter's group delay, 3 to 7 ms) and
``flush()`` returns the tail. ``resample()`` is the one-shot form, aligned
with its input like ``scipy.signal.resample_poly``.

Rates are 8000, 16000 and 48000 (equal rates are a plain copy). Input is any
C-contiguous int16 buffer; output is a numpy ``int16`` array. Calls with 4096
input samples or more release the GIL.

>>> import numpy as np
>>> from mediacore.resample import Resampler, resample
>>> up = Resampler(8000, 48000)
>>> frame = np.zeros(160, dtype=np.int16)      # 20 ms at 8 kHz
>>> len(up.process(frame))                     # 20 ms at 48 kHz
960
>>> len(resample(np.zeros(8000, np.int16), 8000, 16000))
16000
"""

from __future__ import annotations

from mediacore._resample import RATES, Resampler, resample

__all__ = ["Resampler", "resample", "RATES"]
