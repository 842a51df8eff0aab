"""A 60-second call between two real baresip phones, bridged through Hotline
and recorded by the engine (issue "Media core II", acceptance).

alice plays a 440 Hz tone and bob a 1000 Hz tone (each from its own WAV, so
the channels can be told apart). The caller's leg is recorded in stereo:
left is what alice says, right is what alice hears (bob). sox must read the
file, its duration must match the recording window within 100 ms, and the
far end's audio must be on the right channel only.
"""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest
import trio
from b2bua_interop import Baresip, need, rendered_peers, trio_test

from orchestrator.calls import DialPlan, ToUri
from tests.orchestrator.calls.b2bua_harness import running_hotline
from tests.rtppeer import band_energy

pytestmark = [pytest.mark.peers, pytest.mark.slow]

SECONDS = 60.0


def tone_wav(path, freq: int, seconds: int) -> str:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path), "synth",
                    str(seconds), "sine", str(freq), "vol", "0.4"], check=True, capture_output=True)
    return str(path)


def phone_playing(peers, tmp_path, name: str, source: str) -> Baresip:
    phone = Baresip(peers, tmp_path, name)
    # Regenerate its config with our source WAV (same ports).
    subprocess.run(["sh", str(peers / "baresip" / "mkcfg.sh"), str(phone.dir), name, str(phone.sip_port),
                    str(phone.ctrl_port), str(phone.rtp_min), str(phone.rtp_min + 19), source],
                   check=True, capture_output=True)
    return phone


@trio_test
async def test_sixty_second_bridged_call_between_baresips_is_recorded_in_stereo(tmp_path):
    need("baresip", "sox", "soxi")
    peers = rendered_peers(tmp_path)
    alice = phone_playing(peers, tmp_path, "alice", tone_wav(tmp_path / "a440.wav", 440, 90))
    bob = phone_playing(peers, tmp_path, "bob", tone_wav(tmp_path / "b1000.wav", 1000, 90))
    path = tmp_path / "call.wav"
    async with running_hotline(router=DialPlan(dids={"2000": ToUri(bob.uri)})) as hl, \
            alice.running(), bob.running():
        await alice.command("dial", f"sip:2000@127.0.0.1:{hl.address.port}")
        with trio.fail_after(20):
            await alice.wait_event("CALL_ESTABLISHED")
            await bob.wait_event("CALL_ESTABLISHED")
            while not hl.manager.calls() or not hl.manager.calls()[0].connected:
                await trio.sleep(0.05)
        call = hl.manager.calls()[0]
        await trio.sleep(1.0)  # both streams are flowing
        recorder = hl.engine.record(call.a.media.id, path, stereo=True)
        started = trio.current_time()
        await trio.sleep_until(started + SECONDS)
        hl.engine.stop_recording(recorder)
        window = trio.current_time() - started
        await alice.command("hangup")
        with trio.fail_after(10):
            await bob.wait_event("CALL_CLOSED")
    # The writer thread finalizes the header within a flush period of the stop
    # (and the hang-up took longer than that); wait for a readable header anyway.
    with trio.fail_after(10):
        while True:
            try:
                with wave.open(str(path)) as w:
                    if w.getnframes() > 0:
                        break
            except (wave.Error, EOFError):
                pass
            await trio.sleep(0.1)

    info = subprocess.run(["soxi", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Channels       : 2" in info and "Sample Rate    : 8000" in info, info
    soxi_seconds = float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True,
                                        check=True).stdout)
    assert abs(soxi_seconds - window) < 0.1, (soxi_seconds, window)
    # sox decodes it too (not only parses the header).
    subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, check=True)

    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    left, right = pcm[8000:, 0], pcm[8000:, 1]  # skip the first second (jitter buffer fill)
    assert band_energy(left, 440) > 0.9 and band_energy(left, 1000) < 0.01
    assert band_energy(right, 1000) > 0.9 and band_energy(right, 440) < 0.01
    # The far end is there all along, not only at the start.
    seconds = right[: len(right) // 8000 * 8000].reshape(-1, 8000)
    assert (np.abs(seconds).max(axis=1) > 3000).mean() > 0.95
