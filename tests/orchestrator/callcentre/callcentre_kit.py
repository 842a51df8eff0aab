"""Test kit for the call centre: a running Hotline (real engine, real SIP on loopback) with the
CallCentre's handlers and event bridges plugged in, an SQLite event log, a bus that keeps what
it publishes, scripted phones from the B2BUA's harness, real prompts and real RFC 4733 digits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from mediacore.dtmf import TelephoneEventSender
from mediacore.engine import Engine
from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.callcentre import CallCentre, QueuePrompts
from orchestrator.calls import (
    CallManager,
    CallManagerConfig,
    Contact,
    DialPlan,
    InMemoryLocator,
    OpenAuthenticator,
)
from orchestrator.ivr import FlowRegistry
from orchestrator.sip import TimerConfig, parse_uri
from orchestrator.store import EventLog
from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport
from tests.orchestrator.calls.b2bua_harness import PhoneCall, engine_port_range, phones, trio_test  # noqa: F401

__all__ = ["Bus", "Centre", "make_prompt", "running_centre", "send_rfc4733", "tone_wav", "trio_test"]


def tone_wav(path: Path, freq: float, seconds: float, *, volume: float = 0.5) -> Path:
    """A sine tone WAV (8 kHz mono 16-bit) made by sox."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds), "sine",
                    str(freq), "vol", str(volume)], check=True, capture_output=True)
    return path


def make_prompt(path: Path, text: str) -> Path:
    """Real speech (espeak-ng + sox, the project's tools/prompts.py)."""
    from tools.prompts import make_speech

    return make_speech(text, path, rate=8000)


class Bus:
    """A JSON-RPC event bus stand-in: keeps every published event (as the hub would send it)."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def publish(self, event: Any) -> int:
        payload = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        json.dumps(payload)  # what the hub sends must be JSON
        self.events.append(payload)
        return 1

    def of(self, kind: str, **match: Any) -> list[dict]:
        return [e for e in self.events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]

    async def wait(self, kind: str, count: int = 1, **match: Any) -> dict:
        while len(self.of(kind, **match)) < count:
            await trio.sleep(0.01)
        return self.of(kind, **match)[count - 1]


@dataclass
class Centre:
    engine: Engine
    endpoint: SipEndpoint
    manager: CallManager
    locator: InMemoryLocator
    centre: CallCentre
    log: EventLog
    bus: Bus
    registry: FlowRegistry
    tmp: Path
    agents: dict[str, str] = field(default_factory=dict)

    @property
    def address(self):
        return self.endpoint.local_address("UDP")

    @property
    def acd(self):
        return self.centre.acd

    def register(self, device: str, phone, *, notify: bool = True) -> None:
        """``phone`` becomes ``device``'s registered contact (and the ACD hears of it)."""
        self.locator.add(Contact(aor=f"sip:{device}@hotline", uri=parse_uri(phone.uri)))
        if notify:
            self.acd.device_registered(device)

    def unregister(self, device: str) -> None:
        self.locator.remove(f"sip:{device}@hotline")
        self.acd.device_unregistered(device)

    def agent_up(self, agent: str, device: str, phone) -> None:
        self.register(device, phone)
        self.acd.login(agent, device)

    def calls(self):
        return self.manager.calls()

    async def bridged(self, count: int = 1) -> None:
        """Until ``count`` calls are bridged to an agent (the ACD's answer comes just before)."""
        while sum(1 for call in self.manager.calls() if call.b is not None and call.room is not None) < count:
            await trio.sleep(0.01)

    async def record(self, call: str, *, open_ok: bool = False):
        """The call's record, once the log has it (and it is closed unless ``open_ok``)."""
        while True:
            await trio.sleep(0.02)
            self.log.flush_sync()
            rec = self.log.call_record_sync(call)
            if rec is not None and (open_ok or not rec.open):
                return rec

    def logged(self, call: str | None = None, types: str | list[str] | None = None) -> list:
        self.log.flush_sync()
        return [e for e in self.log.read_sync(types=types, call=call)]


