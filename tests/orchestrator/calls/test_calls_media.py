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
