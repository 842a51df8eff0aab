"""The B2BUA with real SIPp 3.6.1 on loopback (RECIPES.md section 1).

* SIPp's embedded ``uac`` calls through Hotline to SIPp's embedded ``uas``;
* Hotline originates calls to a SIPp ``uas`` (both legs ours);
* SIPp's ``uac_pcap`` plays its shipped g711a.pcap and an RFC 2833 digit
  through the B2BUA to a SIPp UAS that echoes RTP; tshark on loopback checks
  our side's RTP (well formed, continuous sequence numbers, the captured
  payloads relayed byte for byte);
* an attended transfer: SIPp transferor (bench/sipp/uac_refer_replaces.xml)
  REFERs its first call to its consultation call (uac_wait_bye.xml) with
  Replaces; both far ends (SIPp UAS) end up talking to each other.

The stock uac/uas scenarios work through a B2BUA (we are a UA on both sides:
no Record-Route), so the record-route-aware variants are not needed here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
import trio
from b2bua_interop import (
    SIPP_PCAPS,
    SIPP_SCENARIOS,
    free_port,
    malformed,
    need,
    process,
    rtp_streams,
    run,
    trio_test,
    tshark,
)

from orchestrator.calls import DialPlan, ToUri
from tests.orchestrator.calls.b2bua_harness import running_hotline
from tests.pcap import udp_datagrams

pytestmark = [pytest.mark.peers, pytest.mark.slow]


def successful(screen: str) -> int:
    m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(m.group(1)) if m else -1


def failed(screen: str) -> int:
    m = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(m.group(1)) if m else -1


def uas_screen(log: Path) -> str:
    """The last screen SIPp printed (it prints its statistics on exit)."""
    return log.read_text(errors="replace")


@trio_test
async def test_sipp_uac_calls_through_hotline_to_sipp_uas(tmp_path):
    need("sipp")
    uas_port, uac_port = free_port(), free_port()
    plan = DialPlan(dids={"service": ToUri(f"sip:service@127.0.0.1:{uas_port}")})
    async with running_hotline(router=plan) as hl:
        log = tmp_path / "uas.log"
        async with process(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-bind_local",
                            "-nostdin", "-m", "20"], log=log) as uas:
            await trio.sleep(0.5)
            uac = await run(["sipp", "-sn", "uac", f"127.0.0.1:{hl.address.port}", "-i", "127.0.0.1", "-p",
                             str(uac_port), "-m", "20", "-r", "10", "-nostdin", "-timeout", "30s",
                             "-timeout_error"], seconds=60)
            with trio.fail_after(15):
                await uas.wait()  # -m 20: the UAS exits after its 20th call
        stats = hl.manager.statistics()
    screen = uac.stdout.decode(errors="replace")
    assert uac.returncode == 0, screen[-2000:]
    assert successful(screen) == 20 and failed(screen) == 0
    assert successful(uas_screen(log)) == 20
    assert stats.calls_answered == 20 and stats.active_calls == 0 and stats.engine_legs == 0
    assert hl.names().count("call.ended") == 20
    records = [e.record for e in hl.events if e.name == "call.ended"]
    assert {r.cause for r in records} == {"normal_clearing"} and {r.ended_by for r in records} == {"caller"}


@trio_test
async def test_hotline_originates_calls_to_sipp_uas(tmp_path):
    need("sipp")
    uas_port = free_port()
    async with running_hotline() as hl:
        log = tmp_path / "uas.log"
        async with process(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-bind_local",
                            "-nostdin", "-m", "4"], log=log) as uas:
            await trio.sleep(0.5)
            with trio.fail_after(20):
                calls = []
                for i in range(2):
                    calls.append(await hl.manager.originate(f"sip:agent{i}@127.0.0.1:{uas_port}",
                                                            f"sip:customer{i}@127.0.0.1:{uas_port}"))
                for call in calls:
                    await call.wait_connected()
                assert all(call.connected for call in calls)
                await trio.sleep(0.3)
                for call in calls:
                    await call.hangup()
                await uas.wait()
    assert successful(uas_screen(log)) == 4
    records = [e.record for e in hl.events if e.name == "call.ended"]
    assert len(records) == 2 and all(r.direction == "outbound" and r.answered_at for r in records)


@trio_test
async def test_sipp_uac_pcap_media_is_relayed_through_the_b2bua(tmp_path):
    need("sipp", "tshark")
    if not (SIPP_PCAPS / "g711a.pcap").exists():
        pytest.skip("SIPp's shipped pcaps are missing (/usr/share/sip-tester)")
    (tmp_path / "pcap").symlink_to(SIPP_PCAPS)
    uas_port, uac_port = free_port(), free_port()
    uas_media, uac_media = free_port(pair=True, span=4), free_port(pair=True, span=4)
    engine_lo = free_port(pair=True, span=20)
    plan = DialPlan(dids={"service": ToUri(f"sip:service@127.0.0.1:{uas_port}")})
    capture = tmp_path / "media.pcapng"
    ports = f"udp portrange {engine_lo}-{engine_lo + 19}"
    engine_ports = (engine_lo, engine_lo + 19)
    async with running_hotline(router=plan, engine_ports=engine_ports, engine_threads=2) as hl, \
            tshark(capture, ports):
        async with process(["sipp", "-sf", str(SIPP_SCENARIOS / "uas_pcma_echo.xml"), "-i", "127.0.0.1",
                            "-p", str(uas_port), "-mi", "127.0.0.1", "-mp", str(uas_media), "-rtp_echo",
                            "-bind_local", "-nostdin", "-m", "1"], log=tmp_path / "uas.log") as uas:
            await trio.sleep(0.5)
            uac = await run(["sipp", "-sn", "uac_pcap", f"127.0.0.1:{hl.address.port}", "-i", "127.0.0.1",
                             "-p", str(uac_port), "-mi", "127.0.0.1", "-mp", str(uac_media), "-m", "1",
                             "-nostdin", "-timeout", "40s", "-timeout_error"], cwd=tmp_path, seconds=60)
            with trio.fail_after(15):
                await uas.wait()
        record = [e.record for e in hl.events if e.name == "call.ended"][0]
    assert uac.returncode == 0, uac.stdout.decode(errors="replace")[-2000:]
    assert [leg.codec for leg in record.legs] == ["PCMA", "PCMA"]  # same codec: relayed, not transcoded

    span = f"{engine_lo}-{engine_lo + 19}"
    assert malformed(capture, span) == ""
    streams = rtp_streams(capture, span)
    ours = [s for s in streams if engine_lo <= s.src[1] < engine_lo + 20]
    to_uas = [s for s in ours if s.dst[1] == uas_media]
    to_uac = [s for s in ours if s.dst[1] == uac_media]
    assert len(to_uas) == 1 and len(to_uac) == 1, streams
    # g711a.pcap has 236 PCMA packets and dtmf_2833_1.pcap 10 telephone-event packets whose final one
    # is sent three times with one sequence number (RFC 4733 2.5.1.4): tshark counts that as -2 lost,
    # exactly as for SIPp talking to SIPp (RECIPES.md 1.4). Nothing else is lost either way.
    assert to_uas[0].packets == 246 and to_uas[0].lost == -2, to_uas
    assert to_uac[0].packets >= 236 and to_uac[0].lost <= 0, to_uac  # the echo, relayed back

    relayed = [p.payload for p in udp_datagrams(capture) if p.dst[1] == uas_media]
    source = [p.payload for p in udp_datagrams(SIPP_PCAPS / "g711a.pcap") if len(p.payload) > 12]
    source += [p.payload for p in udp_datagrams(SIPP_PCAPS / "dtmf_2833_1.pcap")]
    assert [p[12:] for p in relayed] == [p[12:] for p in source]  # the captured audio, byte for byte
    assert len({p[8:12] for p in relayed}) == 1  # one SSRC of ours across the audio and the digit


@trio_test
async def test_attended_transfer_with_sipp_refer_replaces(tmp_path):
    need("sipp")
    uas_port, x1_port, x2_port = free_port(), free_port(), free_port()
    target = f"sip:service@127.0.0.1:{uas_port}"
    plan = DialPlan(dids={"yves": ToUri(target), "zed": ToUri(target)})
    async with running_hotline(router=plan) as hl:
        async with process(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-bind_local",
                            "-nostdin", "-m", "2"], log=tmp_path / "uas.log") as uas:
            await trio.sleep(0.5)
            hotline = f"127.0.0.1:{hl.address.port}"
            x2_cmd = ["sipp", "-sf", str(SIPP_SCENARIOS / "uac_wait_bye.xml"), hotline, "-s", "zed", "-i",
                      "127.0.0.1", "-p", str(x2_port), "-m", "1", "-nostdin", "-timeout", "30s",
                      "-timeout_error"]
            async with process(x2_cmd, log=tmp_path / "x2.log") as x2:
                with trio.fail_after(10):
                    while not any(c.connected for c in hl.manager.calls()):
                        await trio.sleep(0.05)
                consultation = hl.manager.calls()[0]
                leg = consultation.a.dialog  # the transferor's consultation dialog, as Hotline sees it
                x1 = await run(["sipp", "-sf", str(SIPP_SCENARIOS / "uac_refer_replaces.xml"), hotline,
                                "-s", "yves", "-i", "127.0.0.1", "-p", str(x1_port), "-m", "1", "-nostdin",
                                "-key", "rtarget", "zed", "-key", "rcallid", quote(leg.call_id, safe=""),
                                "-key", "rtotag", leg.local_tag, "-key", "rfromtag", leg.remote_tag,
                                "-timeout", "30s", "-timeout_error"], seconds=45)
                (tmp_path / "x1.log").write_bytes(x1.stdout)
                with trio.fail_after(15):
                    await x2.wait()
            transferred = hl.event("call.transferred")
            remaining = hl.manager.calls()
            assert len(remaining) == 1 and remaining[0].connected
            assert {remaining[0].a.peer, remaining[0].b.peer} == {target}  # both SIPp UAS legs, bridged
            await remaining[0].hangup()
            with trio.fail_after(15):
                await uas.wait()
    assert x1.returncode == 0, x1.stdout.decode(errors="replace")[-3000:]
    assert x2.returncode == 0
    assert transferred.details["mode"] == "attended"
    assert successful(uas_screen(tmp_path / "uas.log")) == 2
