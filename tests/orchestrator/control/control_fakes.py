"""A call centre for the control-plane tests: the real ACD policy, real IVR registry and
metrics, and in-memory stand-ins for the services still being written (the B2BUA's
CallManager, recordings, supervisor monitoring, call records).

The stand-ins keep the state rules those services will have (hold needs a connected
call, one recording per call...), raise the ACD's NotFoundError/ConflictError like the
real ones, and feed the real ACD, whose events go to the hub, so a screen pop in these
tests is the ACD's own ``call.offered``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from orchestrator.acd import Acd, AgentConfig, ConflictError, NotFoundError, QueueConfig
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev
from orchestrator.control import (
    AcdBinding,
    EventHub,
    EventLogReports,
    FlowRegistryIvr,
    MemoryAuditLog,
    Principal,
    RpcServer,
    Services,
    TokenStore,
)
from orchestrator.ivr import FlowRegistry

TINY_FLOW = """\
description: a flow that hangs up
start: bye
languages: [en]
nodes:
  bye:
    type: hangup
    reason: done
"""

AGENTS = ("9001", "9002", "9003", "9004", "9005")


class Clock:
    """The ACD's monotonic ``now`` and the wall clock, both moved by hand."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeCalls:
    """The CallService a B2BUA will provide, over the real ACD."""

    def __init__(self, centre: CallCentre) -> None:
        self.c = centre
        self.calls: dict[str, dict[str, Any]] = {}
        self.dtmf: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    def _get(self, call: str) -> dict[str, Any]:
        info = self.calls.get(call)
        if info is None or info["state"] == "ended":
            raise NotFoundError(f"call: no live call {call!r}")
        return info

    def list_calls(self) -> list[dict]:
        return [dict(c) for c in self.calls.values() if c["state"] != "ended"]

    def get_call(self, call: str) -> dict:
        return dict(self._get(call))

    def originate(self, from_: str, to: str, *, caller_id=None, queue=None, data=None) -> dict:
        call = f"c{next(self._ids)}"
        info = {"call": call, "from": from_, "to": to, "caller": caller_id or from_, "queue": queue, "agent": None,
                "state": "queued" if queue else "dialing", "data": dict(data or {}), "offer": None}
        self.calls[call] = info
        if queue:
            self.c.publish({"type": "call.incoming", "call": call, "caller": info["caller"], "to": to})
            self.c.feed(self.c.acd.call_arrived(call, queue, self.c.clock(), caller=info["caller"], data=data))
        else:
            agent = self.c.agent_of_device(from_) or (from_ if from_ in self.c.acd.agents() else None)
            info["agent"] = agent
            self.c.publish({"type": "call.originated", "call": call, "agent": agent, "from": from_, "to": to})
        return dict(info)

    def answer(self, call: str) -> dict:
        info = self._get(call)
        if info["state"] != "ringing":
            raise ConflictError(f"call: {call} is {info['state']}, not ringing")
        self.c.feed(self.c.acd.offer_answered(info["offer"], self.c.clock()))
        return dict(info)

    def hangup(self, call: str, *, reason=None) -> dict:
        info = self._get(call)
        if info["state"] in ("connected", "held"):
            self.c.feed(self.c.acd.call_ended(call, self.c.clock()))
        elif info["state"] in ("queued", "ringing"):
            self.c.feed(self.c.acd.call_abandoned(call, self.c.clock()))
        info["state"] = "ended"
        return {"call": call, "state": "ended", "reason": reason}

    def hold(self, call: str) -> dict:
        info = self._get(call)
        if info["state"] != "connected":
            raise ConflictError(f"call: hold needs a connected call; {call} is {info['state']}")
        self.c.feed(self.c.acd.call_held(call, self.c.clock()))
        info["state"] = "held"
        return dict(info)

    def unhold(self, call: str) -> dict:
        info = self._get(call)
        if info["state"] != "held":
            raise ConflictError(f"call: {call} is not on hold")
        self.c.feed(self.c.acd.call_resumed(call, self.c.clock()))
        info["state"] = "connected"
        return dict(info)

    def transfer(self, call: str, to: str, *, mode="blind") -> dict:
        info = self._get(call)
        if info["state"] not in ("connected", "held"):
            raise ConflictError(f"call: transfer needs a connected call; {call} is {info['state']}")
        self.c.publish({"type": "call.transferred", "call": call, "agent": info["agent"], "to": to, "mode": mode,
                        "queue": info["queue"]})
        self.c.feed(self.c.acd.call_ended(call, self.c.clock()))
        info["state"] = "ended"
        return {"call": call, "state": "transferred", "to": to, "mode": mode}

    def send_dtmf(self, call: str, digits: str) -> dict:
        info = self._get(call)
        if info["state"] != "connected":
            raise ConflictError(f"call: DTMF needs a connected call; {call} is {info['state']}")
        self.dtmf.append((call, digits))
        return {"call": call, "sent": len(digits)}

    def set_data(self, call: str, data, *, merge=True) -> dict:
        info = self._get(call)
        info["data"] = {**info["data"], **data} if merge else dict(data)
        return {"call": call, "data": dict(info["data"])}


