"""Crash recovery: a process recording a call with the real engine is SIGKILLed; recover() repairs,
encrypts and links what it left; odd spool states are handled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trio
from recording_kit import trio_test

from mediacore.recorder import WavRecorder
from orchestrator.recording import RecordingConfig, RecordingInfo, RecordingService, RecordingStore, archive
from orchestrator.store import EventLog
from tests.conftest import read_wav
from tests.rtppeer import tone

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


class Log:
    def __init__(self) -> None:
        self.events: list[dict] = []

    async def append(self, event: dict) -> int:
        self.events.append(event)
        return len(self.events)


@trio_test
async def test_sigkilled_recording_is_repaired_encrypted_and_linked(tmp_path, config, key_file):
    url = f"sqlite:///{tmp_path}/hotline.db"
    base = random.randrange(50000, 52000, 20)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    proc = subprocess.Popen([sys.executable, str(HERE / "crash_recorder.py"), str(config.dir), url, str(key_file),
                             str(base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(proc.stdout.readline)
        assert line.startswith("RECORDING "), (line, proc.stderr.read() if proc.poll() is not None else "")
        rid = line.split()[1]
        await trio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    spool = config.dir / "spool"
    wav = spool / f"{rid}.wav"
    left = RecordingStore(config.dir).in_progress()
    assert [i.recording for i in left] == [rid] and left[0].state == "recording"
    raw = wav.read_bytes()
    # Plaintext left by the dead process, with over a second of audio; its WAV sizes are whatever the
    # engine's last periodic header update said (repair() recomputes them from the length).
    assert raw[:4] == b"RIFF" and len(raw) > 44 + 8000 * 4

    with trio.fail_after(30):
        log = await trio.to_thread.run_sync(lambda: EventLog(url, node="crashy"))  # its own recovery ends the call
        try:
            service = RecordingService(config, log=log, node="crashy")
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)
                report = await service.recover()
                info = await service.get(rid)
                again = await service.recover()
                nursery.cancel_scope.cancel()
            await log.flush()
            record = log.call_record_sync("crashy-1")
            events = log.read_sync(types="recording.*", call="crashy-1")
        finally:
            await log.aclose()
    assert report.recovered == (rid,) and report.failed == () and again.recovered == ()
    assert info["state"] == "ready" and info["recovered"] and info["encrypted"] and info["key_id"] == "k2024"
    assert info["duration"] > 1.0
    assert not list(spool.iterdir())  # plaintext shredded, spool record gone
    out = tmp_path / "export.wav"
    store = RecordingStore(config.dir)
    archive.export(store, store.find(rid), out, service.keys)
    rate, pcm = read_wav(out)  # Python's wave module reads it: the header is whole again
    assert rate == 8000 and pcm.shape == (round(info["duration"] * rate), 2)
    spectrum = np.abs(np.fft.rfft(pcm[:, 0].astype(float)))
    assert abs(np.argmax(spectrum) * rate / len(pcm) - 440) < 5  # the caller's tone is in the file
    assert record is not None and rid in record.recordings and record.end_reason == "node_restart"
    types = [e.type for e in events]
    assert types[0] == "recording.started" and types[-2:] == ["recording.ready", "recording.analyzed"]
    assert events[-2].data["recovered"] is True and events[-2].data["sha256"] == info["sha256"]


def _spool_record(store: RecordingStore, rid: str, started: float, **kw) -> RecordingInfo:
    info = RecordingInfo(recording=rid, call=rid.split("_")[0], state="recording", format="wav", stereo=True,
                         sample_rate=8000, file=f"spool/{rid}.wav", started_at=started, **kw)
    store.ensure()
    store.write(info)
    return info


@trio_test
async def test_spool_without_audio_fails_and_a_paused_crash_closes_its_pause(tmp_path, config):
    store = RecordingStore(config.dir)
    t0 = time.time() - 60
    _spool_record(store, "gone_20240101T000000Z", t0)
    paused = _spool_record(store, "paused_20240101T000001Z", t0,
                           pauses=({"at": t0 + 1.0, "by": "agent:7", "reason": "card", "resumed_at": None,
                                    "resumed_by": None},))
    # A WAV as a killed writer leaves it: audio written, sizes in the header still zero.
    path = config.dir / paused.file
    with WavRecorder(path, 8000, 2) as rec:
        rec.write(tone(300, 2.0), tone(600, 2.0))
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = b"\x00\x00\x00\x00"
    path.write_bytes(bytes(data))
    os.utime(path, (t0 + 2.0, t0 + 2.0))
    log = Log()
    service = RecordingService(config, log=log)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        report = await service.recover()
        gone = await service.get("gone_20240101T000000Z")
        done = await service.get(paused.recording)
        nursery.cancel_scope.cancel()
    assert report.failed == ("gone_20240101T000000Z",) and report.recovered == (paused.recording,)
    assert gone["state"] == "failed" and "no audio" in gone["error"] and gone["recovered"]
    assert done["state"] == "ready" and done["duration"] == pytest.approx(2.0)
    assert done["ended_at"] == pytest.approx(t0 + 2.0)
    assert done["pauses"][0]["resumed_at"] == pytest.approx(t0 + 2.0) and done["pauses"][0]["resumed_by"] == "end"
    assert done["paused_seconds"] == pytest.approx(1.0, abs=0.01)
    assert [e["type"] for e in log.events] == ["recording.failed", "recording.ready", "recording.analyzed"]


@trio_test
async def test_crash_after_storing_but_before_cleanup_is_announced_again(tmp_path, config):
    store = RecordingStore(config.dir)
    info = _spool_record(store, "late_20240101T000000Z", time.time() - 10)
    with WavRecorder(config.dir / info.file, 8000, 2) as rec:
        rec.write(np.zeros(800, np.int16), np.zeros(800, np.int16))
    ready, _ = archive.finalize(store, info, keys=None, analytics=False)
    # the crash: the spool record is still there (and a plaintext copy, for an encrypted store)
    assert (store.spool / f"{info.recording}.json").exists()
    log = Log()
    service = RecordingService(RecordingConfig.from_mapping({"dir": str(config.dir)}), log=log)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        report = await service.recover()
        nursery.cancel_scope.cancel()
    assert report.reannounced == (info.recording,) and report.recovered == () and report.failed == ()
    assert [e["type"] for e in log.events] == ["recording.ready"]
    assert log.events[0]["sha256"] == ready.sha256
    assert not list(store.spool.iterdir())
