"""Media-side call control on loopback: hold from our side, recording the
bridge, DTMF sent to a party, and a call whose legs run over TLS (SIPS)."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest
import trio
from b2bua_harness import phones, running_hotline, send_rtp, trio_test, wait_packets

from mediacore import g711
from orchestrator.calls import CallManagerConfig, Contact
from orchestrator.sip import parse_uri
from orchestrator.transport import TlsConfig
from tests.rtppeer import band_energy, tone


def register(hl, user, phone):
    hl.locator.add(Contact(aor=f"sip:{user}@hotline", uri=parse_uri(phone.uri)))


@pytest.fixture(scope="module")
def moh(tmp_path_factory):
    path = tmp_path_factory.mktemp("moh") / "moh.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "3", "sine", "700",
                    "vol", "0.5"], check=True, capture_output=True)
    return str(path)


@trio_test
async def test_hold_from_our_side_plays_music_to_the_caller_and_silences_the_callee(moh):
    with trio.fail_after(15):
        async with running_hotline(config=CallManagerConfig(music_on_hold=moh)) as hl, \
                phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            hcall = hl.manager.calls()[0]
            hcall.hold()  # what a CRM's call.hold does: no SIP, media is ours
            alice.rtp.clear()
            bob.rtp.clear()
            await send_rtp(bob.rtp, bcall.media_target, 25, payload=b"\x55" * 160)
            assert band_energy(alice.rtp.audio(), 700) > 0.8  # the caller hears music...
            assert not any(p.payload == b"\x55" * 160 for p in alice.rtp.packets())  # ...not the callee
            hcall.unhold()
            alice.rtp.clear()
            await send_rtp(bob.rtp, bcall.media_target, 10, payload=b"\x55" * 160)
            got = await wait_packets(alice.rtp, 10)
            assert any(p.payload == b"\x55" * 160 for p in got)
            await call.bye()
    names = hl.names()
    assert names.index("call.held") < names.index("call.resumed") < names.index("call.ended")
    assert hl.event("call.held").details["by"] == "system"


@trio_test
async def test_recording_a_bridged_call_and_sending_dtmf_to_the_callee(tmp_path):
    path = tmp_path / "call.wav"
    with trio.fail_after(15):
        async with running_hotline() as hl, phones(hl, "alice", "bob") as (alice, bob):
            register(hl, "2000", bob)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            hcall = hl.manager.calls()[0]
            recorder = hcall.record(path)
            pcm = tone(500, 1.0)
            for i in range(0, len(pcm), 160):
                alice.rtp.send(alice.rtp.packet(g711.ulaw_encode(pcm[i:i + 160])), call.media_target)
                await trio.sleep(0.02)
            hcall.stop_recording(recorder)
            hcall.send_dtmf("7")
            while not any(p.payload_type == 101 and p.payload[0] == 7 for p in bob.rtp.packets()):
                await trio.sleep(0.01)  # RFC 4733 event 7 towards bob
            while not path.exists() or path.stat().st_size < 1000:
                await trio.sleep(0.02)
            await trio.sleep(0.2)
            await call.bye()
    with wave.open(str(path)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    assert w.getframerate() == 8000 and len(frames) >= 4000
    assert band_energy(frames[:, 0][2000:6000].astype(np.int16), 500) > 0.5  # alice's tone in the mix


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command line tool not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return TlsConfig(certificate=d / "cert.pem", private_key=d / "key.pem", ca_file=d / "cert.pem")


@trio_test
async def test_a_sips_contact_is_called_over_tls(tls):
    with trio.fail_after(15):
        async with running_hotline(tls=tls) as hl, phones(hl, "alice") as (alice,), \
                phones(hl, "bob", transport="TLS", tls=tls) as (bob,):
            register(hl, "2000", bob)  # bob's contact is a sips: URI
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            assert bcall.invite.top_via.transport == "TLS"
            assert str(bcall.invite.contact[0].uri).startswith("sips:")
            assert (await bcall.bye()).status_code == 200  # back to us over the same TLS connection
            await call.ended.wait()
    tls_stats = [t for t in hl.endpoint.statistics().transports if getattr(t, "transport", "") == "TLS"][0]
    assert tls_stats.connected == 1 and tls_stats.messages_received >= 3


async def _stream(phone, pcm, to) -> None:
    """Send ``pcm`` as 20 ms mu-law packets in real time without blocking the event loop."""
    for i in range(0, len(pcm), 160):
        phone.rtp.send(phone.rtp.packet(g711.ulaw_encode(pcm[i:i + 160])), to)
        await trio.sleep(0.02)


@trio_test
async def test_supervisor_listens_then_whispers_then_barges_on_one_call():
    with trio.fail_after(25):
        async with running_hotline() as hl, phones(hl, "alice", "bob", "sue") as (alice, bob, sue):
            register(hl, "2000", bob)
            register(hl, "8001", sue)
            call = alice.invite("sip:2000@127.0.0.1")
            assert (await call.tx).status_code == 200
            bcall = bob.calls[0]
            hcall = hl.manager.calls()[0]
            result = await hcall.monitor("8001", "listen")
            assert result.answered and hcall.monitored == "listen"
            scall = sue.calls[0]
            assert len(sue.calls) == 1 and scall.answered.is_set()

            async def talk(seconds: float = 0.8) -> None:
                for p in (alice, bob, sue):
                    p.rtp.clear()
                async with trio.open_nursery() as n:
                    n.start_soon(_stream, alice, tone(400, seconds), call.media_target)
                    n.start_soon(_stream, bob, tone(900, seconds), bcall.media_target)
                    n.start_soon(_stream, sue, tone(1500, seconds), scall.media_target)
                await trio.sleep(0.2)

            await talk()  # listen: sue hears both, nobody hears sue
            assert band_energy(sue.rtp.audio(), 400) > 0.2 and band_energy(sue.rtp.audio(), 900) > 0.2
            assert band_energy(bob.rtp.audio(), 1500) < 0.05 and band_energy(alice.rtp.audio(), 1500) < 0.05
            assert band_energy(bob.rtp.audio(), 400) > 0.2 and band_energy(alice.rtp.audio(), 900) > 0.2

            again = await hcall.monitor("8001", "whisper")  # the same session: no second call to sue
            assert again.answered and again.cause == "switched" and len(sue.calls) == 1
            await talk()
            assert band_energy(bob.rtp.audio(), 1500) > 0.2 and band_energy(alice.rtp.audio(), 1500) < 0.05

            await hcall.monitor("8001", "barge")
            await talk()
            assert band_energy(bob.rtp.audio(), 1500) > 0.2 and band_energy(alice.rtp.audio(), 1500) > 0.2

            await scall.bye()  # the supervisor leaves; the call goes on
            while hcall.monitored is not None:
                await trio.sleep(0.01)
            assert not hcall.ended
            await talk(0.4)
            assert band_energy(bob.rtp.audio(), 400) > 0.2
            await call.bye()
    names = hl.names()
    assert names.count("call.monitored") == 3 and "call.monitor_ended" in names
    assert [e.details["mode"] for e in hl.events if e.name == "call.monitored"] == ["listen", "whisper", "barge"]


@trio_test
async def test_monitoring_refuses_a_call_that_is_not_connected_and_a_bad_mode():
    with trio.fail_after(10):
        async with running_hotline() as hl, phones(hl, "alice", "sue") as (alice, sue), \
                phones(hl, "bob", answer=None) as (bob,):
            register(hl, "2000", bob)
            register(hl, "8001", sue)
            call = alice.invite("sip:2000@127.0.0.1")
            await bob.next_call()  # ringing, never answered
            (hcall,) = hl.manager.calls()
            result = await hcall.monitor("8001", "listen")
            assert not result.answered and result.cause == "not_connected" and hcall.monitored is None
            with pytest.raises(ValueError):
                await hcall.monitor("8001", "shout")
            assert not sue.calls  # the supervisor's phone never rang
            await hcall.hangup()
            await call.ended.wait()
