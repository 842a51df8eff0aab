"""hotline recordings: list, show, export (and refusing a tampered file), verify, purge, hold, rotate-key."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediacore.recorder import WavRecorder
from orchestrator.recording import KeyRing, RecordingInfo, RecordingStore, archive
from orchestrator.recording.cli import main
from orchestrator.store import EventLog
from tests.rtppeer import tone

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_700_000_000.0


def make_recording(store: RecordingStore, keys: KeyRing | None, call: str, started: float,
                   queue: str | None = None) -> tuple[RecordingInfo, bytes]:
    """A finished recording made the way the service makes one: a spool WAV, then finalize()."""
    store.ensure()
    rid = store.new_id(call, started)
    spool = store.spool_audio(rid, "wav")
    with WavRecorder(spool, 8000, 2) as rec:
        rec.write(tone(400, 1.0), tone(900, 1.0))
    original = spool.read_bytes()
    info = RecordingInfo(recording=rid, call=call, state="stopping", format="wav", stereo=True, sample_rate=8000,
                         file=store.relative(spool), started_at=started, ended_at=started + 1.0, queue=queue)
    store.write(info)
    info, _ = archive.finalize(store, info, keys=keys)
    archive.cleanup_spool(store, rid)
    return info, original


@pytest.fixture
def setup(tmp_path, config, key_file):
    store = RecordingStore(config.dir)
    keys = KeyRing.load(key_file)
    made = [make_recording(store, keys, "n1-7", NOW - 40 * 86400, queue="support"),
            make_recording(store, keys, "n1-8", NOW - 5 * 86400),
            make_recording(store, keys, "n1-9", NOW - 31 * 86400)]
    url = f"sqlite:///{tmp_path}/hotline.db"
    conf = tmp_path / "hotline.toml"
    conf.write_text(f'[storage]\nurl = "{url}"\n\n[recording]\ndir = "{config.dir}"\nkey_file = "{key_file}"\n'
                    f'retention_days = 30\n\n[recording.queues.support]\npolicy = "always"\nretention_days = 60\n')
    return {"store": store, "keys": keys, "made": made, "conf": conf, "url": url, "dir": config.dir,
            "key_file": key_file}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show(setup, capsys):
    code, out, _ = run(capsys, "--config", str(setup["conf"]), "list")
    ids = [info.recording for info, _ in setup["made"]]
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [ids[1], ids[2], ids[0]]  # newest first
    assert "ready" in lines[0] and "k2024" in lines[0] and "1.0s" in lines[0]
    code, out, _ = run(capsys, "--dir", str(setup["dir"]), "list", "--call", "n1-7", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["recording"] == ids[0] and row["queue"] == "support"
    code, out, _ = run(capsys, "--dir", str(setup["dir"]), "list", "--from", str(NOW - 35 * 86400), "--to",
                       "2023-11-01T00:00:00")
    assert [line.split()[0] for line in out.splitlines()] == [ids[2]]
    code, out, _ = run(capsys, "--config", str(setup["conf"]), "show", ids[0], "--json")
    assert code == 0 and json.loads(out) == setup["made"][0][0].to_dict()
    code, out, _ = run(capsys, "--config", str(setup["conf"]), "show", ids[0])
    assert f"recording          {ids[0]}" in out and "key_id             k2024" in out
    assert str(setup["dir"] / setup["made"][0][0].file) in out


def test_export_decrypts_to_the_original_bytes(setup, capsys, tmp_path):
    info, original = setup["made"][0]
    out = tmp_path / "play.wav"
    code, text, _ = run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out))
    assert code == 0 and out.read_bytes() == original
    assert text.startswith(f"{out}: {len(original)} bytes") and hashlib.sha256(original).hexdigest() in text
    code, _, err = run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out))
    assert code == 2 and "exists (use --force" in err
    assert run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out), "--force")[0] == 0


def test_export_refuses_a_tampered_or_truncated_file(setup, capsys, tmp_path):
    info, _ = setup["made"][1]
    stored = setup["dir"] / info.file
    blob = bytearray(stored.read_bytes())
    blob[200] ^= 0x40
    stored.write_bytes(bytes(blob))
    out = tmp_path / "x.wav"
    code, _, err = run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out))
    assert code == 1 and not out.exists()
    assert f"recording {info.recording}: refused:" in err and "failed authentication" in err
    blob[200] ^= 0x40
    stored.write_bytes(bytes(blob[:-20]))
    code, _, err = run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out))
    assert code == 1 and not out.exists() and "refused" in err
    code, out_text, _ = run(capsys, "--config", str(setup["conf"]), "verify")
    assert code == 1 and f"FAILED  {info.recording}" in out_text and "2 ok, 1 failed" in out_text


def test_export_needs_the_key_and_a_known_id(setup, capsys, tmp_path):
    info, _ = setup["made"][0]
    code, _, err = run(capsys, "--dir", str(setup["dir"]), "export", info.recording, "-o", str(tmp_path / "o"))
    assert code == 1 and "is encrypted: give the key file" in err
    code, _, err = run(capsys, "--config", str(setup["conf"]), "export", "n1-1_20200101T000000Z", "-o", "o")
    assert code == 1 and "no recording 'n1-1_20200101T000000Z'" in err


def test_purge_dry_run_then_purge_keeps_legal_holds_and_logs(setup, capsys):
    ids = [info.recording for info, _ in setup["made"]]
    conf = str(setup["conf"])
    assert run(capsys, "--config", conf, "hold", ids[2], "--reason", "case 9")[0] == 0
    code, out, _ = run(capsys, "--config", conf, "purge", "--dry-run", "--now", str(NOW))
    # n1-7 is 40 days old but its queue keeps 60; n1-9 (31 days, default 30) is held
    assert code == 0 and "would purge 0 recording(s)" in out and f"kept   {ids[2]} (legal hold" in out
    code, out, _ = run(capsys, "--config", conf, "purge", "--dry-run", "--now", str(NOW + 24 * 86400), "--json")
    report = json.loads(out)
    assert [c["recording"] for c in report["purged"]] == [ids[0]] and report["dry_run"]
    assert all((setup["dir"] / info.file).exists() for info, _ in setup["made"])
    assert run(capsys, "--config", conf, "hold", ids[2], "--release")[0] == 0
    code, out, _ = run(capsys, "--config", conf, "purge", "--now", str(NOW + 24 * 86400))
    assert code == 0 and f"purged {ids[0]}" in out and f"purged {ids[2]}" in out
    assert "purged 2 recording(s)" in out
    assert not (setup["dir"] / setup["made"][0][0].file).exists()
    assert (setup["dir"] / setup["made"][1][0].file).exists()
    code, out, _ = run(capsys, "--config", conf, "show", ids[0], "--json")
    assert json.loads(out)["state"] == "purged" and json.loads(out)["purged_by"].startswith("cli:")
    with EventLog(setup["url"], recover=False) as log:
        events = log.read_sync(types="recording.*")
        audit = log.audit_entries_sync()
    assert [(e.type, e.data["recording"]) for e in events] == [
        ("recording.legal_hold", ids[2]), ("recording.legal_hold", ids[2]),
        ("recording.purged", ids[0]), ("recording.purged", ids[2])]
    assert [a.method for a in audit] == ["recording.legal_hold", "recording.legal_hold", "recording.purge"]


def test_rotate_key_keeps_old_recordings_readable(setup, capsys, tmp_path):
    code, out, _ = run(capsys, "--config", str(setup["conf"]), "rotate-key", "--key-id", "k2025")
    assert code == 0 and "added key k2025" in out
    ring = KeyRing.load(setup["key_file"])
    assert ring.current == "k2025" and "k2024" in ring.keys
    info, original = setup["made"][0]
    out_file = tmp_path / "old.wav"
    assert run(capsys, "--config", str(setup["conf"]), "export", info.recording, "-o", str(out_file))[0] == 0
    assert out_file.read_bytes() == original


def test_usage_errors(tmp_path, capsys):
    code, _, err = run(capsys, "list")
    assert code == 2 and "give --config FILE" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[recording]\ndir = "x"\nformat = "mp3"\n')
    code, _, err = run(capsys, "--config", str(bad), "list")
    assert code == 2 and f"{bad}: recording.format: must be one of" in err
    bad.write_text("[recording\n")
    assert run(capsys, "--config", str(bad), "list")[0] == 2
    assert run(capsys, "--dir", str(tmp_path), "list", "--limit", "0")[0] == 2
    assert run(capsys, "--dir", str(tmp_path), "rotate-key")[0] == 2
    assert run(capsys, "--dir", str(tmp_path), "frobnicate")[0] == 2
    assert run(capsys, "--dir", str(tmp_path), "list")[:2] == (0, "")


def test_as_a_program(setup, tmp_path):
    info, original = setup["made"][2]
    out = tmp_path / "p.wav"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    done = subprocess.run([sys.executable, "-m", "orchestrator.recording.cli", "--config", str(setup["conf"]),
                           "export", info.recording, "-o", str(out)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == original
    assert np.frombuffer(original[44:], "<i2").size == 16000  # 1 s of stereo 8 kHz
