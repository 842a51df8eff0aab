"""Acceptance: a SIPp caller goes through an IVR menu into a queue answered by a real baresip agent.

Everything is real and on 127.0.0.1 (ports chosen at run time):

* the caller is SIPp 3.6.1 running bench/sipp/ivr_dtmf_caller.xml: it presses 2 at the menu with
  SIPp's shipped RFC 2833 capture (``dtmf_2833_2.pcap``, payload type 101), then enters the
  account number 5, 7 by SIP INFO (application/dtmf-relay) and 9 by RFC 2833 again;
* the agent is baresip 1.0.0, headless, registering as ``9001`` with digest authentication
  (MD5: what baresip 1.0 can do) through the project's registrar on Hotline's own SIP port,
  and answering automatically (RECIPES.md sections 1.5 and 2);
* Hotline: the B2BUA, the media engine, the registrar, the CallCentre (IVR runner, ACD
  service) and an SQLite event log.

The test checks the path the call took through the flow (the ``call.ivr`` events), the digits
each node collected, that baresip was offered and answered the call, and the call record the
store folded from the log: the queue, the agent, the IVR data, the times and the outcome.
Processes are started by us and killed by their PID; every wait is bounded.
"""

from __future__ import annotations

import os
import re

import pytest
import trio
from b2bua_interop import SIPP_PCAPS, SIPP_SCENARIOS, Baresip, free_port, need, rendered_peers, run, trio_test

from mediacore.engine import Engine
from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.callcentre import CallCentre
from orchestrator.calls import (
    CallManager,
    CallManagerConfig,
    DialPlan,
    OpenAuthenticator,
    RegistrarLocator,
    ToIvr,
)
from orchestrator.ivr import FlowRegistry
from orchestrator.registrar import (
    Account,
    DigestAuth,
    DigestConfig,
    Directory,
    Registrar,
    RegistrarConfig,
    RegistrarService,
)
from orchestrator.sip import TimerConfig
from orchestrator.store import EventLog
from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport

pytestmark = [pytest.mark.peers, pytest.mark.slow]

REALM = "hotline.test"
PASSWORD = "agent-secret"

FLOW = """\
description: the acceptance menu
start: welcome
nodes:
  welcome: {type: play, prompts: [welcome], next: menu}
  menu:
    type: menu
    prompts: [main_menu]
    choices: {"1": goodbye, "2": account}
    timeout: 6
    max_retries: 1
    variable: choice
    on_failure: goodbye
  account:
    type: collect
    prompts: [enter_account]
    variable: account_number
    min_digits: 3
    max_digits: 3
    inter_digit_timeout: 4
    timeout: 6
    next: support
    on_failure: goodbye
  support: {type: queue, queue: support, skills: [support], max_wait: 30, on_timeout: goodbye}
  goodbye: {type: play, prompts: [goodbye], barge_in: false, next: end}
  end: {type: hangup, reason: done}
"""

PROMPTS = {"welcome": "Welcome to Hotline.",
           "main_menu": "For sales press one. For support press two.",
           "enter_account": "Please enter your three digit account number.",
           "goodbye": "Goodbye."}


def successful(screen: str) -> int:
    m = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return int(m.group(1)) if m else -1