class FakeRecordings:
    def __init__(self, centre: CallCentre) -> None:
        self.c = centre
        self.recs: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def _active(self, call: str) -> dict:
        self.c.calls._get(call)
        for r in self.recs.values():
            if r["call"] == call and r["state"] in ("recording", "paused"):
                return r
        raise ConflictError(f"call: {call} is not being recorded")

    def start(self, call: str, *, by: str = "api") -> dict:
        self.c.calls._get(call)
        if any(r["call"] == call and r["state"] != "stopped" for r in self.recs.values()):
            raise ConflictError(f"call: {call} is already being recorded")
        rid = f"r{next(self._ids)}"
        self.recs[rid] = {"recording": rid, "call": call, "state": "recording", "started_at": self.c.clock()}
        return dict(self.recs[rid])

    def _move(self, call: str, frm: tuple, to: str) -> dict:
        r = self._active(call)
        if r["state"] not in frm:
            raise ConflictError(f"recording: {r['recording']} is {r['state']}")
        r["state"] = to
        return dict(r)

    def stop(self, call: str, *, by: str = "api") -> dict:
        return self._move(call, ("recording", "paused"), "stopped")

    def pause(self, call: str, *, by: str = "api") -> dict:
        return self._move(call, ("recording",), "paused")

    def resume(self, call: str, *, by: str = "api") -> dict:
        return self._move(call, ("paused",), "recording")

    def get(self, recording: str) -> dict:
        if recording not in self.recs:
            raise NotFoundError(f"recording: no recording {recording!r}")
        return dict(self.recs[recording])

    def list(self, *, call=None, start=None, end=None, limit=100) -> list:
        rows = [r for r in self.recs.values() if call is None or r["call"] == call]
        return [dict(r) for r in reversed(rows)][:limit]


class FakeSupervisor:
    def __init__(self, centre: CallCentre) -> None:
        self.c = centre
        self.sessions: dict[tuple[str, str], dict] = {}

    def monitor(self, call: str, device: str, mode: str, *, supervisor: str) -> dict:
        info = self.c.calls._get(call)
        if info["state"] not in ("connected", "held"):
            raise ConflictError(f"call: {call} is {info['state']}; monitoring needs a connected call")
        key = (call, device)
        s = self.sessions.get(key)
        if s is None:
            s = self.sessions[key] = {"session": f"m{len(self.sessions) + 1}", "call": call, "device": device,
                                      "supervisor": supervisor, "mode": mode, "switches": 0}
        elif s["mode"] != mode:
            s["mode"] = mode
            s["switches"] += 1
        return dict(s)


class FakeCdr:
    def __init__(self, centre: CallCentre) -> None:
        self.c = centre

    def query(self, *, start=None, end=None, queue=None, agent=None, limit=100) -> list:
        rows = []
        for e in self.c.events:
            if e.type != "call.ended":
                continue
            if (queue is None or e.queue == queue) and (agent is None or e.agent == agent) \
                    and (start is None or e.at >= start) and (end is None or e.at < end):
                rows.append({"call": e.call, "queue": e.queue, "agent": e.agent, "talk": e.talk, "hold": e.hold,
                             "ended_at": e.at})
        return rows[:limit]


