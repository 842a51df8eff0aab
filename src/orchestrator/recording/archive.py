"""The blocking file work on a recording: finish, export, purge. Run it in a worker thread.

:func:`finalize` takes a recording the engine has finished writing (or that
a crash left in the spool) to the store:

1. :func:`mediacore.recorder.repair` - a no-op for a file the engine
   finished, the header fix for one a killed process left; it also gives the
   duration;
2. analytics (:mod:`.analytics`) on stereo recordings, with PCI pauses and
   holds left out; a failure there is recorded and never stops the rest;
3. encryption into the dated store (:mod:`.crypto`), then a full read-back
   that decrypts every chunk and compares the SHA-256 with the original:
   the plaintext is removed only once the encrypted copy is known good
   (without a key file the spool file is moved instead);
4. the metadata record in the dated store.

The caller removes the spool record (:func:`cleanup_spool`) after the events
are in the log, so a crash anywhere leaves the recording found again by
crash recovery, never lost (events may then be appended twice; the call
record keeps recording ids once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from .analytics import CallAnalytics, analyze_file
from .crypto import (
    DecryptResult,
    KeyRing,
    decrypt_file,
    encrypt_file,
    fsync_dir,
    iter_decrypted,
    read_header,
    shred,
)
from .storage import RecordingInfo, RecordingStore

__all__ = [
    "audio_rate",
    "cleanup_spool",
    "exclusion_spans",
    "export",
    "finalize",
    "purge_file",
    "sha256_file",
    "verify",
    "verify_path",
]

log = logging.getLogger("hotline.recording")


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while block := f.read(1024 * 1024):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def audio_rate(path: str | os.PathLike[str]) -> int | None:
    """The sample rate a WAV (fmt chunk) or Ogg Opus (OpusHead input rate) file declares."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError:
        return None
    at = head.find(b"fmt ")
    if head[:4] == b"RIFF" and at >= 0 and len(head) >= at + 16:
        return int.from_bytes(head[at + 12:at + 16], "little")
    at = head.find(b"OpusHead")
    if at >= 0 and len(head) >= at + 16:
        return int.from_bytes(head[at + 12:at + 16], "little")
    return None


def exclusion_spans(info: RecordingInfo, end: float | None = None) -> list[tuple[float, float]]:
    """PCI pauses and holds as (start, end) seconds from the start of the recording."""
    stop = end if end is not None else (info.ended_at if info.ended_at is not None else time.time())
    spans = []
    for p in info.pauses:
        resumed = p.get("resumed_at")
        spans.append((p["at"] - info.started_at, (resumed if resumed is not None else stop) - info.started_at))
    for h in info.holds:
        until = h.get("until")
        spans.append((h["at"] - info.started_at, (until if until is not None else stop) - info.started_at))
    return [(max(0.0, a), max(0.0, b)) for a, b in spans if b > a]


def _close_open_spans(info: RecordingInfo, at: float) -> RecordingInfo:
    pauses = tuple({**p, "resumed_at": at, "resumed_by": "end"} if p.get("resumed_at") is None else p
                   for p in info.pauses)
    holds = tuple({**h, "until": at} if h.get("until") is None else h for h in info.holds)
    paused = sum(p["resumed_at"] - p["at"] for p in pauses)
    return replace(info, pauses=pauses, holds=holds, paused_seconds=round(max(0.0, paused), 3))


def finalize(store: RecordingStore, info: RecordingInfo, *, keys: KeyRing | None, analytics: bool = True,
             vad_mode: int = 2, chunk_size: int = 64 * 1024, recovered: bool = False,
             ended_at: float | None = None) -> tuple[RecordingInfo, CallAnalytics | None]:
    """Take a finished spool recording to the store (see the module docstring).

    Returns the updated record (state ``ready``) and the analytics (None
    when not run). Raises OSError / ValueError when the audio cannot be
    finished; the spool files are then left as they are.
    """
    from mediacore.recorder import repair

    spool = store.absolute(info)
    if not spool.exists():
        raise FileNotFoundError(f"{spool}: the recording's audio is missing")
    if ended_at is None:
        ended_at = info.ended_at if info.ended_at is not None else os.stat(spool).st_mtime
    repaired = repair(spool)
    if repaired.changed:
        log.warning("recording %s: repaired %s (%d -> %d bytes)", info.recording, spool, repaired.old_size,
                    repaired.new_size)
    info = _close_open_spans(replace(info, ended_at=ended_at, duration=round(repaired.duration, 3),
                                     sample_rate=audio_rate(spool) or info.sample_rate,
                                     recovered=info.recovered or recovered), ended_at)
    result: CallAnalytics | None = None
    if analytics and info.stereo:
        try:
            result = analyze_file(spool, vad_mode=vad_mode, exclude=exclusion_spans(info, ended_at))
            info = replace(info, analytics=result.to_dict())
        except Exception as exc:  # analytics never stop a recording from being kept
            log.warning("recording %s: analytics failed: %s", info.recording, exc)
            info = replace(info, analytics={"error": str(exc)})
    encrypted = keys is not None
    target = store.stored_audio(info, encrypted)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if encrypted:
        res = encrypt_file(spool, target, keys, chunk_size=chunk_size)
        check = verify_path(target, keys)
        if check.sha256 != res.sha256 or check.size != res.plaintext_size:
            target.unlink(missing_ok=True)
            raise OSError(f"{target}: the encrypted copy does not read back as the original; plaintext kept")
        info = replace(info, encrypted=True, key_id=res.key_id, size=res.plaintext_size, sha256=res.sha256,
                       stored_size=res.stored_size, stored_sha256=res.stored_sha256)
    else:
        digest, size = sha256_file(spool)
        os.replace(spool, target)
        fsync_dir(target.parent)
        fsync_dir(spool.parent)
        info = replace(info, encrypted=False, key_id=None, size=size, sha256=digest, stored_size=size,
                       stored_sha256=digest)
    info = replace(info, state="ready", file=store.relative(target), error=None)
    store.write(info)
    return info, result


