"""The B2BUA with real softphones on loopback: baresip 1.0.0 and linphonec 5.1
(RECIPES.md sections 2 and 3), headless, playing a speech WAV.

The called phones are reached by their direct contact URI (the dial plan maps
a DID to it): registration with digest auth through the registrar is covered
by tests/orchestrator/interop/test_register_softphones.py and, for the B2BUA's
side of it, tests/orchestrator/calls/test_calls_units.py. tshark on loopback
counts the RTP of each of the four streams (phone -> engine, engine -> phone,
both phones): audio flows both ways through the media engine.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import trio
from b2bua_interop import Baresip, Linphone, need, rendered_peers, rtp_streams, trio_test, tshark

from mediacore import g711
from orchestrator.calls import CallManagerConfig, DialPlan, ToUri
from tests.orchestrator.calls.b2bua_harness import running_hotline
from tests.pcap import udp_datagrams
from tests.rtppeer import band_energy

pytestmark = [pytest.mark.peers, pytest.mark.slow]


def phone_ports(*phones) -> str:
    return " or ".join(f"udp portrange {p.rtp_min}-{p.rtp_min + 19}" for p in phones)


def streams_between(capture, phone, engine_ports: range):
    """(packets phone -> engine, packets engine -> phone) from tshark's RTP stream table."""
    span = f"{min(phone.rtp_min, engine_ports.start)}-{max(phone.rtp_min + 19, engine_ports.stop)}"
    streams = rtp_streams(capture, span)
    mine = range(phone.rtp_min, phone.rtp_min + 20)
    up = sum(s.packets for s in streams if s.src[1] in mine and s.dst[1] in engine_ports)
    down = sum(s.packets for s in streams if s.dst[1] in mine and s.src[1] in engine_ports)
    return up, down


async def established(*phones) -> None:
    with trio.fail_after(15):
        for phone in phones:
            await phone.wait_event("CALL_ESTABLISHED")


@pytest.fixture(scope="module")
def moh(tmp_path_factory):
    path = tmp_path_factory.mktemp("moh") / "moh.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", "30", "sine", "600",
                    "vol", "0.5"], check=True, capture_output=True)
    return str(path)


@trio_test
async def test_baresip_calls_baresip_through_hotline_with_audio_both_ways(tmp_path):
    need("baresip", "tshark")
    peers = rendered_peers(tmp_path)
    alice, bob = Baresip(peers, tmp_path, "alice"), Baresip(peers, tmp_path, "bob")
    plan = DialPlan(dids={"2000": ToUri(bob.uri)})
    capture = tmp_path / "rtp.pcapng"
    async with running_hotline(router=plan) as hl, alice.running(), bob.running(), \
            tshark(capture, phone_ports(alice, bob)):
        await alice.command("dial", f"sip:2000@127.0.0.1:{hl.address.port}")
        await established(alice, bob)
        await trio.sleep(3)
        await alice.command("hangup")
        with trio.fail_after(10):
            await bob.wait_event("CALL_CLOSED")
        engine = hl.engine_port_range
    for phone in (alice, bob):
        up, down = streams_between(capture, phone, engine)
        assert up >= 100 and down >= 100, (phone.name, up, down)  # 3 s of 20 ms packets, each way
    record = hl.event("call.ended").record
    assert record.ended_by == "caller" and [leg.codec for leg in record.legs] == ["PCMU", "PCMU"]


@trio_test
async def test_linphone_answers_a_call_bridged_through_hotline_with_audio_both_ways(tmp_path):
    need("baresip", "linphonec", "tshark")
    peers = rendered_peers(tmp_path)
    alice, carol = Baresip(peers, tmp_path, "alice"), Linphone(peers, tmp_path, "carol")
    plan = DialPlan(dids={"3000": ToUri(carol.uri)})
    capture = tmp_path / "rtp.pcapng"
    async with running_hotline(router=plan) as hl, carol.running(), alice.running(), \
            tshark(capture, phone_ports(alice, carol)):
        await alice.command("dial", f"sip:3000@127.0.0.1:{hl.address.port}")
        await established(alice)
        await trio.sleep(3)
        await alice.command("hangup")
        with trio.fail_after(10):
            await hl.wait_event("call.ended")
        engine = hl.engine_port_range
    for phone in (alice, carol):
        up, down = streams_between(capture, phone, engine)
        assert up >= 100 and down >= 100, (phone.name, up, down)
    record = hl.event("call.ended").record
    assert record.legs[1].peer == carol.uri and record.legs[1].answered


