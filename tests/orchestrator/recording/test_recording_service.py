"""The RecordingService over a real media engine, real RTP on loopback and a real event log (SQLite).

Every wait is bounded by trio.fail_after; nothing asserts how long anything took.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import trio
from recording_kit import trio_test
from service_rig import running_service

from orchestrator.calls import CallEvent
from orchestrator.recording import RecordingConfig, RecordingConflict, RecordingNotFound, archive
from orchestrator.recording.crypto import read_header
from tests.conftest import read_wav
from tests.rtppeer import tone


def export_pcm(rig, info: dict, tmp_path) -> tuple[int, np.ndarray]:
    out = tmp_path / f"{info['recording']}.export"
    store = rig.service.store
    archive.export(store, store.find(info["recording"]), out, rig.service.keys)
    return read_wav(out)


def zero_runs(x: np.ndarray) -> list[int]:
    z = np.concatenate([[0], (x == 0).astype(np.int8), [0]])
    d = np.diff(z)
    return (np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).tolist()


@trio_test
async def test_pci_pause_keeps_the_card_number_out_of_the_file_and_logs_who_and_when(tmp_path, config):
    with trio.fail_after(30):
        async with running_service(tmp_path, config) as rig:
            rig.new_call("n1-1", route="queue:support")
            started = await rig.service.start("n1-1", by="crm:acme")
            assert started["state"] == "recording" and started["started_by"] == "crm:acme"
            assert started["queue"] == "support"
            async with trio.open_nursery() as n:
                # The caller talks the whole time (a 440 Hz tone stands for the voice: no natural gaps)...
                n.start_soon(rig.say, "n1-1", "caller", tone(440, 2.4))
                await trio.sleep(0.8)
                paused = await rig.service.pause("n1-1", by="agent:9001", reason="card payment")
                assert paused["state"] == "paused"
                await trio.sleep(0.8)  # ... and reads the card number here
                resumed = await rig.service.resume("n1-1", by="agent:9001")
                assert resumed["state"] == "recording"
            stopped = await rig.service.stop("n1-1", by="crm:acme")
            assert stopped["state"] == "stopping"
            info = await rig.service.wait_ready(stopped["recording"])
            events = rig.events("n1-1")
            record = rig.log.call_record_sync("n1-1")
            rate, pcm = export_pcm(rig, info, tmp_path)
    assert info["state"] == "ready" and info["encrypted"] and info["key_id"] == "k2024"
    (pause,) = info["pauses"]
    assert pause["by"] == "agent:9001" and pause["reason"] == "card payment" and pause["resumed_by"] == "agent:9001"
    assert pause["resumed_at"] - pause["at"] == pytest.approx(info["paused_seconds"], abs=1e-3)
    assert 0.7 < info["paused_seconds"] < 1.5
    # While paused the engine records digital silence: one run of exact zeros as long as the pause.
    assert rate == 8000 and pcm.shape[1] == 2
    longest = max(zero_runs(pcm[:, 0])) / rate
    assert longest == pytest.approx(info["paused_seconds"], abs=0.1)
    heard = pcm[:, 0][np.abs(pcm[:, 0]) > 0]
    assert len(heard) / rate > 1.0  # the talk before and after the pause is there
    assert [e.type for e in events] == ["recording.started", "recording.paused", "recording.resumed",
                                        "recording.stopped", "recording.ready", "recording.analyzed"]
    paused_event = events[1]
    assert paused_event.data["by"] == "agent:9001" and paused_event.data["reason"] == "card payment"
    assert paused_event.at == pytest.approx(pause["at"])
    assert record is not None and record.recordings == (info["recording"],)
    ready = events[4].data
    assert ready["sha256"] == info["sha256"] and ready["key_id"] == "k2024" and ready["paused_seconds"] > 0.7
    analyzed = events[5].data
    assert analyzed["excluded"] == pytest.approx(info["paused_seconds"], abs=0.05)


@trio_test
async def test_metadata_file_and_container_agree(tmp_path, config):
    with trio.fail_after(30):
        async with running_service(tmp_path, config) as rig:
            rig.new_call("n1-2", route="queue:sales", trunk="carrier")
            await rig.service.start("n1-2")
            await rig.say("n1-2", "agent", tone(700, 0.6))
            stopped = await rig.service.stop("n1-2")
            info = await rig.service.wait_ready(stopped["recording"])
            stats = rig.service.statistics()
            rate, pcm = export_pcm(rig, info, tmp_path)
            exported = (tmp_path / f"{info['recording']}.export").read_bytes()
    root = config.dir
    stored = root / info["file"]
    meta = json.loads((stored.parent / f"{info['recording']}.json").read_text())
    assert meta == info
    assert info["recording"].startswith("n1-2_") and info["file"].endswith(".wav.hlrec")
    assert stored.parent.relative_to(root).as_posix().count("/") == 2  # YYYY/MM/DD
    assert read_header(stored).key_id == "k2024"
    assert info["sha256"] == hashlib.sha256(exported).hexdigest() and info["size"] == len(exported)
    assert info["stored_sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert info["stored_size"] == stored.stat().st_size
    assert info["duration"] == pytest.approx(len(pcm) / rate, abs=0.001)
    assert info["legs"] == [{"channel": "left", "party": "caller", "peer": "sip:alice@x"},
                            {"channel": "right", "party": "callee", "peer": "sip:9001@hotline"}]
    assert (info["queue"], info["trunk"], info["sample_rate"], info["format"]) == ("sales", "carrier", 8000, "wav")
    # The agent's tone is on the right channel (what the caller hears), not the left.
    assert np.abs(pcm[:, 1]).max() > 1000 and np.abs(pcm[:, 0]).max() < 50
    assert not list((root / "spool").iterdir())  # nothing left in the spool: plaintext gone
    assert stats.started == stats.ready == stats.analyzed == 1 and stats.active == 0 and stats.failed == 0


@trio_test
async def test_policies_decide_and_act(tmp_path, key_file):
    config = RecordingConfig.from_mapping({
        "dir": str(tmp_path / "rec"), "key_file": str(key_file), "policy": "on_demand",
        "queues": {"sales": "always", "payments": "never", "half": "50%"},
        "trunks": {"blocked": "never"}})
    with trio.fail_after(30):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            rig.new_call("c-always", route="queue:sales")
            d = await svc.apply_policy("c-always")
            assert d.record and svc.statistics().active == 1
            assert (await svc.apply_policy("c-always")) is d  # same context: decided once
            rig.new_call("c-never", route="queue:payments")
            assert not (await svc.apply_policy("c-never")).record
            with pytest.raises(RecordingConflict, match="must not be recorded .queue payments: never"):
                await svc.start("c-never")
            rig.new_call("c-trunk", route="queue:sales", trunk="blocked")
            assert (await svc.apply_policy("c-trunk")).source == "trunk:blocked"
            rig.new_call("c-demand")
            assert not (await svc.apply_policy("c-demand")).record
            assert svc.statistics().active == 1
            on_demand = await svc.start("c-demand", by="supervisor:jo")
            assert on_demand["decision"]["mode"] == "on_demand" and on_demand["started_by"] == "supervisor:jo"
            # A transfer into a queue that must never be recorded stops the recording.
            await svc.apply_policy("c-always", queue="payments")
            assert svc.statistics().active == 1
            rec = (await svc.list(call="c-always"))[0]
            assert rec["state"] in ("stopping", "ready")
            await svc.wait_ready(rec["recording"])
            decisions = [e for e in rig.events() if e.type == "recording.decision"]
            half = rig.new_call("c-half", route="queue:half")
            dh = await svc.apply_policy(half)
    assert [(e.call, e.data["record"], e.data["source"]) for e in decisions] == [
        ("c-always", True, "queue:sales"), ("c-never", False, "queue:payments"),
        ("c-trunk", False, "trunk:blocked"), ("c-demand", False, "default"), ("c-always", False, "queue:payments")]
    assert decisions[2].data["reason"] == "trunk blocked: never"
    assert dh.mode == "percentage" and dh.draw is not None and dh.record is (dh.draw < 50)


@trio_test
async def test_conflicts_and_not_found_carry_rpc_codes(tmp_path, config):
    with trio.fail_after(20):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            rig.new_call("k1")
            with pytest.raises(RecordingNotFound, match="call: no call 'nope'") as err:
                await svc.start("nope")
            assert err.value.rpc_code == -32004
            with pytest.raises(RecordingConflict, match="call: k1 is not being recorded") as err2:
                await svc.pause("k1")
            assert err2.value.rpc_code == -32009
            with pytest.raises(RecordingNotFound):
                await svc.stop("nope")
            await svc.start("k1")
            with pytest.raises(RecordingConflict, match="already being recorded"):
                await svc.start("k1")
            with pytest.raises(RecordingConflict, match="is recording, not paused"):
                await svc.resume("k1")
            await svc.pause("k1")
            with pytest.raises(RecordingConflict, match="is paused, not recording"):
                await svc.pause("k1")
            with pytest.raises(RecordingNotFound, match="no recording 'zzz'"):
                await svc.get("zzz")
            with pytest.raises(ValueError, match="recording: not a recording id"):
                await svc.get("../etc/passwd")
            with pytest.raises(ValueError, match="call: must be a call id"):
                await svc.start("")
            with pytest.raises(ValueError, match="limit: must be an int >= 1"):
                await svc.list(limit=0)
            stopped = await svc.stop("k1")  # stopping a paused recording closes the pause
            info = await svc.wait_ready(stopped["recording"])
            assert info["pauses"][0]["resumed_by"] == "stop"


@trio_test
async def test_hangup_finishes_the_recording_and_holds_are_left_out_of_analytics(tmp_path, config):
    with trio.fail_after(20):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            rig.new_call("h1")
            svc.handle_call_event(CallEvent(name="call.answered", call_id="h1", at=1.0, caller="a", callee="b"))
            while svc.statistics().active == 0:  # the policy (always) started it
                await trio.sleep(0.01)
            (live,) = await svc.list(call="h1")
            svc.handle_call_event(CallEvent(name="call.held", call_id="h1", at=svc.clock(), caller="a", callee="b"))
            await trio.sleep(0.3)
            svc.handle_call_event(CallEvent(name="call.resumed", call_id="h1", at=svc.clock(), caller="a",
                                            callee="b"))
            rig.hang_up("h1")  # no stop(): the engine stops the leg's recorder
            info = await svc.wait_ready(live["recording"])
            svc.handle_call_event(CallEvent(name="call.ended", call_id="h1", at=svc.clock(), caller="a", callee="b"))
    assert info["state"] == "ready" and info["ended_at"] is not None
    (hold,) = info["holds"]
    assert hold["until"] - hold["at"] == pytest.approx(0.3, abs=0.1)
    assert info["analytics"]["excluded"] == pytest.approx(hold["until"] - hold["at"], abs=0.05)


@trio_test
async def test_dtmf_codes_pause_and_resume(tmp_path, key_file):
    config = RecordingConfig.from_mapping({"dir": str(tmp_path / "rec"), "key_file": str(key_file),
                                           "dtmf_pause": "*7", "dtmf_resume": "*8"})
    with trio.fail_after(20):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            rig.new_call("d1")
            await svc.start("d1")
            assert [svc.handle_digit("d1", d, by="dtmf:agent") for d in "1*7"] == [None, None, "pause"]
            while (await svc.list(call="d1"))[0]["state"] != "paused":
                await trio.sleep(0.01)
            assert svc.handle_digit("d1", "*") is None and svc.handle_digit("d1", "8") == "resume"
            while (await svc.list(call="d1"))[0]["state"] != "recording":
                await trio.sleep(0.01)
            info = (await svc.list(call="d1"))[0]
    assert info["pauses"][0]["by"] == "dtmf:agent" and info["pauses"][0]["resumed_by"] == "dtmf"


@trio_test
async def test_list_get_and_unencrypted_opus_storage(tmp_path):
    config = RecordingConfig.from_mapping({"dir": str(tmp_path / "rec"), "format": "opus"})
    with trio.fail_after(30):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            ids = []
            for n in range(3):
                rig.new_call(f"L{n}")
                ids.append((await svc.start(f"L{n}"))["recording"])
            await rig.say("L1", "caller", tone(500, 0.4))
            live = await svc.list()
            assert [r["recording"] for r in live] == ids[::-1]  # newest first
            for n in range(3):
                await svc.stop(f"L{n}")
            for rid in ids:
                await svc.wait_ready(rid)
            one = await svc.get(ids[1])
            only = await svc.list(call="L1")
            limited = await svc.list(limit=2)
            window = await svc.list(start=one["started_at"], end=one["started_at"] + 0.000001)
            export = tmp_path / "l1.opus"
            store = svc.store
            archive.export(store, store.find(ids[1]), export, None)
    assert one["encrypted"] is False and one["key_id"] is None and one["file"].endswith(".opus")
    assert export.read_bytes()[:4] == b"OggS" and hashlib.sha256(export.read_bytes()).hexdigest() == one["sha256"]
    assert [r["recording"] for r in only] == [ids[1]]
    assert len(limited) == 2 and [r["recording"] for r in window] == [ids[1]]
    assert "error" not in one["analytics"] and one["analytics"]["duration"] > 0.3 and one["format"] == "opus"


@trio_test
async def test_legal_hold_and_retention_purge(tmp_path, config):
    now = [1_700_000_000.0]
    with trio.fail_after(30):
        async with running_service(tmp_path, config, clock=lambda: now[0]) as rig:
            svc = rig.service
            ids = []
            for n, age in enumerate((40, 35, 10)):
                now[0] = 1_700_000_000.0 - age * 86400
                rig.new_call(f"p{n}")
                ids.append((await svc.start(f"p{n}"))["recording"])
                await svc.stop(f"p{n}")
                await svc.wait_ready(ids[-1])
            now[0] = 1_700_000_000.0
            held = await svc.set_legal_hold(ids[0], True, by="legal:ann", reason="case 42")
            assert held["legal_hold"] and held["legal_hold_by"] == "legal:ann"
            dry = await svc.purge(dry_run=True)
            files = sorted(p.name for p in config.dir.rglob("*.hlrec"))
            report = await svc.purge(by="retention")
            after = sorted(p.name for p in config.dir.rglob("*.hlrec"))
            tomb = await svc.get(ids[1])
            again = await svc.purge()
            events = rig.events()
            audit = rig.log.audit_entries_sync()
            with pytest.raises(RecordingConflict, match="was purged"):
                await svc.set_legal_hold(ids[1], True)
    assert [c.recording for c in dry.purged] == [ids[1]] and [c.recording for c in dry.held] == [ids[0]]
    assert len(files) == 3  # the dry run deleted nothing
    assert [c.recording for c in report.purged] == [ids[1]] and report.bytes_freed > 0
    assert report.purged[0].age_days == pytest.approx(35) and report.purged[0].retention_days == 30
    assert after == sorted(f for f in files if not f.startswith(ids[1]))
    assert tomb["state"] == "purged" and tomb["purged_by"] == "retention" and tomb["sha256"]
    assert again.purged == () and [c.recording for c in again.held] == [ids[0]]
    purged = [e for e in events if e.type == "recording.purged"]
    assert [(e.data["recording"], e.call) for e in purged] == [(ids[1], "p1")]
    holds = [e for e in events if e.type == "recording.legal_hold"]
    assert holds[0].data["by"] == "legal:ann" and holds[0].data["reason"] == "case 42"
    assert [a.method for a in audit] == ["recording.legal_hold", "recording.purge"]
    assert audit[1].params["purged"] == [ids[1]] and audit[1].principal == "retention"


def test_service_arguments_are_checked(config):
    from orchestrator.recording import RecordingService

    with pytest.raises(ValueError, match="config: must be a RecordingConfig"):
        RecordingService({"dir": "x"})
    with pytest.raises(ValueError, match="max_parallel: must be an int >= 1"):
        RecordingService(config, max_parallel=0)
    with pytest.raises(RuntimeError, match="not running"):
        RecordingService(config)._spawn(lambda: None)


def test_call_context_reads_queue_and_trunk():
    from orchestrator.recording import call_context

    assert call_context(SimpleNamespace(route="queue:support", identity=None)) == ("support", None)
    assert call_context(SimpleNamespace(route="extension:9001", data={"queue": "q"},
                                        identity=SimpleNamespace(kind="trunk", name="t1"))) == ("q", "t1")
    assert call_context(SimpleNamespace(route="", identity=SimpleNamespace(kind="user", name="u"))) == (None, None)


@trio_test
async def test_a_policy_start_that_found_no_media_is_retried(tmp_path, config):
    with trio.fail_after(20):
        async with running_service(tmp_path, config) as rig:
            svc = rig.service
            call = rig.new_call("m1")
            media = call.a.media.id
            call.a.media.id = None  # answered, but the caller's media is not set up yet
            d = await svc.apply_policy("m1")
            assert d.record and svc.statistics().active == 0
            call.a.media.id = media
            assert (await svc.apply_policy("m1")) is d and svc.statistics().active == 1
            (rec,) = await svc.list(call="m1")
            await svc.stop("m1")
            await svc.apply_policy("m1")  # stopped on purpose: not restarted
            assert svc.statistics().active == 0
            await svc.wait_ready(rec["recording"])
            decisions = [e for e in rig.events("m1") if e.type == "recording.decision"]
    assert len(decisions) == 1


def test_it_is_the_control_planes_recording_service_and_its_errors_map_to_rpc_codes(config):
    from orchestrator.control.errors import error_from_exception
    from orchestrator.control.services import RecordingService as Protocol
    from orchestrator.recording import RecordingService

    assert isinstance(RecordingService(config), Protocol)
    assert error_from_exception(RecordingConflict("x")).code == -32009
    assert error_from_exception(RecordingNotFound("x")).code == -32004
