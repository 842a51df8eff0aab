"""Where recordings live: a spool for the ones in progress, a dated store for the finished ones.

Layout under ``[recording] dir``::

    spool/<id>.wav                  the engine writes here while the call is recorded
    spool/<id>.json                 its metadata, written (durably) before the engine starts:
                                    what crash recovery looks for
    2024/05/17/<id>.wav.hlrec       finished and encrypted (``.wav`` when no key file)
    2024/05/17/<id>.json            its metadata record

A recording id is the call id and the UTC start time,
``<call>_<YYYYMMDDTHHMMSSZ>`` (``_2``, ``_3``... if a call starts two in
one second), so files sort by call and time and the id is also valid
as a JSON-RPC ``recording`` parameter. The dated directory is the UTC day
the recording started.

The metadata record (one JSON object, :class:`RecordingInfo`) is what
``hotline recordings list/show`` print and ``recording.get`` returns;
it is rewritten atomically (temporary file, fsync, rename, directory fsync)
on every change. The event log carries the same facts as events, linking
them to the call record; the files here make the recordings directory
self-describing (it can be moved, restored from a backup, or read with no
database).
"""

from __future__ import annotations

import calendar
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .crypto import fsync_dir

__all__ = ["EXTENSIONS", "STATES", "RecordingInfo", "RecordingStore", "recording_id", "safe_name"]

#: recording (capturing), paused, stopping (engine finishing the file), ready, failed, purged
STATES = ("recording", "paused", "stopping", "ready", "failed", "purged")
#: file extension of each format
EXTENSIONS = {"wav": "wav", "wav-ulaw": "wav", "wav-alaw": "wav", "opus": "opus"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@+-]")
_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")


def safe_name(call: str) -> str:
    """A call id as a file-name-safe part of a recording id (at most 96 characters)."""
    return _UNSAFE.sub("_", call)[:96] or "call"


def recording_id(call: str, started_at: float, n: int = 1) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))
    return f"{safe_name(call)}_{stamp}" + (f"_{n}" if n > 1 else "")


