"""Whether a call is recorded: a pure decision, reproducible and auditable.

:func:`decide` takes the call's id, its queue and trunk (either may be
unknown) and the configuration, and returns a :class:`Decision` that says
whether to record, how, and why - the ``reason`` goes into the event log
word for word (``recording.decision``).

Which policy applies:

1. ``never`` on the call's trunk or queue wins: a trunk from a jurisdiction
   where the caller was not told, a queue that takes card payments whole;
2. otherwise the queue's policy (the most specific), then the trunk's, then
   the section's default.

Percentages are sampled deterministically: the draw is
``HMAC-SHA256(sample_seed, call id)`` read as a number in [0, 100), and
the call is recorded when ``draw < percent``. The same seed and call id
always give the same answer (an auditor can recompute any decision from the
log), different calls are independent uniform draws, so over many calls
the recorded share converges on the percentage; and no caller can steer it
without the seed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .config import Policy, RecordingConfig

__all__ = ["DTMF_ACTIONS", "Decision", "DtmfCodes", "decide", "draw"]


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome for one call. ``source``: ``queue:NAME``, ``trunk:NAME`` or ``default``."""

    call: str
    record: bool
    mode: str
    source: str
    reason: str
    policy: Policy
    """The effective policy (format, stereo, sample rate and retention filled in)."""
    queue: str | None = None
    trunk: str | None = None
    draw: float | None = None
    """The percentage draw in [0, 100) (percentage mode only)."""

    def to_event(self, at: float | None = None) -> dict:
        """The ``recording.decision`` event."""
        event = {"type": "recording.decision", "call": self.call, "record": self.record, "mode": self.mode,
                 "policy": self.policy.label, "source": self.source, "reason": self.reason}
        if at is not None:
            event["at"] = at
        if self.queue is not None:
            event["queue"] = self.queue
        if self.trunk is not None:
            event["trunk"] = self.trunk
        if self.draw is not None:
            event["draw"] = self.draw
        return event


def draw(seed: str, call: str) -> float:
    """The call's percentage draw in [0, 100): HMAC-SHA256(seed, call id), first 8 bytes / 2**64."""
    digest = hmac.new(seed.encode("utf-8"), call.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def decide(call: str, config: RecordingConfig, *, queue: str | None = None, trunk: str | None = None) -> Decision:
    """Decide for one call (see the module docstring for the rules)."""
    if not isinstance(call, str) or not call:
        raise ValueError(f"call: must be a non-empty string, got {call!r}")
    qpol = config.queues.get(queue) if queue is not None else None
    tpol = config.trunks.get(trunk) if trunk is not None else None
    if tpol is not None and tpol.mode == "never":
        policy, source = tpol, f"trunk:{trunk}"
    elif qpol is not None and qpol.mode == "never" or qpol is not None:
        policy, source = qpol, f"queue:{queue}"
    elif tpol is not None:
        policy, source = tpol, f"trunk:{trunk}"
    else:
        policy, source = config.default, "default"
    where = "the default policy" if source == "default" else f"{source.replace(':', ' ', 1)}"
    value = None
    if policy.mode == "always":
        record, reason = True, f"{where}: always"
    elif policy.mode == "never":
        record, reason = False, f"{where}: never"
    elif policy.mode == "on_demand":
        record, reason = False, f"{where}: on demand (recording.start or DTMF)"
    else:
        value = draw(config.sample_seed, call)
        record = value < policy.percent
        reason = (f"{where}: {policy.percent:g}% sampled; draw {value:.4f} "
                  f"{'<' if record else '>='} {policy.percent:g}")
    return Decision(call=call, record=record, mode=policy.mode, source=source, reason=reason,
                    policy=config.effective(policy), queue=queue, trunk=trunk, draw=value)


DTMF_ACTIONS = ("start", "stop", "pause", "resume")


class DtmfCodes:
    """Matches digits keyed on a call against the configured codes (``*1`` start...).

    Feed it one digit at a time with :meth:`feed`; it returns the action
    when the last digits complete a code, else None. It keeps only as many
    digits as the longest code, so a code is found wherever it starts in
    the digit stream (no code is a prefix of another: the configuration
    checks it).
    """

    def __init__(self, codes: dict[str, str]) -> None:
        for code, action in codes.items():
            if action not in DTMF_ACTIONS:
                raise ValueError(f"codes: {code!r} -> {action!r} is not one of {', '.join(DTMF_ACTIONS)}")
        self.codes = dict(codes)
        self._longest = max((len(c) for c in codes), default=0)
        self._recent = ""

    def feed(self, digit: str) -> str | None:
        if not self.codes:
            return None
        self._recent = (self._recent + digit)[-self._longest:]
        for code, action in self.codes.items():
            if self._recent.endswith(code):
                self._recent = ""
                return action
        return None
