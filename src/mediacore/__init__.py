"""mediacore: Hotline's native media engine and DSP units.

Importable on its own. Submodules (each documented):

- ``mediacore.g711``, ``mediacore.l16``: G.711 mu-law/A-law and L16 codecs.
"""

from __future__ import annotations

from mediacore import g711, l16

__all__ = ["g711", "l16"]
__version__ = "0.1.0"
