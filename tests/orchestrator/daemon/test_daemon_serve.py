"""`hotline serve --config FILE` as an operator runs it, with real SIP peers.

One daemon runs as a subprocess on free ports with its state in a temporary directory. A
headless baresip is agent 7001's phone (it registers with digest and answers by itself); SIPp
places the calls. In order:

* start: the ready line on stdout, the admin token file (mode 0600), ``/healthz``, the control
  socket (refused without the token, answered with it), ``hotline ctl``;
* call A dials the IVR (1000): the flow plays its prompt and queues it in ``support``, where
  baresip answers;
* SIGHUP with a changed file adds queue ``vip`` and agent 7002 and points the flow at ``vip``:
  queue.list, agent.list, ivr.list and the ``config.reloaded`` event say so, and call B, dialled
  after the reload, really waits in ``vip``; call A stays up;
* SIGHUP with an invalid file (and a changed flow beside it) is refused and changes nothing;
* SIGTERM while A talks and B waits: a new INVITE gets 503 with Retry-After, the control socket
  says ``draining`` and refuses call.originate, /healthz turns 503; baresip hangs A up (the call
  finishes by itself), B is hung up at ``drain_timeout``; the process exits 0 and the event log
  holds both calls' records.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from daemon_harness import (
    CALLER,
    REFUSED,
    ROOT,
    Baresip,
    Sipp,
    agent,
    agent_states,
    base_config,
    need,
    serving,
    wait_for,
    write_config,
)

from orchestrator.control.ctl import CtlError, RpcClient
from orchestrator.store import EventLog

pytestmark = [pytest.mark.timeout(150), pytest.mark.peers, pytest.mark.slow]

DRAIN = 3.0


def write_flow(flows: Path, *, description: str, queue: str) -> None:
    """The IVR flow ``main``: a short prompt, then the queue."""
    (flows / "main.yaml").write_text(f"description: {description}\nstart: hello\nnodes:\n"
                                     "  hello: {type: play, prompts: [hello], next: wait}\n"
                                     f"  wait: {{type: queue, queue: {queue}}}\n")


def healthz(daemon) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def reloads(daemon) -> list:
    return [e for e in daemon.events() if e.type == "config.reloaded"]


def test_serve_start_reload_and_drain_with_real_peers(tmp_path):
    need("sipp", "baresip", "sox")
    flows = tmp_path / "flows"
    (flows / "prompts" / "en").mkdir(parents=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(flows / "prompts" / "en" / "hello.wav"),
                    "synth", "0.5", "sine", "440"], check=True, timeout=30)
    write_flow(flows, description="version one", queue="support")
    state = tmp_path / "var"
    doc = base_config(state, drain=DRAIN, flows=flows)
    config = write_config(tmp_path / "hotline.toml", doc)
    peers = []
    with serving(config, doc, tmp_path / "serve.log") as daemon:
        try:
            # -- start -----------------------------------------------------------------------------
            ready = daemon.start()
            m = re.fullmatch(r"hotline serve-test ready: sip udp 127\.0\.0\.1:(\d+); wallboard "
                             r"http://127\.0\.0\.1:(\d+)/#token=\S+; control (\S+); admin token in (\S+)\n", ready)
            assert m, ready
            assert (int(m[1]), int(m[2]), m[3], m[4]) == (daemon.sip_port, daemon.http_port, daemon.socket_path,
                                                          str(daemon.token_file))
            assert stat.S_IMODE(daemon.token_file.stat().st_mode) == 0o600
            assert daemon.logged("ready")[0]["config"] == str(config)
            status, health = healthz(daemon)
            assert status == 200 and health["status"] == "ok", health
            assert {name for name, check in health["checks"].items() if check["ok"]} >= {
                "accepting_calls", "event_log", "media_engine", "sip"}, health
            anonymous = RpcClient(socket_path=daemon.socket_path, timeout=10)
            try:
                with pytest.raises(CtlError) as refused:
                    anonymous.call("queue.list")
                assert refused.value.code == -32001
            finally:
                anonymous.close()
            stats = daemon.call("system.stats")
            assert (stats["node"], stats["draining"], stats["live_calls"]) == ("serve-test", False, 0)
            ctl = subprocess.run([sys.executable, "-m", "orchestrator.cli", "ctl", "--socket", daemon.socket_path,
                                  "--token-file", str(daemon.token_file), "queue.list"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60, check=True)
            assert {q["queue"] for q in json.loads(ctl.stdout)} == {"support", "sales"}

            # -- call A: IVR -> queue support -> answered by baresip (agent 7001) -------------------
            phone = Baresip(tmp_path, ["7001"], daemon.sip_port)
            peers.append(phone)
            wait_for("agent 7001 available", lambda: agent_states(daemon).get("7001") == "available",
                     alive=daemon.alive)
            target = f"127.0.0.1:{daemon.sip_port}"
            peers.append(Sipp(tmp_path / "sipp", "a", CALLER, target, "1000"))
            answered = wait_for("call A answered", lambda: [e for e in daemon.events() if e.type == "call.answered"],
                                alive=daemon.alive)
            call_a = answered[0].call
            assert answered[0].agent == "7001" and answered[0].data["queue"] == "support"
            path = [e.data["node"] for e in daemon.events()
                    if e.type == "call.ivr" and e.call == call_a and e.data.get("event") == "node_entered"]
            assert path == ["hello", "wait"]

            # -- SIGHUP: a new queue, a new agent, the flow changed ---------------------------------
            changed = copy.deepcopy(doc)
            changed["queue"].append({"name": "vip", "skills": {"vip": 1}, "ring_timeout": 10})
            changed["agent"].append(agent("7002", "vip", login=False))
            write_config(config, changed)
            write_flow(flows, description="version two", queue="vip")
            daemon.send(signal.SIGHUP)
            (reload,) = wait_for("config.reloaded", lambda: reloads(daemon), alive=daemon.alive)
            assert reload.data["ok"] is True and reload.data["error"] is None
            assert (reload.data["queues_added"], reload.data["agents_added"]) == (["vip"], ["7002"])
            assert reload.data["flows"]["changed"] == ["main"] and reload.data["needs_restart"] == []
            assert {q["queue"] for q in daemon.call("queue.list")} == {"support", "sales", "vip"}
            assert agent_states(daemon) == {"7001": "on_call", "7002": "offline"}
            assert [(f["name"], f["description"]) for f in daemon.call("ivr.list")] == [("main", "version two")]
            assert daemon.logged("configuration reloaded")

            # call B, dialled after the reload, takes the new flow into vip, where nobody is logged in
            peers.append(Sipp(tmp_path / "sipp", "b", CALLER, target, "1000"))
            queued = wait_for("call B queued", lambda: [e for e in daemon.events()
                                                        if e.type == "call.queued" and e.call != call_a],
                              alive=daemon.alive)
            call_b = queued[0].call
            assert queued[0].data["queue"] == "vip"

            # -- SIGHUP with an invalid file: refused, nothing changes ------------------------------
            broken = copy.deepcopy(changed)
            broken["queue"].append({"name": "gold", "ring_timeout": 0})
            write_config(config, broken)
            write_flow(flows, description="version three", queue="support")
            daemon.send(signal.SIGHUP)
            refused_reload = wait_for("the second config.reloaded", lambda: reloads(daemon)[1:],
                                      alive=daemon.alive)[0]
            assert refused_reload.data["ok"] is False
            assert refused_reload.data["error"] == f"{config}: queue[3].ring_timeout: must be > 0, got 0"
            assert {q["queue"] for q in daemon.call("queue.list")} == {"support", "sales", "vip"}
            assert [(f["name"], f["description"]) for f in daemon.call("ivr.list")] == [("main", "version two")]
            assert daemon.logged("configuration reload refused, nothing changed")
            stats = daemon.call("system.stats")
            assert (stats["reloads"], stats["reloads_refused"], stats["live_calls"]) == (1, 1, 2)

            # -- SIGTERM: drain --------------------------------------------------------------------
            t0 = time.monotonic()
            daemon.send(signal.SIGTERM)
            wait_for("the draining log line", lambda: daemon.logged("draining"), alive=daemon.alive)
            turned_away = Sipp(tmp_path / "sipp", "c", REFUSED, target, "2000")
            peers.append(turned_away)
            assert turned_away.wait(30) == 0, turned_away.output()[-3000:]
            assert re.search(r"SIP/2.0 503 .*\n(.*\n)*Retry-After: 5\r?\n", turned_away.sip_messages())
            assert daemon.call("system.stats")["draining"] is True
            with pytest.raises(CtlError) as no_new_calls:  # nor does it place calls for a CRM
                daemon.call("call.originate", {"from": "7001", "to": "2001"})
            assert no_new_calls.value.code == -32009 and "draining" in str(no_new_calls.value)
            status, health = healthz(daemon)  # a load balancer in front takes the node out
            assert status == 503 and health["checks"]["accepting_calls"]["ok"] is False, health
            assert phone.command("hangup")["ok"] is True  # the agent ends call A: it finishes by itself
            rc = daemon.wait(60)
            waited = time.monotonic() - t0
        finally:
            for peer in peers:
                peer.stop()
    assert rc == 0, daemon.tail()
    assert waited >= DRAIN - 0.5  # call B was given the drain timeout before it was hung up
    drained = daemon.logged("draining")[0]
    assert drained["live_calls"] == 2 and drained["drain_timeout"] == DRAIN
    assert daemon.logged("drain: hanging up 1 call(s) still live")
    assert daemon.logged("drained: event log flushed") and daemon.logged("stopped")

    with EventLog(daemon.url, read_only=True) as log:
        events = list(log.iter_events())
        a, b = log.call_record_sync(call_a), log.call_record_sync(call_b)
    assert {e.call for e in events if e.type == "call.incoming"} == {call_a, call_b}  # the 503 made no call
    assert not a.open and (a.outcome, a.queue, a.agent) == ("answered", "support", "7001")
    assert (a.end_cause, a.end_reason) == ("normal_clearing", "callee_hangup") and a.talk > 0, a  # baresip hung up
    assert not b.open and b.queue == "vip" and b.answered_at is None and b.end_cause == "shutdown", b
    assert [e.data["ok"] for e in events if e.type == "config.reloaded"] == [True, False]
