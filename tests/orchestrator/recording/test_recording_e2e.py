"""End to end: two scripted SIP phones call through the real B2BUA and media engine on loopback; the
RecordingService records the call by policy, wired the way the daemon wires it (engine events and call
events fanned out to it, events into a real event log); the stored recording decrypts to the speech both
parties sent, its analytics match who spoke, and the call record lists it."""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np
import pytest
import trio
from recording_kit import speech_span, trio_test

from mediacore.engine import Engine
from orchestrator.calls import (
    CallbackSink,
    CallManager,
    CallManagerConfig,
    Contact,
    DialPlan,
    InMemoryLocator,
    OpenAuthenticator,
)
from orchestrator.recording import RecordingService, archive
from orchestrator.sip import TimerConfig, parse_uri
from orchestrator.store import EventLog
from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport
from tests.conftest import read_wav
from tests.orchestrator.calls.b2bua_harness import Hotline, engine_port_range, phones


@contextlib.asynccontextmanager
async def hotline_with_recording(tmp_path, config):
    lo, hi = engine_port_range()
    engine = Engine(port_range=(lo, hi), threads=1, stats_interval=0)
    endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)],
                           config=EndpointConfig(rate_limit=None, timers=TimerConfig(t1=0.1, t2=0.4)))
    locator = InMemoryLocator()
    log = await trio.to_thread.run_sync(lambda: EventLog(f"sqlite:///{tmp_path}/hotline.db", node="e2e"))
    published: list[dict] = []
    calls: list = []
    service_box: list[RecordingService] = []

    def on_call_event(event) -> None:
        calls.append(event)
        log.append_nowait({"type": event.name, "at": event.at, "call": event.call_id, "caller": event.caller,
                           "callee": event.callee})
        service_box[0].handle_call_event(event)

    manager = CallManager(endpoint, engine, router=DialPlan(dids={}), locator=locator,
                          authenticator=OpenAuthenticator(), events=CallbackSink(on_call_event),
                          config=CallManagerConfig(ring_timeout=10))
    service = RecordingService(config, engine=engine, calls=manager, log=log, publish=published.append, node="e2e")
    service_box.append(service)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(endpoint.run)
            await nursery.start(functools.partial(manager.run, consume_engine_events=False))
            await nursery.start(service.run)

            async def engine_events() -> None:
                async for event in engine.events():
                    if not service.handle_engine_event(event):
                        manager.handle_engine_event(event)

            nursery.start_soon(engine_events)
            hl = Hotline(engine, endpoint, manager, locator, calls, endpoint.local_address("UDP"), (lo, hi))
            yield hl, service, log, published
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
        await log.aclose()


def stream(peer, pcm, to) -> threading.Thread:
    t = threading.Thread(target=peer.stream_pcm, args=(pcm, to))
    t.start()
    return t


@trio_test
async def test_a_real_call_is_recorded_encrypted_analysed_and_linked(tmp_path, config, voices):
    caller_pcm, agent_pcm = voices["short"], voices["agent"][: 8000 * 1]  # ~1 s each
    silence = np.zeros(4000, np.int16)
    with trio.fail_after(40):
        async with hotline_with_recording(tmp_path, config) as (hl, service, log, published), \
                phones(hl, "alice", "bob") as (alice, bob):
            hl.locator.add(Contact(aor="sip:2000@hotline", uri=parse_uri(bob.uri)))
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            while service.statistics().active == 0:  # call.answered -> the policy (always) starts it
                await trio.sleep(0.01)
            (live,) = await service.list()
            call_id = live["call"]
            # The caller speaks, then (after half a second) the agent answers.
            await trio.to_thread.run_sync(stream(alice.rtp, np.concatenate([caller_pcm, silence]),
                                                 call.media_target).join)
            await trio.to_thread.run_sync(stream(bob.rtp, np.concatenate([agent_pcm, silence]),
                                                 bcall.media_target).join)
            assert (await call.bye()).status_code == 200
            info = await service.wait_ready(live["recording"])
            await log.flush()
            record = log.call_record_sync(call_id)
            events = log.read_sync(call=call_id)
            out = tmp_path / "call.wav"
            archive.export(service.store, service.store.find(info["recording"]), out, service.keys)
    assert info["state"] == "ready" and info["encrypted"] and info["stereo"] and info["sample_rate"] == 8000
    assert info["legs"][0]["peer"].startswith("sip:alice@") and info["legs"][1]["peer"].startswith("sip:bob@")
    rate, pcm = read_wav(out)
    assert pcm.shape[1] == 2 and len(pcm) / rate == pytest.approx(info["duration"], abs=0.001)
    # Left is what alice said, right what she heard (bob): each channel holds its party's speech, in order.
    left_loud = np.flatnonzero(np.abs(pcm[:, 0].astype(int)) > 500)
    right_loud = np.flatnonzero(np.abs(pcm[:, 1].astype(int)) > 500)
    assert len(left_loud) and len(right_loud) and left_loud[-1] < right_loud[0]
    a = info["analytics"]
    # Sent speech spans (G.711 and the jitter buffer keep their length); VAD tolerance as in the analytics tests.
    c0, c1 = speech_span(caller_pcm, 8000)
    g0, g1 = speech_span(agent_pcm, 8000)
    assert a["talk_left"] == pytest.approx(c1 - c0, abs=0.3)
    assert a["talk_right"] == pytest.approx(g1 - g0, abs=0.3)
    assert a["overtalk"] == 0.0 and a["turns"] == 1
    assert record is not None and record.recordings == (info["recording"],)
    assert record.caller is not None and record.caller.startswith("sip:alice@")
    types = [e.type for e in events]
    assert types.index("call.answered") < types.index("recording.decision") < types.index("recording.started")
    assert types.index("recording.ready") < types.index("recording.analyzed")
    decision = next(e for e in events if e.type == "recording.decision")
    assert decision.data["reason"] == "the default policy: always" and decision.data["record"] is True
    (ready,) = [p for p in published if p["type"] == "recording.ready"]
    assert ready["recording"] == info["recording"] and ready["call"] == call_id and ready["sha256"] == info["sha256"]