@trio_test
async def test_sipp_caller_through_the_ivr_menu_into_a_queue_answered_by_baresip(tmp_path):
    need("sipp", "baresip", "espeak-ng", "sox")
    if not (SIPP_PCAPS / "dtmf_2833_2.pcap").exists():
        pytest.skip("SIPp's shipped DTMF captures are missing (/usr/share/sip-tester)")
    from tools.prompts import make_speech

    peers = rendered_peers(tmp_path)
    (tmp_path / "pcap").symlink_to(SIPP_PCAPS)
    flows = tmp_path / "flows"
    (flows / "prompts" / "en").mkdir(parents=True)
    (flows / "main.yaml").write_text(FLOW)
    for name, text in PROMPTS.items():
        make_speech(text, flows / "prompts" / "en" / f"{name}.wav", rate=8000)
    registry = FlowRegistry()
    assert registry.reload(flows).ok

    # Hotline: one UDP endpoint for the registrar and the B2BUA, engine on its own port block.
    engine_lo = free_port(pair=True, span=40)
    engine = Engine(port_range=(engine_lo, engine_lo + 39), threads=1, stats_interval=0)
    endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)],
                           config=EndpointConfig(rate_limit=None, timers=TimerConfig(t1=0.1, t2=0.4)))
    auth = DigestAuth(Directory([Account.from_password("9001", REALM, PASSWORD)]),
                      DigestConfig(realm=REALM, secret=os.urandom(32)))
    registrar = Registrar(RegistrarConfig(domains=frozenset({"127.0.0.1", REALM}), min_expires=10,
                                          max_expires=60, default_expires=60), auth)
    log = EventLog(f"sqlite:///{tmp_path}/hotline.db", node="acceptance")
    acd = Acd([QueueConfig(name="support", ring_timeout=10, skills={"support": 1})],
              [AgentConfig(id="9001", skills={"support": 3}, queues={"support": 0}, devices=("9001",))])
    centre = CallCentre(acd=acd, registry=registry, log=log, recordings=tmp_path / "rec")
    service = RegistrarService(registrar, sink=centre.registrations)
    manager = CallManager(endpoint, engine, router=DialPlan(dids={"1000": ToIvr("main")}),
                          locator=RegistrarLocator(service), authenticator=OpenAuthenticator(),
                          handlers=centre.handlers, events=centre.call_events,
                          config=CallManagerConfig(domain="127.0.0.1", ring_timeout=15, max_loop_lag=None,
                                                   max_queue_delay=None))
    centre.bind(manager)
    endpoint.handler = service.handler(manager.handle)

    agent = Baresip(peers, tmp_path, "9001")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(endpoint.run)
            await nursery.start(service.run)
            await nursery.start(manager.run)
            await nursery.start(centre.run)
            port = endpoint.local_address("UDP").port
            (agent.dir / "accounts").write_text(
                f"<sip:9001@127.0.0.1:{port}>;auth_user=9001;auth_pass={PASSWORD};regint=60;"
                "answermode=auto;audio_codecs=pcmu\n")
            centre.acd.login("9001", "9001")
            async with agent.running():
                with trio.fail_after(20):  # baresip registers (digest, MD5) and the agent becomes available
                    while centre.acd.get_agent("9001")["state"] != "available":
                        await trio.sleep(0.05)
                sipp_port = free_port()
                media = free_port(pair=True, span=4)
                sipp = await run(["sipp", "-sf", str(SIPP_SCENARIOS / "ivr_dtmf_caller.xml"), "-s", "1000",
                                  f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p", str(sipp_port), "-mi",
                                  "127.0.0.1", "-mp", str(media), "-d", "4000", "-m", "1", "-nostdin",
                                  "-timeout", "60s", "-timeout_error"], cwd=tmp_path, seconds=90)
                with trio.fail_after(10):
                    await agent.wait_event("CALL_CLOSED")
                with trio.fail_after(10):
                    while centre.acd.get_agent("9001")["state"] != "available":
                        await trio.sleep(0.05)  # wrap-up over
            log.flush_sync()
            events = log.read_sync()
            nursery.cancel_scope.cancel()
        screen = sipp.stdout.decode(errors="replace")
        assert sipp.returncode == 0 and successful(screen) == 1, screen[-3000:]
        calls = {e.call for e in events if e.type == "call.ivr"}
        assert len(calls) == 1
        (cid,) = calls
        record = log.call_record_sync(cid)
    finally:
        engine.close()
        log.close()

    ivr = [e.data for e in events if e.type == "call.ivr" and e.call == cid]
    path = [d["node"] for d in ivr if d.get("event") == "node_entered"]
    assert path == ["welcome", "menu", "account", "support"]
    assert [(d["node"], d["digits"]) for d in ivr if d.get("event") == "digits"] == [("menu", "2"),
                                                                                     ("account", "579")]
    ended = next(d for d in ivr if d.get("event") == "flow_ended")
    assert ended["outcome"] == "answered" and ended["data"]["account_number"] == "579"

    mine = [e for e in events if e.call == cid]
    kinds = [e.type for e in mine]
    for kind in ("call.incoming", "call.queued", "call.offered", "call.answered", "call.ended",
                 "call.wrapup_ended"):
        assert kind in kinds, (kind, kinds)
    offered = next(e.data for e in mine if e.type == "call.offered")
    assert (offered["agent"], offered["device"], offered["caller"]) == ("9001", "9001", "5550100")
    assert offered["data"]["account_number"] == "579" and offered["data"]["choice"] == "2"
    registered = [e.data for e in events if e.type == "device.registered"]
    assert registered and registered[0]["device"] == "9001"
    assert registered[0]["binding"]["user_agent"].startswith("baresip")

    # what baresip did: it was rung with the caller's number and answered
    incoming = [e for e in agent.events if e.get("type") in ("CALL_INCOMING", "CALL_ESTABLISHED")]
    assert [e["type"] for e in incoming][-1] == "CALL_ESTABLISHED"

    # the call record, folded by the store from the log
    assert record is not None and not record.open
    assert (record.outcome, record.queue, record.agent, record.caller) == ("answered", "support", "9001",
                                                                           f"sip:5550100@127.0.0.1:{sipp_port}")
    assert record.callee == "1000" and record.ivr_data["menu"] == "2" and record.ivr_data["account"] == "579"
    assert record.arrived_at < record.queued_at <= record.answered_at < record.ended_at
    assert record.ivr > 1.0                   # the caller spent the menu and the account entry in the IVR
    assert 0 <= record.wait < 10              # answered within the ring timeout
    assert 2.0 < record.talk < 6.0            # SIPp holds for 4 s once the digits are sent
    assert record.end_cause == "normal_clearing" and record.end_reason == "caller_hangup"
    assert record.wrapup is not None

