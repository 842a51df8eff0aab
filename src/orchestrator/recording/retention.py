"""Retention: which finished recordings are old enough to purge (a pure selection).

A recording is purged when it is older than the retention of its queue
(``[recording.queues.NAME] retention_days``) or else the section's
``retention_days``; 0 keeps it forever. A recording under legal hold is
never purged, whatever its age: it is reported as held instead. Age counts
from the recording's start. Recordings still in progress are not looked at
(they are in the spool, not the store).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .config import RecordingConfig
from .storage import RecordingInfo

__all__ = ["DAY", "PurgeCandidate", "select_for_purge"]

DAY = 86400.0


@dataclass(frozen=True, kw_only=True)
class PurgeCandidate:
    recording: str
    call: str
    queue: str | None
    started_at: float
    age_days: float
    retention_days: float
    legal_hold: bool

    def to_dict(self) -> dict:
        return {"recording": self.recording, "call": self.call, "queue": self.queue, "started_at": self.started_at,
                "age_days": round(self.age_days, 3), "retention_days": self.retention_days,
                "legal_hold": self.legal_hold}


def select_for_purge(infos: Iterable[RecordingInfo], config: RecordingConfig,
                     now: float) -> tuple[list[PurgeCandidate], list[PurgeCandidate]]:
    """(to purge, past retention but on legal hold), each oldest first."""
    purge: list[PurgeCandidate] = []
    held: list[PurgeCandidate] = []
    for info in infos:
        if info.state not in ("ready", "failed"):
            continue
        days = config.retention_for(info.queue)
        if days <= 0:
            continue
        age = (now - info.started_at) / DAY
        if age < days:
            continue
        c = PurgeCandidate(recording=info.recording, call=info.call, queue=info.queue, started_at=info.started_at,
                           age_days=age, retention_days=days, legal_hold=info.legal_hold)
        (held if info.legal_hold else purge).append(c)
    purge.sort(key=lambda c: c.started_at)
    held.sort(key=lambda c: c.started_at)
    return purge, held
