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
(:mod:`orchestrator.daemon.simulate`). A line is printed per finished call,
from its call record in the event log.

After ``--duration`` seconds new callers stop and the calls in progress may
finish (``--grace``); Ctrl-C or SIGTERM stops at once (the daemon drains for
a few seconds, then hangs up). Either way the summary is computed from the
event log (the numbers ``hotline report queues`` gives for the same window):
calls offered, answered, abandoned, service level, ASA and AHT. Exit status
0.

``--callers-per-minute 0``: agents but no simulated callers, for outside
traffic (a softphone dialling 1000 or 2000).

The configuration is built here as a mapping (:func:`demo_config`), not read
from a file: the fixed points are part of the contract, and ``--sip``,
``--http``, ``--state-dir`` and ``--agents`` (tests, benchmarks) change them
in one place. The mapping is exactly what a TOML file for ``hotline serve``
holds (``etc/hotline.toml`` documents every key), and it goes through the
same validation (:func:`~orchestrator.daemon.config.config_from_mapping`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from .config import ConfigError, DaemonConfig, config_from_mapping, parse_host_port
from .logs import setup_logging

__all__ = ["CallPrinter", "demo_config", "main", "summary"]

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
WRAPUP = 5.0


def demo_password(agent: str) -> str:
    return f"demo-{agent}"


def demo_config(*, state: Path, sip: str = "127.0.0.1:5060", http: str = "127.0.0.1:8080",
                flows: Path | None = None, agents: int = 5, rtp_ports: tuple[int, int] = (20000, 29999),
                wrapup: float = WRAPUP) -> dict[str, Any]:
    """The embedded default configuration, as the TOML document it stands for.

    Recording: every call, from the start (the IVR included), stereo WAV, kept
    7 days, with post-call analytics; unencrypted (a demo has no key file).
    """
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


# -- a line per call --------------------------------------------------------------------------------

class CallPrinter:
    """A line per finished call, from its call record (:mod:`orchestrator.store.cdr`).

    It listens on the daemon's event tap for the end of each call and the IVR's
    digits (in the order pressed), then reads the call's record from the event
    log once the ACD's end of the call is in it too (a moment later), through a
    read-only handle of its own: the lines of the last calls, which end while
    the daemon stops, are printed after the daemon's log has closed.
    """

    def __init__(self, url: str, out: Any = None, *, settle: float = 0.3) -> None:
        self.url = url
        self.out = out or sys.stdout
        self.settle = settle
        self.digits: dict[str, list[str]] = {}
        self.printed = 0
        self._send, self._receive = trio.open_memory_channel[tuple[float, str]](math.inf)
        self.done = trio.Event()

    def __call__(self, event: dict) -> None:  # a tap listener: cheap and synchronous
        call = event.get("call")
        if not isinstance(call, str):
            return
        kind = event.get("type")
        if kind == "call.ivr" and event.get("event") == "digits":
            self.digits.setdefault(call, []).append(f"{event.get('node')}={event.get('digits')}")
        elif kind == "call.ended" and "cause" in event:  # the B2BUA's end (the ACD's follows)
            self._send.send_nowait((trio.current_time() + self.settle, call))

    def close(self) -> None:
        """No more calls: print what is pending, then :attr:`done` is set."""
        self._send.close()

    async def run(self, flush: Callable[[], Awaitable[None]], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from orchestrator.store import EventLog

        reader = None
        try:
            task_status.started()
            async with self._receive:
                batch: list[str] = []
                async for due, call in self._receive:
                    await trio.sleep_until(due)
                    batch.append(call)
                    while True:  # everything else already due goes with this read
                        try:
                            due, call = self._receive.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        await trio.sleep_until(due)
                        batch.append(call)
                    if reader is None:
                        reader = await trio.to_thread.run_sync(lambda: EventLog(self.url, read_only=True))
                    await flush()
                    for attempt in range(5):
                        records = await trio.to_thread.run_sync(_records, reader, list(batch))
                        if all(r is not None and not r.open for r in records) or attempt == 4:
                            break
                        await trio.sleep(0.4)
                        await flush()
                    for call, record in zip(batch, records):
                        self._print(call, record)
                    batch = []
        finally:
            if reader is not None:
                reader.close()
            self.done.set()

    def _print(self, call: str, r: Any) -> None:
        self.printed += 1
        digits = self.digits.pop(call, [])
        parts = [time.strftime("%H:%M:%S", time.localtime(r.ended_at if r and r.ended_at else time.time())),
                 f"call {call}"]
        if r is None:
            print("  ".join(parts + ["(no call record)"]), file=self.out, flush=True)
            return
        from .simulate import user_of

        parts.append(f"from {user_of(r.caller) or '?'}")
        parts.append(f"dialled {r.callee}")
        if digits:
            parts.append("ivr " + " ".join(digits))
        if r.queue:
            parts.append(f"queue {r.queue}")
        if r.agent:
            parts.append(f"agent {r.agent}")
        if r.wait is not None:
            parts.append(f"waited {r.wait:.0f}s")
        if r.agent and r.talk is not None:
            parts.append(f"talked {r.talk:.0f}s")
        outcome = r.outcome or "ended"
        if outcome == "failed" and not r.queue:
            outcome = "ended in the IVR" if r.ivr is not None else "failed"
        if outcome == "transferred" and r.transferred_to:
            outcome = f"transferred to {r.transferred_to}"
        if r.end_cause == "shutdown" or r.end_reason == "shutdown":
            outcome += " (cut: the demo stopped)"
        parts.append(outcome)
        print("  ".join(parts), file=self.out, flush=True)


def _records(reader: Any, calls: list[str]) -> list[Any]:
    return [reader.call_record_sync(c) for c in calls]


# -- the summary ------------------------------------------------------------------------------------

def summary(log_url: str, start: float, end: float, *, sl_threshold: dict[str, float] | None = None,
            short_abandon: dict[str, float] | None = None) -> dict[str, Any]:
    """Offered, answered, abandoned, SL, ASA, AHT over [start, end) from the event log.

    The per-queue numbers are :func:`orchestrator.report.queue_report` (what
    ``hotline report queues`` prints); the totals add them up with the same
    definitions (CONTRACT.md): service level = answered within T / (answered
    + abandoned after T, short abandons excluded), callbacks aside; ASA over
    the calls answered live; AHT = talk + hold + wrap-up over handled calls.
    """
    from orchestrator import report
    from orchestrator.store import EventLog

    sl_threshold = {"*": 20.0, **(sl_threshold or {})}
    short_abandon = {"*": 5.0, **(short_abandon or {})}
    with EventLog(log_url, read_only=True) as events:
        rows = report.queue_report(events, start=start, end=end, sl_threshold=sl_threshold,
                                   short_abandon=short_abandon)
        records = events.call_records_sync(since=start, until=end, limit=None)
    offered = sum(r.queued for r in rows)
    answered = sum(r.answered for r in rows)
    abandoned = sum(r.abandoned for r in rows)
    live = {r.queue: r.answered - r.callbacks_answered for r in rows}  # answered live, as SL and ASA count them
    within = sum(r.answered_within for r in rows)
    sl_den = sum(live.values()) + sum(r.abandoned_after for r in rows)
    waited = sum(r.asa * live[r.queue] for r in rows if r.asa is not None)
    handled = sum(r.handled for r in rows if r.aht is not None)
    handling = sum(r.aht * r.handled for r in rows if r.aht is not None)
    thresholds = {r.sl_threshold for r in rows} or set(sl_threshold.values())
    return {"offered": offered, "answered": answered, "abandoned": abandoned,
            "short_abandoned": sum(r.short_abandoned for r in rows),
            "service_level": within / sl_den if sl_den else None,
            "sl_seconds": thresholds.pop() if len(thresholds) == 1 else None,
            "asa": waited / sum(live.values()) if sum(live.values()) else None,
            "aht": handling / handled if handled else None,
            "calls": len(records), "never_queued": sum(1 for c in records if c.queued_at is None),
            "cut": sum(1 for c in records if _cut(c)),
            "cut_waiting": sum(1 for c in records if _cut(c) and c.outcome == "abandoned"),
            "queues": {r.queue: {"offered": r.queued, "answered": r.answered, "abandoned": r.abandoned,
                                 "service_level": r.service_level, "asa": r.asa, "aht": r.aht} for r in rows}}


def _cut(record: Any) -> bool:
    """Hung up by the daemon as the demo stopped (not by a caller or an agent)."""
    return record.end_cause == "shutdown" or record.end_reason == "shutdown"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}s"


def print_summary(s: dict[str, Any], start: float, end: float, *, db: str, sim: Any = None, out: Any = None) -> None:
    out = out or sys.stdout
    sl = f"service level ({s['sl_seconds']:g} s)" if s["sl_seconds"] is not None else "service level"
    if sim is not None and sim.calls_placed:
        print(f"\nthe simulation's own count: {sim.calls_placed} callers dialled, {sim.caller_hangups} hung up "
              f"waiting in a queue, {sim.ivr_giveups} gave up in the IVR, {sim.calls_failed} refused; "
              f"agents answered {sim.agent_answers}; {sim.digits_sent} RFC 4733 digits sent"
              + (f"; {sim.caller_errors} simulated caller(s) FAILED (see the log)" if sim.caller_errors else ""),
              file=out)
    print(f"\nhotline demo: {end - start:.0f} s, {s['calls']} calls in ({s['never_queued']} never reached a queue). "
          f"From the event log:", file=out)
    print(f"calls offered {s['offered']}  answered {s['answered']}  abandoned {s['abandoned']}  "
          f"{sl} {_pct(s['service_level'])}  ASA {_secs(s['asa'])}  AHT {_secs(s['aht'])}", file=out)
    for queue, q in sorted(s["queues"].items()):
        print(f"  {queue:<8} offered {q['offered']:>3}  answered {q['answered']:>3}  abandoned {q['abandoned']:>3}  "
              f"service level {_pct(q['service_level']):>4}  ASA {_secs(q['asa']):>6}  AHT {_secs(q['aht']):>6}",
              file=out)
    if s["cut"]:
        waiting = (f"; {s['cut_waiting']} of them were waiting in a queue and count as abandoned"
                   if s["cut_waiting"] else "")
        print(f"  ({s['cut']} call(s) still up when the demo stopped were hung up by it{waiting})", file=out)
    if s["short_abandoned"]:
        print(f"  ({s['short_abandoned']} short abandon(s), under 5 s, are left out of the service level)", file=out)
    print(f"the same numbers: hotline report queues --db {db} --from @{start:.0f} --to @{math.ceil(end)}", file=out)
    out.flush()


# -- running it -------------------------------------------------------------------------------------

async def run_demo(args: argparse.Namespace, config: DaemonConfig, out: Any = None) -> int:
    from mediacore.engine import Engine
    from orchestrator.sip import Address

    from .serve import Daemon, ready_line
    from .simulate import (
        CallWatch,
        SimAgent,
        SimCaller,
        SimStats,
        SimSupervisor,
        caller_plans,
        conversation_audio,
        poisson_gaps,
    )

    out = out or sys.stdout
    state = Path(args.state_dir)
    rng = random.Random(args.seed)
    stats = SimStats()
    stopping = trio.Event()      # no new callers
    interrupted = trio.Event()   # Ctrl-C / SIGTERM
    daemon_done = trio.Event()
    daemon = Daemon(config, handle_signals=False)
    printer = CallPrinter(config.storage.url, out)
    watch = CallWatch()
    start = time.time()

    async def run_daemon(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await daemon.run(task_status=task_status)
        finally:
            daemon_done.set()

    async def flush_log() -> None:
        if daemon.log is not None and not daemon.log.closed:
            with contextlib.suppress(Exception):  # closing under us: everything is committed then
                await daemon.log.flush()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as top:
            async def on_signals() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if not interrupted.is_set():
                        interrupted.set()
                        print(f"\n{name}: stopping (calls still up get {config.drain_timeout:g} s, then are hung up; "
                              "again to hang up now)", file=out, flush=True)
                    else:
                        daemon.request_stop(drain=False)

            top.start_soon(on_signals)
            audio = await trio.to_thread.run_sync(conversation_audio, state / "demo-speech")
            agent_speech, caller_speech = audio if audio is not None else (_prompt_file(), _prompt_file())
            info = await top.start(run_daemon)
            daemon.tap.listeners += [watch, printer]
            await top.start(printer.run, flush_log)
            print(ready_line(info), flush=True, file=out)
            print(f"admin token: {info.admin_token}", flush=True, file=out)
            _, sip_hostport = info.sip[0].split(" ", 1)
            sip_host, sip_port = sip_hostport.rsplit(":", 1)
            hotline = Address(sip_host, int(sip_port), "UDP")
            # the simulated phones' media engine: one thread, ports of its own beside the daemon's
            lo, hi = config.rtp.ports
            phones = Engine(port_range=(hi + 1, min(65535, hi + 1 + 8000)) if hi < 56000 else (lo - 8001, lo - 1),
                            threads=1, stats_interval=0)
            try:
                async with trio.open_nursery() as sims:
                    common = {"engine": phones, "hotline": hotline, "domain": config.sip.domain, "stats": stats}
                    for agent in config.agents[: args.agents]:
                        a = SimAgent(agent.id, demo_password(agent.id), rng=random.Random(rng.random()),
                                     mean_talk=args.talk, speech=agent_speech, **common)
                        await sims.start(a.run)
                    print(_traffic_line(args, stats.registered), flush=True, file=out)
                    if args.supervisor:  # answers every monitor call and stays on it until Hotline hangs up
                        supervisor = SimSupervisor(SUPERVISOR, demo_password(SUPERVISOR), speech=None, **common)
                        await sims.start(supervisor.run)
                        print(f"supervisor phone {SUPERVISOR} registered", flush=True, file=out)

                    async def one_caller(plan: Any) -> None:
                        caller = SimCaller(plan, watch=watch, speech=caller_speech, **common)
                        try:
                            async with trio.open_nursery() as n:
                                await n.start(caller.run)
                                try:
                                    await caller.call()
                                finally:
                                    n.cancel_scope.cancel()
                        except Exception:  # one simulated caller's trouble is logged, the demo goes on
                            stats.caller_errors += 1
                            log.exception("demo caller %s failed", plan.caller_id)

                    async def arrivals() -> None:
                        plans = caller_plans(random.Random(rng.random()), mean_patience=args.patience)
                        for gap in poisson_gaps(random.Random(rng.random()), args.callers_per_minute):
                            with trio.move_on_after(gap):
                                await stopping.wait()
                            if stopping.is_set():
                                return
                            sims.start_soon(one_caller, next(plans))

                    async def discard_phone_events() -> None:  # the phones need none of them
                        async for _ in phones.events():
                            pass

                    sims.start_soon(discard_phone_events)
                    sims.start_soon(arrivals)
                    with trio.move_on_after(args.duration if args.duration > 0 else math.inf):
                        await interrupted.wait()
                    stopping.set()
                    if not interrupted.is_set():
                        await _grace(args, daemon, interrupted, out)
                    # the daemon hangs up what is left; the phones are still there to answer its BYEs
                    daemon.request_stop(drain=interrupted.is_set())
                    await daemon_done.wait()
                    sims.cancel_scope.cancel()
            finally:
                daemon.request_stop(drain=False)
                with trio.CancelScope(shield=True):
                    await daemon_done.wait()
                    printer.close()
                    await printer.done.wait()
                phones.close()
                top.cancel_scope.cancel()
        end = time.time()
        sl = {q.name: q.sl_threshold for q in config.queues}
        short = {q.name: q.short_abandon for q in config.queues}
        s = await trio.to_thread.run_sync(lambda: summary(config.storage.url, start, end, sl_threshold=sl,
                                                          short_abandon=short))
        print_summary(s, start, end, db=config.storage.url, sim=stats, out=out)
    return 0


async def _grace(args: argparse.Namespace, daemon: Any, interrupted: trio.Event, out: Any) -> None:
    """After --duration: the calls in progress may finish for up to --grace seconds (Ctrl-C: now)."""
    live = daemon.live_calls()
    if not live or args.grace <= 0:
        return
    print(f"{args.duration:g} s: no new callers; {live} call(s) in progress may finish "
          f"(up to {args.grace:g} s, Ctrl-C to stop now)", file=out, flush=True)
    with trio.move_on_after(args.grace):
        while daemon.live_calls() and not interrupted.is_set():
            await trio.sleep(0.2)


def _traffic_line(args: argparse.Namespace, registered: int) -> str:
    line = f"{registered} simulated agents registered"
    if args.callers_per_minute <= 0:
        return line + "; no simulated callers (dial 1000, 2000 or 2001 yourself)"
    handle = args.talk + WRAPUP + 2.0  # talk, wrap-up and about 2 s of ringing
    erlangs = args.callers_per_minute * handle / 60.0
    return (line + f"; callers: {args.callers_per_minute:g}/min (Poisson), mean talk {args.talk:g} s, "
            f"wrap-up {WRAPUP:g} s, mean patience {args.patience:g} s: about {erlangs:.1f} Erlangs of work "
            f"(--seed {args.seed})")


def _prompt_file() -> Path | None:
    """Something to say when espeak-ng is missing: a prompt the IVR build made, if any."""
    for name in ("main_menu.wav", "welcome.wav"):
        if (ROOT / "ivr" / "prompts" / "en" / name).is_file():
            return ROOT / "ivr" / "prompts" / "en" / name
    return None


def _ensure_ivr_prompts() -> None:
    """`make demo` builds the IVR prompts; `hotline demo` alone builds them if they are missing."""
    if (ROOT / "ivr" / "prompts" / "en" / "main_menu.wav").is_file() or not (ROOT / "ivr" / "build_prompts.py").is_file():
        return
    print("hotline demo: building the IVR prompts (espeak-ng, sox)...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, str(ROOT / "ivr" / "build_prompts.py")], cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"hotline demo: could not build the IVR prompts ({exc}); the IVR will be silent "
              "(make ivr-prompts)", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hotline demo",
        description="The embedded call centre (SIP 127.0.0.1:5060, state in ./var, the demo IVR on 1000, queues "
                    "on 2000 and 2001) with simulated agents 9001.. and callers, all real SIP user agents; a line "
                    "per call, and a summary from the event log at the end.",
        epilog="Wallboard: http://127.0.0.1:8080/ (the URL with its token is printed at start). Exit status: 0 "
               "after the summary, 1 if the daemon could not start (a port in use), 2 on bad arguments.")
    p.add_argument("--duration", type=float, default=0, metavar="S",
                   help="seconds of simulated traffic, then the summary and exit (default: until Ctrl-C)")
    p.add_argument("--callers-per-minute", type=float, default=12.0, metavar="N",
                   help="simulated callers per minute (Poisson); 0: none, for outside traffic (default 12)")
    p.add_argument("--agents", type=int, default=5, choices=range(51), metavar="N",
                   help="simulated agents 9001.. that register and answer (0-50, default 5)")
    p.add_argument("--supervisor", action="store_true",
                   help=f"also a simulated supervisor phone ({SUPERVISOR}) that answers supervisor.listen calls")
    p.add_argument("--talk", type=float, default=20.0, metavar="S",
                   help="agents' mean talk time, seconds (exponential; default 20)")
    p.add_argument("--patience", type=float, default=30.0, metavar="S",
                   help="callers' mean patience in a queue before they hang up, seconds (exponential; default 30)")
    p.add_argument("--seed", type=int, help="random seed of the simulation: the same seed, the same callers "
                   "and choices (default: a new one, printed at start)")
    p.add_argument("--grace", type=float, default=20.0, metavar="S",
                   help="after --duration no new callers; seconds the calls in progress may take to finish, "
                        "then they are hung up (default 20)")
    # The fixed points of CONTRACT.md; tests and benchmarks move them so they can run beside another demo.
    p.add_argument("--sip", default="127.0.0.1:5060", help=argparse.SUPPRESS)
    p.add_argument("--http", default="127.0.0.1:8080", help=argparse.SUPPRESS)
    p.add_argument("--state-dir", default="var", help=argparse.SUPPRESS)
    p.add_argument("--rtp-ports", default="20000-29999", help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.duration < 0 or args.callers_per_minute < 0 or args.talk < 0 or args.patience < 0 or args.grace < 0:
        print("hotline demo: --duration, --callers-per-minute, --talk, --patience and --grace must be >= 0",
              file=sys.stderr)
        return 2
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    try:
        lo, hi = (int(x) for x in args.rtp_ports.split("-", 1))
        parse_host_port(args.sip, "--sip")
        doc = demo_config(state=state, sip=args.sip, http=args.http, agents=max(args.agents, 1),
                          rtp_ports=(lo, hi))
        config = config_from_mapping(doc, source="hotline demo")
    except (ConfigError, ValueError) as exc:
        print(f"hotline demo: {exc}", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 100_000)
    setup_logging(args.log_level)
    _ensure_ivr_prompts()
    try:
        return trio.run(run_demo, args, config)
    except KeyboardInterrupt:  # a Ctrl-C before the demo listened for it
        return 0
    except Exception as group:  # one line and exit 1, as hotline serve does
        from .serve import leaf_error

        exc = leaf_error(group)
        hint = " (is another demo or SIP server running? see ss -lunpt)" if isinstance(exc, OSError) else ""
        print(f"hotline demo: failed: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        if not isinstance(exc, OSError):
            log.critical("failed", exc_info=(type(exc), exc, exc.__traceback__))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
