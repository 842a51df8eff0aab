"""orchestrator.recording: call recording policy, encrypted storage, retention and post-call analytics.

* :mod:`~orchestrator.recording.config` - the ``[recording]`` section (:class:`RecordingConfig`);
* :mod:`~orchestrator.recording.policy` - whether a call is recorded (:func:`decide`), DTMF codes;
* :mod:`~orchestrator.recording.crypto` - AES-256-GCM streaming container (``.hlrec``), key files;
* :mod:`~orchestrator.recording.storage` - the recordings directory and metadata records;
* :mod:`~orchestrator.recording.archive` - finish, export, purge (blocking file work);
* :mod:`~orchestrator.recording.analytics` - webrtcvad talk time, overtalk, silences, turns;
* :mod:`~orchestrator.recording.retention` - which recordings a purge removes;
* :mod:`~orchestrator.recording.service` - :class:`RecordingService`, the Trio service;
* :mod:`~orchestrator.recording.cli` - ``hotline recordings list|show|export|purge|hold|rotate-key``.

Event types it appends to the event log (each with ``call`` and
``recording``, so the call record lists the recording): ``recording.decision``
(no ``recording``), ``recording.started``, ``recording.paused``,
``recording.resumed``, ``recording.stopped``, ``recording.ready`` (published
too), ``recording.analyzed``, ``recording.failed``, ``recording.legal_hold``,
``recording.purged``.
"""

from .analytics import CallAnalytics, analyze, analyze_file
from .config import FORMATS, MODES, Policy, RecordingConfig, parse_policy
from .crypto import (
    CryptoError,
    KeyRing,
    NotAContainerError,
    TamperedError,
    TruncatedError,
    UnknownKeyError,
    add_key,
    decrypt_file,
    encrypt_file,
)
from .errors import RecordingConflict, RecordingError, RecordingNotFound
from .policy import Decision, DtmfCodes, decide, draw
from .retention import PurgeCandidate, select_for_purge
from .service import PurgeReport, RecordingService, RecordingStatistics, RecoveryReport, call_context
from .storage import RecordingInfo, RecordingStore

__all__ = [
    "FORMATS",
    "MODES",
    "CallAnalytics",
    "CryptoError",
    "Decision",
    "DtmfCodes",
    "KeyRing",
    "NotAContainerError",
    "Policy",
    "PurgeCandidate",
    "PurgeReport",
    "RecordingConfig",
    "RecordingConflict",
    "RecordingError",
    "RecordingInfo",
    "RecordingNotFound",
    "RecordingService",
    "RecordingStatistics",
    "RecordingStore",
    "RecoveryReport",
    "TamperedError",
    "TruncatedError",
    "UnknownKeyError",
    "add_key",
    "analyze",
    "analyze_file",
    "call_context",
    "decide",
    "decrypt_file",
    "draw",
    "encrypt_file",
    "parse_policy",
    "select_for_purge",
]