async def send_rfc4733(phone, pcall: PhoneCall, digits: str, *, duration_ms: int = 120,
                       gap_ms: int = 120) -> None:
    """Send ``digits`` as RFC 4733 telephone-events (the payload type the far end's SDP gives),
    with silent PCMU packets between them, paced in real time."""
    host, port = pcall.media_target
    media = pcall.remote_sdp.media[0]
    pt = next(p for p, m in media.rtpmaps().items() if m.encoding.lower() == "telephone-event")
    rtp = phone.rtp
    for digit in digits:
        sender = TelephoneEventSender(pt, 8000)
        sender.send(digit, duration_ms=duration_ms)
        ts = rtp.ts
        while not sender.idle:
            pkt = sender.tick(ts)
            if pkt is not None:
                rtp.send(rtp.packet(pkt.payload, payload_type=pt, marker=pkt.marker, ts=pkt.timestamp), (host, port))
            ts = (ts + 160) & 0xFFFFFFFF
            await trio.sleep(0.02)
        rtp.ts = ts
        for _ in range(max(1, gap_ms // 20)):
            rtp.send(rtp.packet(b"\xff" * 160), (host, port))
            await trio.sleep(0.02)


def default_acd(queues: list[QueueConfig] | None = None, agents: list[AgentConfig] | None = None) -> Acd:
    return Acd(queues or [QueueConfig(name="support", ring_timeout=4, rona_break=True)],
               agents or [AgentConfig(id="a1", queues={"support": 0}), AgentConfig(id="a2", queues={"support": 0})])


@contextlib.asynccontextmanager
async def running_centre(tmp: Path, *, acd: Acd | None = None, registry: FlowRegistry | None = None,
                         dids: dict | None = None, prompts: QueuePrompts | None = None,
                         surveys: dict | None = None, crm=None, config: CallManagerConfig | None = None,
                         adjust: Callable[[CallCentre], None] | None = None) -> AsyncIterator[Centre]:
    lo, hi = engine_port_range(400)
    engine = Engine(port_range=(lo, hi), threads=1, stats_interval=0)
    endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)],
                           config=EndpointConfig(rate_limit=None, timers=TimerConfig(t1=0.1, t2=0.4)))
    locator = InMemoryLocator()
    tmp.mkdir(parents=True, exist_ok=True)
    log = EventLog(f"sqlite:///{tmp}/hotline.db", node="test")
    bus = Bus()
    registry = registry or FlowRegistry()
    centre = CallCentre(acd=acd or default_acd(), registry=registry, log=log, bus=bus, prompts=prompts,
                        surveys=surveys, crm=crm, recordings=tmp / "recordings", barge_in_grace=0.5)
    if adjust is not None:
        adjust(centre)
    cfg = config or CallManagerConfig(ring_timeout=10, max_loop_lag=None, max_queue_delay=None)
    manager = CallManager(endpoint, engine, router=DialPlan(dids=dids or {}), locator=locator,
                          authenticator=OpenAuthenticator(), handlers=centre.handlers, events=centre.call_events,
                          config=cfg)
    centre.bind(manager)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(endpoint.run)
            await nursery.start(manager.run)
            await nursery.start(centre.run)
            yield Centre(engine, endpoint, manager, locator, centre, log, bus, registry, tmp)
            nursery.cancel_scope.cancel()
    finally:
        engine.close()
        log.close()


async def send_audio(phone, pcall: PhoneCall, pcm) -> None:
    """Send 8 kHz PCM as PCMU packets to the far end, paced in real time."""
    from mediacore import g711

    to = pcall.media_target
    for i in range(0, len(pcm) - 159, 160):
        phone.rtp.send(phone.rtp.packet(g711.ulaw_encode(pcm[i:i + 160]), marker=i == 0), to)
        await trio.sleep(0.02)


SURVEY_FLOW = """\
start: ask
languages: [en]
nodes:
  ask:
    type: survey
    prompts: [survey_question]
    variable: survey_score
    timeout: 4
    max_retries: 1
    next: thanks
    on_failure: end
  thanks:
    type: play
    prompts: [survey_thanks]
    barge_in: false
    next: end
  end:
    type: hangup
    reason: survey done
"""


def write_flow(directory: Path, name: str, text: str, prompts: dict[str, tuple[float, float]],
               languages: tuple[str, ...] = ("en",)) -> Path:
    """A flow file and its prompts (tones: name -> (Hz, seconds)) under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for lang in languages:
        for prompt, (freq, seconds) in prompts.items():
            path = directory / "prompts" / lang / f"{prompt}.wav"
            if not path.exists():
                tone_wav(path, freq, seconds)
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path
