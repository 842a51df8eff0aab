"""A running RecordingService over a real media engine, two loopback RTP peers bridged, and a real event log.

The call object is the small part of :class:`orchestrator.calls.Call` the
service reads (``id``, ``a``/``b`` legs with ``media.id`` and ``peer``,
``route``, ``identity``, ``ended``); the end-to-end test uses the real B2BUA.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import trio

from mediacore.engine import Engine
from orchestrator.recording import RecordingConfig, RecordingService
from orchestrator.store import EventLog
from tests.rtppeer import RtpPeer


@dataclass
class Calls:
    calls: dict[str, Any] = field(default_factory=dict)

    def get(self, call_id: str) -> Any:
        return self.calls.get(call_id)


@dataclass
class Rig:
    engine: Engine
    service: RecordingService
    log: EventLog
    calls: Calls
    caller: RtpPeer
    agent: RtpPeer
    published: list[dict]
    nursery: trio.Nursery
    legs: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def new_call(self, call_id: str, *, route: str = "", trunk: str | None = None) -> Any:
        a = self.engine.create_leg(codec="PCMU", remote=self.caller.address, affinity=1)
        b = self.engine.create_leg(codec="PCMU", remote=self.agent.address, affinity=1)
        self.engine.bridge(a.id, b.id)
        identity = SimpleNamespace(kind="trunk", name=trunk) if trunk else None
        call = SimpleNamespace(id=call_id, a=SimpleNamespace(media=SimpleNamespace(id=a.id), peer="sip:alice@x"),
                               b=SimpleNamespace(media=SimpleNamespace(id=b.id), peer="sip:9001@hotline"),
                               route=route, identity=identity, ended=False, data={})
        self.calls.calls[call_id] = call
        self.legs[call_id] = (a, b)
        return call

    def hang_up(self, call_id: str) -> None:
        """What the B2BUA does at the end of a call: its engine legs go (the leg's recorder stops)."""
        call = self.calls.calls.pop(call_id)
        call.ended = True
        for leg in self.legs.pop(call_id):
            self.engine.destroy_leg(leg.id)

    async def say(self, call_id: str, who: str, pcm: np.ndarray) -> None:
        """Stream PCM (real time, 20 ms G.711 packets) from the caller or the agent into the call."""
        a, b = self.legs[call_id]
        peer, leg = (self.caller, a) if who == "caller" else (self.agent, b)
        t = threading.Thread(target=peer.stream_pcm, args=(pcm, (leg.host, leg.rtp_port)))
        t.start()
        await trio.to_thread.run_sync(t.join)

    def events(self, call: str | None = None) -> list:
        self.log.flush_sync()
        return self.log.read_sync(types="recording.*", call=call)


@contextlib.asynccontextmanager
async def running_service(tmp_path: Path, config: RecordingConfig, **kw: Any) -> AsyncIterator[Rig]:
    base = random.randrange(42000, 49000, 100)
    engine = Engine(port_range=(base, base + 99), threads=1, stats_interval=0)
    log = await trio.to_thread.run_sync(lambda: EventLog(f"sqlite:///{tmp_path}/hotline.db", node="n1"))
    published: list[dict] = []
    calls = Calls()
    try:
        with RtpPeer() as caller, RtpPeer() as agent:
            service = RecordingService(config, engine=engine, calls=calls, log=log, publish=published.append,
                                       node="n1", **kw)
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)

                async def pump() -> None:
                    async for event in engine.events():
                        service.handle_engine_event(event)

                nursery.start_soon(pump)
                yield Rig(engine, service, log, calls, caller, agent, published, nursery)
                nursery.cancel_scope.cancel()
    finally:
        engine.close()
        await log.aclose()
