"""The ``[recording]`` configuration section.

Everything recording reads lives in this one section, per-queue and
per-trunk policies included, so the ``[[queue]]`` and ``[[trunk]]`` tables of
the ACD and the registrar stay theirs::

    [recording]
    dir = "var/recordings"          # spool (in progress) and the encrypted store
    format = "wav"                  # wav | opus  (also wav-ulaw, wav-alaw)
    stereo = true                   # left: the caller; right: what the caller hears (the agent)
    sample_rate = 0                 # 0: the call's own rate; else 8000, 16000 or 48000
    key_file = "var/recording.keys" # AES-256-GCM keys; absent: recordings stay unencrypted
    retention_days = 90             # purge after this many days; 0: keep forever
    policy = "always"               # always | never | on_demand | "25%"
    sample_seed = "change-me"       # makes "N%" decisions reproducible and auditable
    dtmf_start = "*1"               # on demand: digits a party keys to start...
    dtmf_stop = "*2"
    dtmf_pause = "*7"               # ...or pause/resume (card payments, PCI DSS)
    dtmf_resume = "*8"
    analytics = true                # webrtcvad talk/silence analytics on stereo recordings
    vad_mode = 2                    # webrtcvad aggressiveness 0..3

    [recording.queues.support]      # per queue: a policy string, or a table
    policy = "25%"
    retention_days = 30
    format = "opus"

    [recording.trunks]
    carrier-eu = "never"            # the short form: just the policy

Precedence (see :mod:`orchestrator.recording.policy`): a trunk or queue
saying ``never`` wins; otherwise the queue's policy, then the trunk's, then
the section's. Errors name the key: ``recording.queues.support.policy: ...``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["FORMATS", "MODES", "Policy", "PolicyMode", "RecordingConfig", "parse_policy"]

#: Recording formats (engine names): WAV PCM16, WAV G.711, Ogg Opus.
FORMATS = ("wav", "wav-ulaw", "wav-alaw", "opus")
#: Policy modes.
MODES = ("always", "never", "on_demand", "percentage")
PolicyMode = str
_RATES = (0, 8000, 16000, 48000)
_DTMF = re.compile(r"[0-9*#A-D]{1,8}")
_NAME = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")


@dataclass(frozen=True, kw_only=True)
class Policy:
    """One recording policy: the mode, and how recordings it starts are made.

    ``format``/``stereo``/``sample_rate``/``retention_days`` of ``None`` take
    the section's value (see :meth:`RecordingConfig.policy_for`).
    """

    mode: str = "always"
    percent: float = 100.0
    format: str | None = None
    stereo: bool | None = None
    sample_rate: int | None = None
    retention_days: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"policy: must be one of always, never, on_demand or 'N%', got {self.mode!r}")
        if isinstance(self.percent, bool) or not isinstance(self.percent, (int, float)) \
                or not math.isfinite(self.percent) or not 0 <= self.percent <= 100:
            raise ValueError(f"percent: must be within 0..100, got {self.percent!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.stereo is not None and not isinstance(self.stereo, bool):
            raise ValueError(f"stereo: must be true or false, got {self.stereo!r}")
        if self.sample_rate is not None and (isinstance(self.sample_rate, bool) or self.sample_rate not in _RATES):
            raise ValueError(f"sample_rate: must be 0 (the call's rate), 8000, 16000 or 48000, got {self.sample_rate!r}")
        if self.retention_days is not None and (isinstance(self.retention_days, bool)
                                                or not isinstance(self.retention_days, (int, float))
                                                or not math.isfinite(self.retention_days)
                                                or self.retention_days < 0):
            raise ValueError(f"retention_days: must be a number >= 0 (0: keep forever), got {self.retention_days!r}")

    @property
    def label(self) -> str:
        return f"{self.percent:g}%" if self.mode == "percentage" else self.mode


def parse_policy(value: Any, where: str = "policy") -> tuple[str, float]:
    """``"always"``, ``"never"``, ``"on_demand"`` or ``"N%"`` -> (mode, percent)."""
    if isinstance(value, str):
        text = value.strip()
        if text in ("always", "never", "on_demand"):
            return text, 100.0 if text == "always" else 0.0
        if text.endswith("%"):
            try:
                pct = float(text[:-1])
            except ValueError:
                pct = math.nan
            if math.isfinite(pct) and 0 <= pct <= 100:
                return "percentage", pct
            raise ValueError(f"{where}: a percentage must be 0% to 100%, got {value!r}")
    raise ValueError(f"{where}: must be always, never, on_demand or a percentage like \"25%\", got {value!r}")


_POLICY_KEYS = ("policy", "format", "stereo", "sample_rate", "retention_days")


def _policy_from(value: Any, where: str) -> Policy:
    if isinstance(value, str):
        mode, pct = parse_policy(value, where)
        return Policy(mode=mode, percent=pct)
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a policy string or a table, got {value!r}")
    unknown = sorted(set(value) - set(_POLICY_KEYS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (one of {', '.join(_POLICY_KEYS)})")
    mode, pct = parse_policy(value.get("policy", "always"), f"{where}.policy")
    kw: dict[str, Any] = {}
    for key in _POLICY_KEYS[1:]:
        if key in value:
            kw[key] = value[key]
    try:
        return Policy(mode=mode, percent=pct, **kw)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None


@dataclass(frozen=True, kw_only=True)
class RecordingConfig:
    """The ``[recording]`` section, validated (see the module docstring for the keys)."""

    dir: Path = Path("var/recordings")
    format: str = "wav"
    stereo: bool = True
    sample_rate: int = 0
    opus_bitrate: int = 0
    key_file: Path | None = None
    retention_days: float = 0.0
    default: Policy = field(default_factory=Policy)
    queues: Mapping[str, Policy] = field(default_factory=dict)
    trunks: Mapping[str, Policy] = field(default_factory=dict)
    sample_seed: str = "hotline"
    dtmf_start: str | None = None
    dtmf_stop: str | None = None
    dtmf_pause: str | None = None
    dtmf_resume: str | None = None
    analytics: bool = True
    vad_mode: int = 2
    chunk_size: int = 64 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))
        if self.key_file is not None:
            object.__setattr__(self, "key_file", Path(self.key_file))
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))
        object.__setattr__(self, "trunks", MappingProxyType(dict(self.trunks)))
        # The section's own values are a full policy: check them the same way.
        Policy(mode=self.default.mode, percent=self.default.percent, format=self.format, stereo=self.stereo,
               sample_rate=self.sample_rate, retention_days=self.retention_days)
        if isinstance(self.opus_bitrate, bool) or not isinstance(self.opus_bitrate, int) \
                or not (self.opus_bitrate == 0 or 6000 <= self.opus_bitrate <= 510_000):
            raise ValueError(f"opus_bitrate: must be 0 (automatic) or 6000..510000, got {self.opus_bitrate!r}")
        if not isinstance(self.sample_seed, str) or not self.sample_seed:
            raise ValueError("sample_seed: must be a non-empty string")
        codes = {}
        for name in ("dtmf_start", "dtmf_stop", "dtmf_pause", "dtmf_resume"):
            code = getattr(self, name)
            if code is None:
                continue
            if not isinstance(code, str) or not _DTMF.fullmatch(code):
                raise ValueError(f"{name}: must be 1-8 DTMF digits (0-9 * # A-D), got {code!r}")
            if code in codes:
                raise ValueError(f"{name}: {code!r} is also {codes[code]}")
            codes[code] = name
        for a in codes:
            for b in codes:
                if a != b and b.startswith(a):
                    raise ValueError(f"{codes[b]}: {b!r} starts with {codes[a]} {a!r}: it could never be keyed")
        if not isinstance(self.analytics, bool):
            raise ValueError(f"analytics: must be true or false, got {self.analytics!r}")
        if isinstance(self.vad_mode, bool) or self.vad_mode not in (0, 1, 2, 3):
            raise ValueError(f"vad_mode: must be 0, 1, 2 or 3, got {self.vad_mode!r}")
        for kind, table in (("queues", self.queues), ("trunks", self.trunks)):
            for name, pol in table.items():
                if not isinstance(name, str) or not _NAME.fullmatch(name):
                    raise ValueError(f"{kind}: bad name {name!r}")
                if not isinstance(pol, Policy):
                    raise ValueError(f"{kind}.{name}: must be a Policy")

    @property
    def encrypted(self) -> bool:
        return self.key_file is not None

    @property
    def dtmf_codes(self) -> dict[str, str]:
        """code -> action (start, stop, pause, resume), for the configured codes."""
        return {code: name[5:] for name in ("dtmf_start", "dtmf_stop", "dtmf_pause", "dtmf_resume")
                if (code := getattr(self, name)) is not None}

    def effective(self, policy: Policy) -> Policy:
        """``policy`` with the section's values where it has none."""
        return replace(policy,
                       format=policy.format if policy.format is not None else self.format,
                       stereo=policy.stereo if policy.stereo is not None else self.stereo,
                       sample_rate=policy.sample_rate if policy.sample_rate is not None else self.sample_rate,
                       retention_days=(policy.retention_days if policy.retention_days is not None
                                       else self.retention_days))

    def retention_for(self, queue: str | None) -> float:
        """Days a recording of ``queue`` is kept (0: forever)."""
        pol = self.queues.get(queue) if queue is not None else None
        if pol is not None and pol.retention_days is not None:
            return float(pol.retention_days)
        return float(self.retention_days)

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any] | None, *, base_dir: str | os.PathLike[str] | None = None,
                     where: str = "recording") -> RecordingConfig:
        """Build from the ``[recording]`` TOML table; relative paths are taken from ``base_dir``.

        ValueError names the key: ``recording.format: must be one of ...``.
        """
        section = dict(section or {})
        known = {"dir", "format", "stereo", "sample_rate", "opus_bitrate", "key_file", "retention_days", "policy",
                 "queues", "trunks", "sample_seed", "dtmf_start", "dtmf_stop", "dtmf_pause", "dtmf_resume",
                 "analytics", "vad_mode", "chunk_size"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key")
        base = Path(base_dir) if base_dir is not None else None

        def path(key: str) -> Path | None:
            value = section.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value:
                raise ValueError(f"{where}.{key}: must be a path string, got {value!r}")
            p = Path(value)
            return base / p if base is not None and not p.is_absolute() else p

        kw: dict[str, Any] = {}
        for key in ("format", "stereo", "sample_rate", "opus_bitrate", "retention_days", "sample_seed",
                    "dtmf_start", "dtmf_stop", "dtmf_pause", "dtmf_resume", "analytics", "vad_mode", "chunk_size"):
            if key in section:
                kw[key] = section[key]
        if "dir" in section:
            kw["dir"] = path("dir")
        elif base is not None:
            kw["dir"] = base / "var" / "recordings"
        kw["key_file"] = path("key_file")
        if "policy" in section:
            mode, pct = parse_policy(section["policy"], f"{where}.policy")
            kw["default"] = Policy(mode=mode, percent=pct)
        for kind in ("queues", "trunks"):
            table = section.get(kind, {})
            if not isinstance(table, Mapping):
                raise ValueError(f"{where}.{kind}: must be a table of name = policy")
            kw[kind] = {name: _policy_from(value, f"{where}.{kind}.{name}") for name, value in table.items()}
        chunk = kw.get("chunk_size", 64 * 1024)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1024 <= chunk <= 16 * 1024 * 1024:
            raise ValueError(f"{where}.chunk_size: must be an int from 1024 to 16777216, got {chunk!r}")
        try:
            return cls(**kw)
        except ValueError as exc:
            raise ValueError(f"{where}.{exc}") from None