class CallCentre:
    """Everything wired: ``server`` (an RpcServer), ``hub``, ``tokens`` per role, the services."""

    def __init__(self, tmp: Path | None = None, *, agents=AGENTS, queues=("support", "sales"), hub=None,
                 ring_timeout: float = 20.0, wrapup: float = 0.0, metrics=None) -> None:
        self.clock = Clock()
        self.hub = hub if hub is not None else EventHub(clock=self.clock)
        self.events: list[ev.Event] = []
        self.offers: dict[str, int] = {}
        qcfg = [QueueConfig(name=q, ring_timeout=ring_timeout, wrapup=wrapup) for q in queues]
        acfg = [AgentConfig(id=a, queues={q: 0 for q in queues}, devices=(f"dev-{a}",)) for a in agents]
        self.acd = Acd(qcfg, acfg)
        self.binding = AcdBinding(self.acd, clock=self.clock, on_outputs=self.feed, events=lambda: self.events)
        self.calls = FakeCalls(self)
        self.recordings = FakeRecordings(self)
        self.supervisor = FakeSupervisor(self)
        self.cdr = FakeCdr(self)
        ivr = None
        if tmp is not None:
            flow_dir = Path(tmp) / "ivr"
            flow_dir.mkdir(exist_ok=True)
            (flow_dir / "tiny.yaml").write_text(TINY_FLOW)
            self.flow_dir = flow_dir
            registry = FlowRegistry()
            registry.reload(flow_dir)
            ivr = FlowRegistryIvr(registry, flow_dir)
        self.services = Services(agents=self.binding, queues=self.binding, calls=self.calls,
                                 recordings=self.recordings, supervisor=self.supervisor, ivr=ivr, cdr=self.cdr,
                                 reports=EventLogReports(lambda: self.events))
        self.tokens = TokenStore()
        self.token = {
            "admin": self.tokens.add(Principal("root", "admin")),
            "supervisor": self.tokens.add(Principal("sue", "supervisor")),
            "agent": self.tokens.add(Principal("alice", "agent", agent="9001")),
            "crm": self.tokens.add(Principal("crm", "crm")),
            "viewer": self.tokens.add(Principal("wallboard", "viewer")),
        }
        self.audit = MemoryAuditLog()
        self.server = RpcServer(tokens=self.tokens, services=self.services, hub=self.hub, audit=self.audit,
                                clock=self.clock, metrics=metrics)

    # ------------------------------------------------------------------ feeding the ACD

    def publish(self, event: dict) -> None:
        self.hub.publish({"at": self.clock(), **event})

    def feed(self, outputs: list) -> None:
        for o in outputs:
            if isinstance(o, ev.Event):
                self.events.append(o)
                self.hub.publish(o)
                if isinstance(o, ev.CallAnswered):
                    info = self.calls.calls.get(o.call)
                    if info is not None:
                        info.update(state="connected", agent=o.agent)
            elif isinstance(o, fx.Offer):
                info = self.calls.calls.get(o.call)
                if info is not None:
                    info.update(state="ringing", agent=o.agent, offer=o.offer)
            elif isinstance(o, fx.CancelOffer):
                info = self.calls.calls.get(o.call)
                if info is not None and info["state"] == "ringing":
                    info.update(state="queued", agent=None, offer=None)

    def agent_of_device(self, device: str) -> str | None:
        for a in self.acd.agents():
            if self.acd.agent_snapshot(a).device == device:
                return a
        return None

    def login_all(self, *agents: str) -> None:
        """Log agents in on their devices and register the devices (as the registrar would)."""
        for a in agents or self.acd.agents():
            self.feed(self.acd.agent_login(a, f"dev-{a}", self.clock()))
            self.feed(self.acd.device_registered(f"dev-{a}", self.clock()))

    def session(self, role: str | None = None, transport: str = "test"):
        """A session already logged in as ``role`` (None: anonymous)."""
        principal = self.tokens.authenticate(self.token[role]) if role else None
        return self.server.new_session(transport=transport, principal=principal)


class LiveServer:
    """The HTTP listener and the control socket on a Trio loop in a background thread.

    ``run(fn, *args)`` runs ``fn`` on the loop's thread (the hub and the
    services are single-threaded) and returns its result.
    """

    def __init__(self, centre: CallCentre, *, socket_path: Path | None = None, stats_interval: float | None = None,
                 limits=None) -> None:
        import threading

        import trio

        from orchestrator.control.telemetry import CallCentreMetrics, QueueStatsPublisher
        from orchestrator.control.unix import UnixControlServer
        from orchestrator.http.prometheus import Registry
        from orchestrator.http.server import HealthChecks, HttpLimits, HttpServer

        self.centre = centre
        self.registry = Registry()
        CallCentreMetrics(self.registry, centre.hub, queues=centre.binding.list_queues,
                          agents=centre.binding.list_agents)
        self.health = HealthChecks()
        self.healthy = {"acd": True}
        self.health.add("acd", lambda: self.healthy["acd"])
        self.http = HttpServer(rpc=centre.server, registry=self.registry, health=self.health,
                               limits=limits or HttpLimits())
        self.unix = UnixControlServer(centre.server, socket_path) if socket_path is not None else None
        self.publisher = QueueStatsPublisher(centre.hub, centre.binding, interval=stats_interval) \
            if stats_interval else None
        self._trio = trio
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        trio = self._trio

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                self._cancel = nursery.cancel_scope
                self.port = await nursery.start(self.http.serve, "127.0.0.1", 0)
                if self.unix is not None:
                    await nursery.start(self.unix.serve)
                if self.publisher is not None:
                    await nursery.start(self.publisher.run)
                self.token = trio.lowlevel.current_trio_token()
                self._ready.set()

        try:
            trio.run(main)
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()/stop()
            self._error = exc
            self._ready.set()

    def start(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def run(self, fn, *args):
        return self._trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._trio.from_thread.run_sync(self._cancel.cancel, trio_token=self.token)
            self._thread.join(10)
        if self._error is not None:
            raise self._error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