@trio_test
async def test_baresip_hold_plays_music_on_hold_to_the_other_party_then_resumes(tmp_path, moh):
    need("baresip", "tshark")
    peers = rendered_peers(tmp_path)
    alice, bob = Baresip(peers, tmp_path, "alice"), Baresip(peers, tmp_path, "bob")
    plan = DialPlan(dids={"2000": ToUri(bob.uri)})
    capture = tmp_path / "rtp.pcapng"
    config = CallManagerConfig(music_on_hold=moh)
    async with running_hotline(router=plan, config=config) as hl, alice.running(), bob.running(), \
            tshark(capture, phone_ports(bob)):
        await alice.command("dial", f"sip:2000@127.0.0.1:{hl.address.port}")
        await established(alice, bob)
        await trio.sleep(1)
        await alice.command("hold")
        with trio.fail_after(10):
            held = await hl.wait_event("call.held")
        held_at = trio.current_time()
        await trio.sleep(2)
        await alice.command("resume")
        with trio.fail_after(10):
            await hl.wait_event("call.resumed")
        await trio.sleep(1.5)
        await alice.command("hangup")
        with trio.fail_after(10):
            await bob.wait_event("CALL_CLOSED")
        resumed_after = trio.current_time() - held_at
    assert held.details["by"] == "caller"
    to_bob = [d for d in udp_datagrams(capture) if bob.rtp_min <= d.dst[1] < bob.rtp_min + 20
              and len(d.payload) == 172 and d.payload[1] & 0x7F == 0]
    audio = [g711.ulaw_decode(d.payload[12:]) for d in to_bob]
    windows = [band_energy(np.concatenate(audio[i:i + 25]), 600) for i in range(0, len(audio) - 25, 25)]
    music = [i for i, e in enumerate(windows) if e > 0.9]
    assert len(music) >= 3  # bob hears the engine's music on hold (0.5 s windows of a 600 Hz tone)...
    assert max(windows[:music[0]]) < 0.5  # ...not before the hold (speech: well below a pure tone)...
    assert max(windows[music[-1] + 2:]) < 0.5  # ...and alice's speech again after she resumes
    times = np.array([d.time - to_bob[0].time for d in to_bob])
    assert times[-1] > 3 and resumed_after >= 2


@trio_test
async def test_baresip_blind_transfer_with_refer(tmp_path):
    need("baresip")
    peers = rendered_peers(tmp_path)
    alice, bob, dave = (Baresip(peers, tmp_path, n) for n in ("alice", "bob", "dave"))
    plan = DialPlan(dids={"2000": ToUri(bob.uri), "3000": ToUri(dave.uri)})
    capture = tmp_path / "rtp.pcapng"
    async with running_hotline(router=plan) as hl, alice.running(), bob.running(), dave.running(), \
            tshark(capture, phone_ports(alice, dave)):
        await alice.command("dial", f"sip:2000@127.0.0.1:{hl.address.port}")
        await established(alice, bob)
        await trio.sleep(0.5)
        await bob.command("transfer", f"sip:3000@127.0.0.1:{hl.address.port}")
        with trio.fail_after(15):
            await dave.wait_event("CALL_ESTABLISHED")
            transferred = await hl.wait_event("call.transferred")
            await bob.wait_event("CALL_CLOSED")  # the referrer was released
        await trio.sleep(2)
        assert not any(e.get("type") == "CALL_CLOSED" for e in alice.events)  # alice stayed in the call
        await alice.command("hangup")
        with trio.fail_after(10):
            await dave.wait_event("CALL_CLOSED")
            ended = await hl.wait_event("call.ended")
        engine = hl.engine_port_range
    assert transferred.details["mode"] == "blind"
    assert ended.record.transferred and {leg.peer for leg in ended.record.legs} >= {dave.uri}
    up, down = streams_between(capture, dave, engine)
    assert up >= 50 and down >= 50  # alice and dave talk through the engine after the transfer