def cleanup_spool(store: RecordingStore, rid: str, audio_name: str | None = None) -> None:
    """Remove what the spool still holds of a stored recording: shred the plaintext, drop the record."""
    for p in store.spool.glob(f"{rid}.*"):
        if p.suffix == ".json":
            continue
        shred(p)
    meta = store.spool / f"{rid}.json"
    if meta.exists():
        meta.unlink()
        fsync_dir(store.spool)


def verify_path(path: Path, keys: KeyRing) -> DecryptResult:
    """Decrypt a container without keeping the plaintext: size and SHA-256 (raises on any damage)."""
    h = hashlib.sha256()
    size = chunks = 0
    key_id = read_header(path).key_id
    with open(path, "rb") as f:
        for plain in iter_decrypted(f, keys, name=os.fspath(path)):
            h.update(plain)
            size += len(plain)
            chunks += 1
    return DecryptResult(key_id=key_id, size=size, sha256=h.hexdigest(), chunks=chunks)


def verify(store: RecordingStore, info: RecordingInfo, keys: KeyRing | None) -> None:
    """Check a stored recording against its metadata (ValueError / CryptoError on any difference)."""
    path = store.absolute(info)
    if info.encrypted:
        if keys is None:
            raise ValueError(f"recording {info.recording} is encrypted: a key file is needed")
        res = verify_path(path, keys)
        digest, size = res.sha256, res.size
    else:
        digest, size = sha256_file(path)
    if digest != info.sha256 or size != info.size:
        raise ValueError(f"recording {info.recording}: {path} does not match its metadata "
                         f"(SHA-256 {digest[:12]}... size {size}, expected {str(info.sha256)[:12]}... {info.size})")


def export(store: RecordingStore, info: RecordingInfo, dst: str | os.PathLike[str], keys: KeyRing | None) -> int:
    """Write the playable audio of a stored recording to ``dst``; returns its size.

    Encrypted recordings are decrypted (``dst`` appears only if every chunk
    authenticates); the result is checked against the SHA-256 in the metadata.
    """
    if info.state != "ready":
        raise ValueError(f"recording {info.recording} is {info.state}: nothing to export")
    src = store.absolute(info)
    if info.encrypted:
        if keys is None:
            raise ValueError(f"recording {info.recording} is encrypted: give the key file (--key-file or "
                             f"[recording] key_file)")
        res = decrypt_file(src, dst, keys)
        digest, size = res.sha256, res.size
    else:
        digest, size = sha256_file(src)
        tmp = Path(dst).with_name(f".{Path(dst).name}.part")
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            while block := fi.read(1024 * 1024):
                fo.write(block)
        os.replace(tmp, dst)
    if info.sha256 is not None and digest != info.sha256:
        Path(dst).unlink(missing_ok=True)
        raise ValueError(f"recording {info.recording}: the audio does not match the SHA-256 in its metadata")
    return size


def purge_file(store: RecordingStore, info: RecordingInfo, *, at: float, by: str) -> RecordingInfo:
    """Delete a stored recording's audio and leave a tombstone record (state ``purged``)."""
    path = store.absolute(info)
    if info.encrypted:
        path.unlink(missing_ok=True)  # ciphertext: unlinking is enough
        fsync_dir(path.parent)
    else:
        shred(path)
    tomb = replace(info, state="purged", purged_at=at, purged_by=by, error=None)
    store.write(tomb)
    return tomb