@dataclass(frozen=True, kw_only=True)
class RecordingInfo:
    """The metadata record of one recording (times are Unix seconds)."""

    recording: str
    call: str
    state: str
    format: str
    stereo: bool
    sample_rate: int
    file: str
    """Path of the audio (spool file, then the stored file), relative to the recordings dir."""
    started_at: float
    started_by: str = "policy"
    ended_at: float | None = None
    duration: float | None = None
    """Seconds of audio in the file (paused time included: it is recorded as silence)."""
    size: int | None = None
    """Bytes of the audio file (as exported)."""
    sha256: str | None = None
    """SHA-256 of the audio file (as exported)."""
    stored_size: int | None = None
    stored_sha256: str | None = None
    encrypted: bool = False
    key_id: str | None = None
    legs: tuple[Mapping[str, Any], ...] = ()
    """Who is on which channel: ``{"channel": "left"|"right"|"mix", "party": ..., "peer": ...}``."""
    queue: str | None = None
    trunk: str | None = None
    decision: Mapping[str, Any] | None = None
    pauses: tuple[Mapping[str, Any], ...] = ()
    """``{"at", "by", "reason", "resumed_at", "resumed_by"}`` per pause (PCI DSS audit)."""
    holds: tuple[Mapping[str, Any], ...] = ()
    """``{"at", "until"}``: the call on hold (hold music on the right channel)."""
    paused_seconds: float = 0.0
    legal_hold: bool = False
    legal_hold_by: str | None = None
    legal_hold_reason: str | None = None
    legal_hold_at: float | None = None
    recovered: bool = False
    """Finished by crash recovery (the process recording it died)."""
    analytics: Mapping[str, Any] | None = None
    error: str | None = None
    purged_at: float | None = None
    purged_by: str | None = None
    node: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordingInfo:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("legs", "pauses", "holds"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [dict(x) if isinstance(x, Mapping) else x for x in v]
            elif isinstance(v, Mapping):
                v = dict(v)
            out[f.name] = v
        return out

    @property
    def day(self) -> str:
        return time.strftime("%Y/%m/%d", time.gmtime(self.started_at))


def _write_json(path: Path, data: Mapping[str, Any], *, durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    text = json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, text.encode("utf-8"))
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


class RecordingStore:
    """The recordings directory (see the module docstring). Blocking I/O: call it from a worker thread."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.spool = self.root / "spool"

    def ensure(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o750)

    # -- names --------------------------------------------------------------------------------------
    def new_id(self, call: str, started_at: float, taken: set[str] | frozenset[str] = frozenset()) -> str:
        day = time.strftime("%Y/%m/%d", time.gmtime(started_at))
        for n in range(1, 10_000):
            rid = recording_id(call, started_at, n)
            if rid in taken or (self.spool / f"{rid}.json").exists() or (self.root / day / f"{rid}.json").exists():
                continue
            return rid
        raise RuntimeError(f"no free recording id for call {call!r}")  # pragma: no cover

    def spool_audio(self, rid: str, format: str) -> Path:
        return self.spool / f"{rid}.{EXTENSIONS[format]}"

    def stored_audio(self, info: RecordingInfo, encrypted: bool) -> Path:
        name = f"{info.recording}.{EXTENSIONS[info.format]}" + (".hlrec" if encrypted else "")
        return self.root / info.day / name

    def relative(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def absolute(self, info: RecordingInfo) -> Path:
        return self.root / info.file

    def meta_path(self, info: RecordingInfo) -> Path:
        if info.state in ("recording", "paused", "stopping"):
            return self.spool / f"{info.recording}.json"
        return self.root / info.day / f"{info.recording}.json"

    # -- metadata -----------------------------------------------------------------------------------
    def write(self, info: RecordingInfo, *, durable: bool = True) -> Path:
        path = self.meta_path(info)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        _write_json(path, info.to_dict(), durable=durable)
        return path

    def finish(self, info: RecordingInfo) -> Path:
        """Write a finished record in the dated store and remove its spool record."""
        path = self.write(info)
        spool = self.spool / f"{info.recording}.json"
        if spool.exists():
            spool.unlink()
            fsync_dir(self.spool)
        return path

    @staticmethod
    def read(path: str | os.PathLike[str]) -> RecordingInfo:
        with open(path, encoding="utf-8") as f:
            return RecordingInfo.from_dict(json.load(f))

    def in_progress(self) -> list[RecordingInfo]:
        """Records left in the spool (recordings that were in progress)."""
        out = []
        if self.spool.is_dir():
            for p in sorted(self.spool.glob("*.json")):
                try:
                    out.append(self.read(p))
                except (OSError, ValueError, TypeError) as exc:
                    raise ValueError(f"{p}: unreadable recording metadata: {exc}") from None
        return out

    def scan(self) -> Iterator[tuple[Path, RecordingInfo]]:
        """Every finished (or failed, or purged) record in the dated store, oldest day first."""
        for year in _sorted_dirs(self.root, r"\d{4}"):
            for month in _sorted_dirs(year, r"\d{2}"):
                for day in _sorted_dirs(month, r"\d{2}"):
                    for p in sorted(day.glob("*.json")):
                        if p.name.startswith("."):
                            continue
                        yield p, self.read(p)

    def newest(self, *, call: str | None = None, start: float | None = None, end: float | None = None,
               limit: int = 100) -> list[RecordingInfo]:
        """Stored records newest first (``start <= started_at < end``), reading only the days needed."""
        out: list[RecordingInfo] = []
        pattern = f"{safe_name(call)}_*.json" if call is not None else "*.json"
        for year in reversed(_sorted_dirs(self.root, r"\d{4}")):
            for month in reversed(_sorted_dirs(year, r"\d{2}")):
                for day in reversed(_sorted_dirs(month, r"\d{2}")):
                    stamp = calendar.timegm(time.strptime(f"{year.name}{month.name}{day.name}", "%Y%m%d"))
                    if start is not None and stamp + 86400 <= start:
                        return out
                    if end is not None and stamp >= end:
                        continue
                    found = []
                    for p in day.glob(pattern):
                        if p.name.startswith("."):
                            continue
                        info = self.read(p)
                        if (call is None or info.call == call) and (start is None or info.started_at >= start) \
                                and (end is None or info.started_at < end):
                            found.append(info)
                    found.sort(key=lambda i: -i.started_at)
                    out.extend(found)
                    if len(out) >= limit:
                        return out[:limit]
        return out

    def find(self, rid: str) -> RecordingInfo | None:
        """A record by id: the spool first, then the store (the id says the day only roughly: scan)."""
        if not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise ValueError(f"recording: not a recording id: {rid!r}")
        spool = self.spool / f"{rid}.json"
        if spool.exists():
            return self.read(spool)
        m = re.search(r"_(\d{4})(\d{2})(\d{2})T\d{6}Z(?:_\d+)?$", rid)
        if m:
            p = self.root / m.group(1) / m.group(2) / m.group(3) / f"{rid}.json"
            if p.exists():
                return self.read(p)
        for p, info in self.scan():
            if info.recording == rid:
                return info
        return None


def _sorted_dirs(parent: Path, pattern: str) -> list[Path]:
    if not parent.is_dir():
        return []
    rx = re.compile(pattern)
    return sorted(p for p in parent.iterdir() if p.is_dir() and rx.fullmatch(p.name))
