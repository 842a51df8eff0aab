"""``hotline demo``: the embedded call centre, with simulated agents and callers.

The daemon of ``hotline serve`` with the embedded default configuration
(:func:`demo_config`): SQLite and recordings under ``./var``, SIP on
127.0.0.1:5060 (UDP and TCP), HTTP on 127.0.0.1:8080 (wallboard ``/``,
WebSocket ``/rpc``, ``/metrics``, ``/healthz``), the control socket
``./var/hotline.sock``, the admin token in ``./var/admin.token``, the demo
IVR from ``ivr/`` (business hours always open), and the dial plan of
CONTRACT.md: ``1000`` the main IVR, ``2000`` support, ``2001`` sales; agents
``9001``-``9005`` with the passwords ``demo-9001``... (register a softphone
as one of them to take calls yourself).

Then, in the same process, simulated agents that register and answer, and
simulated callers that arrive at random (Poisson, ``--callers-per-minute``),
walk the IVR with RFC 4733 digits or dial a queue, and hang up if no agent
answers within their patience: every one a real SIP user agent on loopback
(:mod:`orchestrator.daemon.simulate`). A line is printed per finished call.
After ``--duration`` seconds (or on Ctrl-C / SIGTERM) new callers stop, the
daemon drains, and the summary is computed from the event log (the same
numbers ``hotline report queues`` gives): calls offered, answered,
abandoned, service level, ASA and AHT. Exit status 0.

``--callers-per-minute 0``: agents but no simulated callers, for outside
traffic (a softphone dialling 1000 or 2000).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from .config import ConfigError, DaemonConfig, config_from_mapping, parse_host_port
from .logs import setup_logging

__all__ = ["demo_config", "main"]

log = logging.getLogger("hotline.demo")

ROOT = Path(__file__).resolve().parents[3]  # the source checkout (ivr/ lives there)
AGENTS = {  # id -> skills: what each demo agent does best
    "9001": {"support": 5, "sales": 2, "billing": 3, "lang_en": 5, "lang_es": 3},
    "9002": {"sales": 5, "support": 2, "lang_en": 5, "lang_es": 5},
    "9003": {"support": 4, "billing": 5, "lang_en": 5},
    "9004": {"sales": 4, "support": 3, "lang_en": 5, "lang_es": 4},
    "9005": {"support": 3, "sales": 3, "billing": 2, "lang_en": 5, "lang_es": 2},
}

MORE_AGENTS = {"support": 3, "sales": 3, "billing": 2, "lang_en": 5, "lang_es": 2}  # 9006 and beyond
SUPERVISOR = "8001"


def demo_password(agent: str) -> str:
    return f"demo-{agent}"


def demo_config(*, state: Path, sip: str = "127.0.0.1:5060", http: str = "127.0.0.1:8080",
                flows: Path | None = None, agents: int = 5, rtp_ports: tuple[int, int] = (20000, 29999),
                wrapup: float = 5.0) -> dict[str, Any]:
    """The embedded default configuration, as the TOML document it stands for."""
    state_s = str(state)
    ids = [f"9{n:03d}" for n in range(1, agents + 1)]
    queues = {
        "support": {"name": "support", "strategy": "skills", "skills": {"support": 1}, "ring_timeout": 12,
                    "wrapup": wrapup, "max_wait": 300, "announce_every": 30, "sl_threshold": 20},
        "sales": {"name": "sales", "strategy": "skills", "skills": {"sales": 1}, "ring_timeout": 12,
                  "wrapup": wrapup, "max_wait": 300, "sl_threshold": 20},
        "billing": {"name": "billing", "strategy": "skills", "skills": {"billing": 1}, "ring_timeout": 12,
                    "wrapup": wrapup, "max_wait": 300, "sl_threshold": 20},
    }
    return {
        "daemon": {"node": "demo", "log_level": "warning", "drain_timeout": 5, "purge_interval": 86400},
        "sip": {"listen": [sip], "transports": ["udp", "tcp"], "domain": "127.0.0.1",
                "user_agent": "Hotline demo", "rate_limit": False},
        "rtp": {"address": "127.0.0.1", "ports": list(rtp_ports)},
        "control": {"socket": f"{state_s}/hotline.sock", "http": http},
        "auth": {"token_file": f"{state_s}/admin.token"},
        "storage": {"url": f"sqlite:///{state_s}/hotline.db", "bindings": f"{state_s}/bindings.db"},
        "recording": {"enabled": True, "dir": f"{state_s}/recordings", "format": "wav", "stereo": True,
                      "policy": "always", "retention_days": 7, "analytics": True},
        "ivr": {"flows": str(flows or ROOT / "ivr"), "prompts": f"{state_s}/queue-prompts", "build_prompts": True,
                "recordings": f"{state_s}/voicemail", "always_open": True},
        "dialplan": {"dids": {"1000": "ivr:main", "2000": "queue:support", "2001": "queue:sales"},
                     "extensions": "9[0-9]{3}", "default": "reject:404"},
        # the simulated callers come from 127.0.0.1 like a carrier would: no digest for them
        "trunk": [{"name": "demo-callers", "allow": ["127.0.0.1/32"], "route": "ivr:main"}],
        "queue": list(queues.values()),
        "agent": [{"id": a, "skills": AGENTS.get(a, MORE_AGENTS), "devices": [a], "password": demo_password(a),
                   "login": a, "queues": {q: 0 for q in ("support", "sales", "billing") if q in AGENTS.get(a, MORE_AGENTS)}}
                  for a in ids],
        # a supervisor's phone: supervisor.listen/whisper/barge ring it
        "account": [{"username": SUPERVISOR, "password": demo_password(SUPERVISOR)}],
    }


class CallPrinter:
    """A line per finished call, from the daemon's events (the demo's window on the centre)."""

    def __init__(self, out=None) -> None:
        self.out = out or sys.stdout
        self.calls: dict[str, dict[str, Any]] = {}
        self.by_caller: dict[str, str] = {}   # caller id -> the daemon's call id (latest)
        self.finished = 0
        self.types: dict[str, int] = {}

    def with_agent(self, caller: str) -> bool:
        call = self.by_caller.get(caller)
        return call is not None and self.calls.get(call, {}).get("agent") is not None

    def __call__(self, event: dict) -> None:
        kind = event.get("type")
        self.types[kind] = self.types.get(kind, 0) + 1
        call = event.get("call")
        if not isinstance(call, str):
            return
        info = self.calls.setdefault(call, {"start": time.time(), "path": []})
        caller = event.get("caller") or event.get("from") or event.get("caller_id")
        if isinstance(caller, str) and "caller" not in info:
            user = caller.split("sip:", 1)[-1].split("@", 1)[0].strip("<>\" ")
            info["caller"] = user
            self.by_caller[user] = call
        if kind == "ivr.node" or kind == "ivr.entered":
            node = event.get("node") or event.get("flow")
            if node and (not info["path"] or info["path"][-1] != node):
                info["path"].append(str(node))
        elif kind == "call.queued":
            info["queue"] = event.get("queue")
            info["queued_at"] = time.time()
        elif kind == "call.answered" and event.get("agent"):
            info["agent"] = event.get("agent")
            info["answered_at"] = time.time()
        elif kind == "call.abandoned":
            info["outcome"] = "abandoned"
        elif kind == "call.ended" and "cause" in event:
            if info.get("agent"):
                info["outcome"] = "answered"
            elif info.get("queue"):
                info["outcome"] = "abandoned"
            else:
                info.setdefault("outcome", str(event.get("reason") or "ended"))
            self._print(call, info, event)

    def _print(self, call: str, info: dict, event: dict) -> None:
        self.finished += 1
        now = time.time()
        wait = (info.get("answered_at") or now) - info["queued_at"] if "queued_at" in info else None
        talk = event.get("talk_seconds")
        parts = [time.strftime("%H:%M:%S"), f"call {call}", f"from {info.get('caller', '?')}"]
        if info.get("queue"):
            parts.append(f"queue {info['queue']}")
        if info.get("agent"):
            parts.append(f"agent {info['agent']}")
        if wait is not None:
            parts.append(f"waited {wait:.0f}s")
        if isinstance(talk, (int, float)) and info.get("agent"):
            parts.append(f"talked {talk:.0f}s")
        parts.append(info.get("outcome", "ended"))
        print("  ".join(parts), file=self.out, flush=True)


def summary(log_url: str, start: float, end: float) -> dict[str, Any]:
    """Offered, answered, abandoned, SL, ASA, AHT over [start, end] from the event log."""
    from orchestrator import report
    from orchestrator.store import EventLog

    with EventLog(log_url, read_only=True) as events:
        rows = report.queue_report(events, start=start, end=end)
    offered = sum(r.queued for r in rows)
    answered = sum(r.answered for r in rows)
    abandoned = sum(r.abandoned for r in rows)
    within = sum(r.answered_within for r in rows)
    late_abandons = sum(r.abandoned_after for r in rows)
    sl = within / (answered + late_abandons) if answered + late_abandons else None
    asa = [r.asa * r.answered for r in rows if r.asa is not None]
    aht = [r.aht * r.handled for r in rows if r.aht is not None]
    handled = sum(r.handled for r in rows if r.aht is not None)
    return {"offered": offered, "answered": answered, "abandoned": abandoned, "service_level": sl,
            "asa": sum(asa) / answered if answered and asa else None,
            "aht": sum(aht) / handled if handled else None,
            "queues": {r.queue: {"offered": r.queued, "answered": r.answered, "abandoned": r.abandoned,
                                 "service_level": r.service_level} for r in rows}}


def print_summary(s: dict[str, Any], seconds: float, out=None) -> None:
    out = out or sys.stdout

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    def secs(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}s"

    print(f"\nhotline demo: {seconds:.0f} s", file=out)
    print(f"calls offered {s['offered']}  answered {s['answered']}  abandoned {s['abandoned']}  "
          f"service level (20 s) {pct(s['service_level'])}  ASA {secs(s['asa'])}  AHT {secs(s['aht'])}", file=out)
    for queue, q in sorted(s["queues"].items()):
        print(f"  {queue:<8} offered {q['offered']:>3}  answered {q['answered']:>3}  abandoned {q['abandoned']:>3}  "
              f"service level {pct(q['service_level'])}", file=out)
    out.flush()


async def run_demo(args: argparse.Namespace, config: DaemonConfig, out=None) -> int:
    from mediacore.engine import Engine

    from .serve import Daemon, ready_line
    from .simulate import SimAgent, SimCaller, SimStats, SimSupervisor, caller_plans, poisson_gaps

    out = out or sys.stdout
    daemon = Daemon(config, handle_signals=False)
    printer = CallPrinter(out)
    rng = random.Random(args.seed)
    stats = SimStats()
    speech = _speech_file(config)
    stopping = trio.Event()
    start = time.time()
    async with trio.open_nursery() as top:
        info = await top.start(daemon.run)
        daemon.tap.listeners.append(printer)
        print(ready_line(info), flush=True, file=out)
        print(f"admin token: {info.admin_token}", flush=True, file=out)
        sip_host, sip_port = info.sip[0].split(" ", 1)[1].rsplit(":", 1)
        from orchestrator.sip import Address

        hotline = Address(sip_host, int(sip_port), "UDP")
        # the simulated phones' media engine: one thread, its own ports
        lo, hi = config.rtp.ports
        phones = Engine(port_range=(hi + 1, min(65535, hi + 1 + 8000)) if hi < 56000 else (lo - 8001, lo - 1),
                        threads=1, stats_interval=0)
        try:
            async with trio.open_nursery() as sims:
                common = {"engine": phones, "hotline": hotline, "domain": config.sip.domain, "stats": stats,
                          "speech": speech}
                for agent in config.agents[: args.agents]:
                    a = SimAgent(agent.id, demo_password(agent.id), rng=random.Random(rng.random()),
                                 mean_talk=args.talk, **common)
                    await sims.start(a.run)
                print(f"{stats.registered} simulated agents registered; callers: {args.callers_per_minute:g}/min",
                      flush=True, file=out)
                if args.supervisor:  # answers every monitor call and stays on it until Hotline hangs up
                    supervisor = SimSupervisor(SUPERVISOR, demo_password(SUPERVISOR), **common)
                    await sims.start(supervisor.run)
                    print(f"supervisor phone {SUPERVISOR} registered", flush=True, file=out)

                async def arrivals() -> None:
                    plans = caller_plans(random.Random(rng.random()), mean_patience=args.patience)
                    for gap in poisson_gaps(random.Random(rng.random()), args.callers_per_minute):
                        await trio.sleep(gap)
                        if stopping.is_set():
                            return
                        sims.start_soon(one_caller, next(plans))

                async def one_caller(plan: Any) -> None:
                    caller = SimCaller(plan, with_agent=printer.with_agent, **common)
                    async with trio.open_nursery() as n:
                        await n.start(caller.run)
                        try:
                            await caller.call()
                        finally:
                            n.cancel_scope.cancel()

                async def stop_after() -> None:
                    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        with trio.move_on_after(args.duration if args.duration else float("inf")):
                            async for _ in signals:
                                break
                    stopping.set()
                    # the callers still in the system may finish for a moment; then everything stops
                    with trio.move_on_after(args.grace):
                        while daemon.live_calls():
                            await trio.sleep(0.2)
                    sims.cancel_scope.cancel()

                async def discard_phone_events() -> None:  # the phones need none of them
                    async for _ in phones.events():
                        pass

                sims.start_soon(discard_phone_events)
                sims.start_soon(arrivals)
                sims.start_soon(stop_after)
        finally:
            end = time.time()
            cut = daemon.live_calls()
            daemon.request_stop(drain=False)
    phones.close()
    s = summary(config.storage.url, start, end)
    print_summary(s, end - start, out)
    if cut:
        print(f"({cut} call(s) still live at the end were hung up by the demo; those waiting in a queue "
              "count as abandoned)", file=out, flush=True)
    return 0


def _speech_file(config: DaemonConfig) -> Path | None:
    """Something to say: a prompt the IVR build made (any spoken WAV does)."""
    for base in (ROOT / "ivr" / "prompts" / "en", ROOT / "ivr" / "prompts"):
        for name in ("main_menu.wav", "welcome.wav"):
            if (base / name).is_file():
                return base / name
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=0, help="seconds to run, then print the summary and exit "
                   "(default: until Ctrl-C)")
    p.add_argument("--callers-per-minute", type=float, default=12.0,
                   help="simulated callers per minute (Poisson); 0: none, for outside traffic (default 12)")
    p.add_argument("--agents", type=int, default=5, choices=range(51), metavar="N",
                   help="simulated agents 9001.. that register and answer (0-50, default 5)")
    p.add_argument("--supervisor", action="store_true",
                   help=f"also a simulated supervisor phone ({SUPERVISOR}) that answers supervisor.listen calls")
    p.add_argument("--talk", type=float, default=25.0, help="agents' mean talk time, seconds (default 25)")
    p.add_argument("--patience", type=float, default=40.0,
                   help="callers' mean patience in the queue before they hang up, seconds (default 40)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulation (default 1)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="after --duration no new callers; seconds the live calls may take to finish (default 30)")
    # The fixed points of CONTRACT.md; tests move them so they can run beside another demo.
    p.add_argument("--sip", default="127.0.0.1:5060", help=argparse.SUPPRESS)
    p.add_argument("--http", default="127.0.0.1:8080", help=argparse.SUPPRESS)
    p.add_argument("--state-dir", default="var", help=argparse.SUPPRESS)
    p.add_argument("--rtp-ports", default="20000-29999", help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    lo, hi = (int(x) for x in args.rtp_ports.split("-", 1))
    try:
        parse_host_port(args.sip, "--sip")
        doc = demo_config(state=state, sip=args.sip, http=args.http, agents=max(args.agents, 1),
                          rtp_ports=(lo, hi))
        config = config_from_mapping(doc, source="hotline demo")
    except ConfigError as exc:
        print(f"hotline demo: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    os.environ.setdefault("HOTLINE_DEMO", "1")
    try:
        return trio.run(run_demo, args, config)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
