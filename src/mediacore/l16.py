"""L16: linear 16-bit PCM in network byte order (RFC 3551, section 4.5.11).

``encode`` turns int16 samples into big-endian bytes; ``decode`` does the
reverse and refuses an odd number of bytes.
"""

from __future__ import annotations

from mediacore._g711 import l16_decode as decode
from mediacore._g711 import l16_encode as encode

__all__ = ["encode", "decode"]
