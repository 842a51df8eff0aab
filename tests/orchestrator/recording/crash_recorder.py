"""A process that records a call with the real engine until it is killed (crash recovery tests).

    python crash_recorder.py DIR DB_URL KEY_FILE PORT_BASE

Starts an engine, bridges two legs, streams a tone from a loopback RTP peer
into the caller's leg, appends the call's events to the event log, starts
a recording through the RecordingService, prints ``RECORDING <id>`` once
audio is flowing, and keeps going until SIGKILLed.
"""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace

import trio

from mediacore.engine import Engine
from orchestrator.recording import RecordingConfig, RecordingService
from orchestrator.store import EventLog
from tests.rtppeer import RtpPeer, tone


async def main(root: str, url: str, key_file: str, base: int) -> None:
    config = RecordingConfig.from_mapping({"dir": root, "key_file": key_file})
    log = EventLog(url, node="crashy")
    engine = Engine(port_range=(base, base + 19), threads=1, stats_interval=0)
    caller = RtpPeer()
    agent = RtpPeer()
    a = engine.create_leg(codec="PCMU", remote=caller.address)
    b = engine.create_leg(codec="PCMU", remote=agent.address)
    engine.bridge(a.id, b.id)
    call = SimpleNamespace(id="crashy-1", a=SimpleNamespace(media=SimpleNamespace(id=a.id), peer="sip:alice@x"),
                           b=SimpleNamespace(media=SimpleNamespace(id=b.id), peer="sip:9001@h"), route="queue:support",
                           identity=None, ended=False, data={})
    await log.append({"type": "call.incoming", "call": call.id, "caller": "sip:alice@x", "callee": "2000"})
    await log.append({"type": "call.answered", "call": call.id, "agent": "9001", "queue": "support"})
    service = RecordingService(config, engine=engine, calls={call.id: call}, log=log, node="crashy")
    stop = threading.Event()

    def talk() -> None:
        pcm = tone(440, 1.0)
        while not stop.is_set():
            caller.stream_pcm(pcm, (a.host, a.rtp_port))

    threading.Thread(target=talk, daemon=True).start()
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        info = await service.start(call.id, by="policy")
        await trio.sleep(1.5)  # the engine's writer drains every 200 ms: well over a second is on disk
        print("RECORDING", info["recording"], flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
