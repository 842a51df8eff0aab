"""Identifiers that must be unique: branch (RFC 3261 8.1.1.7), tags (19.3),
Call-ID (8.1.1.4). Randomness comes from the caller - any object with a
``getrandbits(k)`` method (``random.Random(seed)`` in tests, a
``random.SystemRandom()`` in the daemon) - so this module needs no global
random state and stays reproducible.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RandomSource", "MAGIC_COOKIE", "new_branch", "new_tag", "new_call_id"]

MAGIC_COOKIE = "z9hG4bK"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class RandomSource(Protocol):
    def getrandbits(self, k: int, /) -> int: ...


def _random_text(rng: RandomSource, chars: int) -> str:
    value = rng.getrandbits(6 * chars)
    out = []
    for _ in range(chars):
        value, digit = divmod(value, 62)
        out.append(_ALPHABET[digit])
    return "".join(out)


def new_branch(rng: RandomSource) -> str:
    """A branch with the RFC 3261 magic cookie and 96 random bits."""
    return MAGIC_COOKIE + _random_text(rng, 16)


def new_tag(rng: RandomSource) -> str:
    """A tag with at least 32 random bits (RFC 3261 19.3); we use 60."""
    return _random_text(rng, 10)


def new_call_id(rng: RandomSource, host: str | None = None) -> str:
    """A globally unique Call-ID (``random@host`` when a host is given)."""
    text = _random_text(rng, 22)
    return f"{text}@{host}" if host else text
