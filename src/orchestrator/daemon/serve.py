"""``hotline serve --config FILE``: the daemon in the foreground.

One top-level nursery (DESIGN rule 6) holds every service; each is started
with ``nursery.start`` in its own cancel scope, so the daemon says it is
ready only once everything listens, and stops the services in an order that
loses nothing. Start-up, in order:

1. the configuration is read and validated whole (an error names the file,
   the key and what is wrong; exit 2);
2. the event log opens; its crash recovery gives every call this node had
   started and not ended a record (``call.ended``/``call.abandoned`` with
   reason ``node_restart``) and logs off its agents;
3. the recording service starts and recovers its spool: recordings of calls
   that were in progress when the process died are repaired, encrypted and
   linked to their call records;
4. the registrar restores its stored bindings; the call centre (ACD, IVR),
   the B2BUA and the media engine's event pump start; agents with ``login``
   in the config are logged in;
5. the control plane listens (Unix socket, HTTP: wallboard, ``/rpc``,
   ``/metrics``, ``/healthz``), then SIP listens last;
6. one ready line on stdout (listen addresses, the wallboard URL) and a JSON
   ``ready`` log line; ``READY=1`` to systemd when ``$NOTIFY_SOCKET`` is set.

Signals: **SIGTERM** (and SIGINT) drain - new INVITEs are answered 503 with
Retry-After, live calls may finish until ``[daemon] drain_timeout``, then the
rest are hung up; recordings are finished, the event log is flushed, and the
process exits 0. A second SIGTERM/SIGINT cuts the wait short. **SIGHUP**
re-reads the file and applies IVR flows (atomically: live calls keep their
version), new queues, new and changed agents, accounts and the dial plan;
the result (or the error, and nothing applied) is logged, audited and
appended to the event log as ``config.reloaded``.

Exit status: 0 stopped cleanly; 1 failed to start or failed while running
(the JSON log says why); 2 bad usage or an invalid configuration.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .config import ConfigError, DaemonConfig, load_config
from .glue import (AlwaysOpenRegistry, CallApi, CallEvents, DaemonLocator, EventTap, SupervisorApi,
                   draining_handler, wait_until)
from .logs import setup_logging

__all__ = ["Daemon", "DaemonInfo", "DaemonStatistics", "ReloadReport", "main", "sd_notify"]

log = logging.getLogger("hotline.daemon")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def sd_notify(state: str) -> bool:
    """Tell systemd (``Type=notify``) about ``state`` (``READY=1``...); False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False


def _run_id() -> str:
    """Part of every call id: unique per start, so call ids never repeat across restarts."""
    digits, n = "0123456789abcdefghijklmnopqrstuvwxyz", int(time.time())
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out + secrets.token_hex(1)


@dataclass(frozen=True, kw_only=True)
class DaemonInfo:
    """What ``Daemon.run`` reports once everything listens."""

    node: str
    sip: tuple[str, ...]            # "udp 127.0.0.1:5060", ...
    sip_port: int
    http_port: int | None
    wallboard_url: str | None
    control_socket: str | None
    admin_token: str
    token_file: str
    recovered_calls: tuple[str, ...]
    recovered_recordings: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReloadReport:
    """What a SIGHUP reload did (``ok`` False: the file was refused and nothing changed)."""

    ok: bool
    error: str | None = None
    flows: dict[str, list[str]] = field(default_factory=dict)
    queues_added: tuple[str, ...] = ()
    agents_added: tuple[str, ...] = ()
    agents_updated: tuple[str, ...] = ()
    accounts_changed: tuple[str, ...] = ()
    dialplan_changed: bool = False
    needs_restart: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "flows": self.flows, "queues_added": list(self.queues_added),
                "agents_added": list(self.agents_added), "agents_updated": list(self.agents_updated),
                "accounts_changed": list(self.accounts_changed), "dialplan_changed": self.dialplan_changed,
                "needs_restart": list(self.needs_restart)}


@dataclass(frozen=True, kw_only=True)
class DaemonStatistics:
    node: str
    started_at: float
    uptime: float
    draining: bool
    reloads: int
    reloads_refused: int
    live_calls: int
    calls: Any
    sip: Any
    callcentre: Any
    registrar: Any
    recording: Any
    store: Any
    engine: Any


class Daemon:
    """Hotline assembled from a :class:`DaemonConfig` (see the module docstring).

    ``path``: the file it came from (SIGHUP re-reads it). ``handle_signals``:
    install the SIGTERM/SIGINT/SIGHUP handlers (the main thread only).
    """

    def __init__(self, config: DaemonConfig, *, path: str | Path | None = None, handle_signals: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.path = Path(path) if path is not None else None
        self.handle_signals = handle_signals
        self.clock = clock
        self.draining = False
        self.started_at = clock()
        self.run_id = _run_id()
        self.reloads = self.reloads_refused = 0
        self._stop = trio.Event()
        self._hurry = trio.Event()
        self._scopes: dict[str, trio.CancelScope] = {}
        self._done: dict[str, trio.Event] = {}
        self.tap = EventTap()
        # set in run()
        self.engine: Any = None
        self.log: Any = None
        self.endpoint: Any = None
        self.manager: Any = None
        self.centre: Any = None
        self.registry: Any = None
        self.registrar: Any = None
        self.directory: Any = None
        self.recording: Any = None
        self.plane: Any = None
        self.info: DaemonInfo | None = None
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------ control
    def request_stop(self, *, drain: bool = True) -> None:
        """Begin the shutdown (SIGTERM); ``drain=False`` (or a second request) skips the wait for calls."""
        if self._stop.is_set() or not drain:
            self._hurry.set()
        self._stop.set()

    def accepting(self) -> bool:
        return not self.draining

    # ------------------------------------------------------------------ running
    async def _scoped(self, name: str, fn: Callable[..., Awaitable[Any]], *,
                      task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        done = self._done[name] = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self._scopes[name] = scope
                await fn(task_status=task_status)
        finally:
            done.set()

    async def _start(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Any:
        assert self._nursery is not None
        return await self._nursery.start(functools.partial(self._scoped, name, fn))

    async def _stop_service(self, name: str) -> None:
        scope, done = self._scopes.get(name), self._done.get(name)
        if scope is not None:
            scope.cancel()
        if done is not None:
            await done.wait()

    async def run(self, *, task_status: trio.TaskStatus[DaemonInfo] = trio.TASK_STATUS_IGNORED) -> int:
        """Run until stopped (:meth:`request_stop`, SIGTERM); returns the exit status (0)."""
        from mediacore.engine import Engine
        from orchestrator.store import EventLog

        cfg = self.config
        _make_dirs(cfg)
        self.log = await trio.to_thread.run_sync(functools.partial(EventLog, cfg.storage.url, node=cfg.node))
        recovery = self.log.last_recovery
        if recovery is not None and recovery.calls:
            log.warning("event log: %d call(s) were live when this node stopped; each now has a record",
                        len(recovery.calls), extra={"calls": list(recovery.calls), "died_at": recovery.died_at})
        try:
            self.engine = Engine(bind_host=cfg.rtp.address, port_range=cfg.rtp.ports, threads=cfg.rtp.threads)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    if self.handle_signals:
                        await nursery.start(self._signals)
                    info = await self._start_services(recovery)
                    self.info = info
                    task_status.started(info)
                    await self._stop.wait()
                    await self._shutdown()
                    nursery.cancel_scope.cancel()
            finally:
                self._nursery = None
                self.engine.close()
        finally:
            with trio.CancelScope(shield=True):
                await self.log.aclose()
        log.info("stopped", extra={"node": cfg.node})
        return EXIT_OK

    async def _start_services(self, recovery: Any) -> DaemonInfo:
        from orchestrator.acd import Acd
        from orchestrator.callcentre import CallCentre, QueuePrompts, build_queue_prompts
        from orchestrator.calls import CallManager, CallManagerConfig, RegistrarAuthenticator
        from orchestrator.control import EventHub, FlowRegistryIvr, Services, StoreAudit, StoreReports
        from orchestrator.control.plane import ControlPlane
        from orchestrator.ivr import FlowRegistry
        from orchestrator.ivr.runner_http import CrmConfig
        from orchestrator.recording import RecordingService
        from orchestrator.registrar import (
            Authenticator,
            DigestAuth,
            DigestConfig,
            Directory,
            LocationService,
            Registrar,
            RegistrarConfig,
            RegistrarService,
            SqliteBindingStore,
            TrunkTable,
        )
        from orchestrator.transport import EndpointConfig, RateLimit, SipEndpoint, StreamTransport, UdpTransport
        from orchestrator.transport.tls import TlsConfig

        cfg = self.config
        sip = cfg.sip
        # -- SIP endpoint (listens last) ------------------------------------------------------------
        transports: list[Any] = []
        for host, port in sip.listen:
            if "udp" in sip.transports:
                transports.append(UdpTransport(host, port))
            if "tcp" in sip.transports:
                transports.append(StreamTransport(host, port))
        if sip.tls is not None:
            tls = TlsConfig(certificate=sip.tls.certificate, private_key=sip.tls.private_key,
                            ca_file=sip.tls.ca_file, require_client_certificate=sip.tls.require_client_certificate)
            transports.append(StreamTransport(sip.tls.listen[0], sip.tls.listen[1], tls=tls))
        trusted = {src for t in cfg.call_trunks for src in t.sources}
        trusted |= {str(net.network_address) for t in cfg.trunks for net in t.networks if net.num_addresses == 1}
        self.endpoint = SipEndpoint(transports, config=EndpointConfig(
            user_agent=sip.user_agent, advertised_host=sip.advertised_host,
            rate_limit=RateLimit() if sip.rate_limit else None, trusted_sources=frozenset(trusted),
            shed_queue_delay=sip.max_queue_delay + 0.1 if sip.max_queue_delay else None))
        # -- registrar and authentication ------------------------------------------------------------
        self.directory = Directory(cfg.accounts)
        auth = DigestAuth(self.directory, DigestConfig(realm=cfg.realm, secret=secrets.token_bytes(32)))
        store = None
        if cfg.storage.bindings is not None:
            cfg.storage.bindings.parent.mkdir(parents=True, exist_ok=True)
            store = await trio.to_thread.run_sync(SqliteBindingStore, cfg.storage.bindings)
        registrar = Registrar(RegistrarConfig(domains=sip.domains, min_expires=sip.min_expires,
                                              max_expires=sip.max_expires, default_expires=sip.default_expires),
                              auth, LocationService(store=store))
        authenticator = Authenticator(auth, TrunkTable(cfg.trunks))
        # -- IVR flows, queue prompts, the call centre ----------------------------------------------
        hub = EventHub(clock=self.clock)
        self.tap = EventTap(hub, on_answered=self._agent_answered)
        self.registry = AlwaysOpenRegistry() if cfg.ivr.always_open else FlowRegistry()
        if cfg.flows is not None:
            self.registry.replace(cfg.flows)
        prompts = QueuePrompts()
        if cfg.ivr.prompts is not None:
            if cfg.ivr.build_prompts:
                prompts = await trio.to_thread.run_sync(build_queue_prompts, cfg.ivr.prompts)
            else:
                beep = cfg.ivr.prompts / "beep.wav"
                prompts = QueuePrompts(directory=cfg.ivr.prompts, music=dict(cfg.ivr.music),
                                       beep=str(beep) if beep.is_file() else None)
            if cfg.ivr.music:
                prompts = QueuePrompts(directory=prompts.directory, music={**prompts.music, **cfg.ivr.music},
                                       beep=prompts.beep)
        crm = CrmConfig(jsonrpc_url=cfg.ivr.crm_url, http_method=cfg.ivr.crm_method, headers=dict(cfg.ivr.crm_headers))
        self.centre = CallCentre(acd=Acd(list(cfg.queues), list(cfg.agents)), registry=self.registry, log=self.log,
                                 bus=self.tap, prompts=prompts, crm=crm, recordings=cfg.ivr.recordings,
                                 surveys=dict(cfg.ivr.surveys) or None, barge_in_grace=cfg.ivr.barge_in_grace)
        self.registrar = RegistrarService(registrar, sink=self.centre.registrations)
        # -- the B2BUA -----------------------------------------------------------------------------
        call_events = CallEvents(self.centre.call_events)
        self.manager = CallManager(
            self.endpoint, self.engine, router=cfg.dialplan.build(),
            locator=DaemonLocator(self.registrar, [sip.domain, *sorted(sip.domains - {sip.domain})],
                                  router=lambda: self.manager.router,
                                  trunks=lambda: {t.name: t for t in self.manager.config.trunks}),
            authenticator=RegistrarAuthenticator(authenticator), handlers=self.centre.handlers,
            events=call_events,
            config=CallManagerConfig(
                domain=sip.domain, media_policy=cfg.media_policy(), media_address=cfg.rtp.advertised_address,
                ring_timeout=sip.ring_timeout, media_timeout=sip.media_timeout, max_calls=sip.max_calls,
                max_cps=sip.max_cps, max_loop_lag=sip.max_loop_lag, max_queue_delay=sip.max_queue_delay,
                user_agent=sip.user_agent, trunks=tuple(cfg.call_trunks), node_id=f"{cfg.node}-{self.run_id}"))
        self.centre.bind(self.manager)
        self.endpoint.handler = draining_handler(self.registrar.handler(self.manager.handle), lambda: self.draining,
                                                 retry_after=max(5, int(cfg.drain_timeout)))
        # -- recording -----------------------------------------------------------------------------
        if cfg.recording is not None:
            self.recording = RecordingService(cfg.recording, engine=self.engine, calls=self.manager, log=self.log,
                                              publish=self.tap.publish, node=cfg.node)
            call_events.others.append(self.recording.handle_call_event)
        # -- the control plane -----------------------------------------------------------------------
        reports = StoreReports(self.log)
        services = Services(agents=self.centre.acd, queues=self.centre.acd,
                            calls=CallApi(self.manager, tap=self.tap, record=self.log.append,
                                          accepting=self.accepting),
                            recordings=self.recording, supervisor=SupervisorApi(self.manager),
                            ivr=FlowRegistryIvr(self.registry, cfg.ivr.flows) if cfg.ivr.flows is not None else None,
                            cdr=reports, reports=reports, system=self)
        self.plane = ControlPlane(cfg.control, services, hub=hub, audit=StoreAudit(self.log), clock=self.clock)
        health = self.plane.health
        health.add("accepting_calls", self.accepting)
        health.add("event_log", lambda: not self.log.closed)
        health.add("media_engine", lambda: not self.engine.closed)
        health.add("sip", lambda: self._done.get("sip") is not None and not self._done["sip"].is_set())

        # -- start, in order ----------------------------------------------------------------------
        recovered: tuple[str, ...] = ()
        if self.recording is not None:
            await self._start("recording", self.recording.run)
            report = await self.recording.recover()
            recovered = report.recovered
            if report.recovered or report.failed:
                log.warning("recordings recovered after a stop: %d ready, %d failed", len(report.recovered),
                            len(report.failed), extra={"recovered": list(report.recovered),
                                                       "failed": list(report.failed)})
        await self._start("registrar", self.registrar.run)
        await self._start("callcentre", self.centre.run)
        await self._start("calls", functools.partial(self.manager.run, consume_engine_events=False))
        assert self._nursery is not None
        self._nursery.start_soon(self._engine_events)
        for agent, device in self.config.logins.items():
            try:
                self.centre.acd.login(agent, device)
            except Exception as exc:  # noqa: BLE001 - a refused login is logged, the daemon runs on
                log.warning("agent %s: login on %s refused: %s", agent, device, exc, extra={"agent": agent})
        plane = await self._start("control", self.plane.run)
        await self._start("sip", self.endpoint.run)
        self._nursery.start_soon(self._housekeeping)

        listening = []
        for t in self.endpoint.transports:
            local = t.local
            name = "tls" if getattr(t, "tls", None) is not None else t.name.lower()
            listening.append(f"{name} {local.host}:{local.port}")
        info = DaemonInfo(
            node=cfg.node, sip=tuple(listening), sip_port=self.endpoint.transports[0].local.port,
            http_port=plane.http_port, wallboard_url=plane.wallboard_url,
            control_socket=str(plane.socket) if plane.socket else None, admin_token=plane.admin_token,
            token_file=cfg.control.token_file,
            recovered_calls=tuple(recovery.calls) if recovery is not None else (), recovered_recordings=recovered)
        log.info("ready", extra={"node": cfg.node, "sip": list(listening), "http_port": plane.http_port,
                                 "wallboard": plane.wallboard_url, "control_socket": info.control_socket,
                                 "token_file": cfg.control.token_file, "config": cfg.source})
        sd_notify(f"READY=1\nSTATUS=ready: sip {', '.join(listening)}")
        return info

    async def _signals(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    assert self._nursery is not None
                    self._nursery.start_soon(self.reload)
                else:
                    name = signal.Signals(signum).name
                    if self._stop.is_set():
                        log.warning("%s again: hanging up the remaining calls now", name)
                    else:
                        log.info("%s: draining", name)
                    self.request_stop()

    async def _engine_events(self) -> None:
        """The one consumer of the engine's events: recorder events to recording, the rest to the B2BUA."""
        async for event in self.engine.events():
            try:
                if self.recording is not None and self.recording.handle_engine_event(event):
                    continue
                self.manager.handle_engine_event(event)
            except Exception:
                log.exception("engine event %s failed", getattr(event, "type", event))

    def _agent_answered(self, call: str, queue: str, agent: str) -> None:
        """The ACD connected a call to an agent: the recording policy of that queue applies now."""
        if self.recording is None or self._nursery is None:
            return
        found = self.manager.get(call) if self.manager is not None else None
        if found is None:
            return

        async def apply() -> None:
            try:
                await self.recording.apply_policy(found, queue=queue)
            except Exception:
                log.exception("recording policy for call %s failed", call, extra={"call": call})

        self._nursery.start_soon(apply)

    async def _housekeeping(self) -> None:
        """Retention: recordings and old events, every ``purge_interval`` seconds."""
        cfg = self.config
        while True:
            await trio.sleep(cfg.purge_interval)
            try:
                if self.recording is not None:
                    report = await self.recording.purge(by="retention")
                    if report.purged:
                        log.info("retention: %d recording(s) purged", len(report.purged))
                if cfg.storage.retention_days > 0:
                    n = await self.log.purge(older_than_days=cfg.storage.retention_days)
                    if n:
                        log.info("retention: %d event(s) purged", n)
            except Exception:
                log.exception("retention purge failed")

    # ------------------------------------------------------------------ stopping
    def live_calls(self) -> int:
        return sum(1 for c in self.manager.calls() if not c.ended) if self.manager is not None else 0

    async def _shutdown(self) -> None:
        cfg = self.config
        self.draining = True
        sd_notify("STOPPING=1")
        live = self.live_calls()
        log.info("draining: new calls are refused (503); %d live call(s) may finish within %g s", live,
                 cfg.drain_timeout, extra={"live_calls": live, "drain_timeout": cfg.drain_timeout})
        with trio.move_on_after(cfg.drain_timeout):
            async with trio.open_nursery() as waits:
                async def calls_done() -> None:
                    await wait_until(lambda: self.live_calls() == 0)
                    waits.cancel_scope.cancel()

                async def hurry() -> None:
                    await self._hurry.wait()
                    waits.cancel_scope.cancel()

                waits.start_soon(calls_done)
                waits.start_soon(hurry)
        left = self.live_calls()
        if left:
            log.warning("drain: hanging up %d call(s) still live", left, extra={"live_calls": left})
        await self._stop_service("calls")  # ends what is left (cause "shutdown") and stops taking requests
        if self.recording is not None:
            with trio.move_on_after(max(10.0, cfg.drain_timeout)) as scope:
                await wait_until(lambda: (s := self.recording.statistics()).active == 0 and s.finishing == 0)
            if scope.cancelled_caught:
                log.warning("recordings still finishing at exit: the next start recovers them")
            await self._stop_service("recording")
        await trio.sleep(0.2)  # BYEs and final responses leave before the transports close
        await self._stop_service("sip")
        await self._stop_service("callcentre")
        await self._stop_service("control")
        await self._stop_service("registrar")
        head = await self.log.flush()
        log.info("drained: event log flushed", extra={"head": head})

    # ------------------------------------------------------------------ reload (SIGHUP)
    async def reload(self) -> ReloadReport:
        """Re-read the configuration file and apply what can change live (see the module docstring)."""
        sd_notify("RELOADING=1")
        try:
            report = await self._reload()
        finally:
            sd_notify("READY=1")
        if report.ok:
            self.reloads += 1
            log.info("configuration reloaded", extra=report.to_dict())
        else:
            self.reloads_refused += 1
            log.error("configuration reload refused, nothing changed: %s", report.error)
        try:
            await self.log.audit(principal="signal:SIGHUP", role="admin", method="daemon.reload",
                                 params={"config": str(self.path)}, result="ok" if report.ok else "error",
                                 error=report.error)
            await self.log.append({"type": "config.reloaded", **report.to_dict()})
        except Exception:
            log.exception("could not audit the reload")
        self.tap.publish({"type": "config.reloaded", **report.to_dict()})
        return report

    async def _reload(self) -> ReloadReport:
        if self.path is None:
            return ReloadReport(ok=False, error="no configuration file to re-read")
        try:
            new: DaemonConfig = await trio.to_thread.run_sync(load_config, self.path)
        except ConfigError as exc:
            return ReloadReport(ok=False, error=str(exc))
        old = self.config
        acd_service = self.centre.acd
        policy = acd_service.acd
        flows: dict[str, list[str]] = {}
        if new.flows is not None:
            result = self.registry.replace(new.flows)
            flows = {"added": list(result.added), "changed": list(result.changed), "removed": list(result.removed)}
        restart = [name for name in ("sip", "rtp", "storage", "control", "auth", "recording", "daemon")
                   if new.raw.get(name) != old.raw.get(name)]
        if new.raw.get("trunk") != old.raw.get("trunk"):
            restart.append("trunk")
        existing_queues = set(policy.queues())
        added_queues = []
        for q in new.queues:
            if q.name not in existing_queues:
                policy.add_queue(q)
                added_queues.append(q.name)
            elif q != next((o for o in old.queues if o.name == q.name), q):
                restart.append(f"queue {q.name}")
        removed = sorted(existing_queues - {q.name for q in new.queues})
        restart += [f"queue {name} (removed)" for name in removed]
        existing_agents = set(policy.agents())
        added_agents, updated_agents = [], []
        for a in new.agents:
            if a.id not in existing_agents:
                policy.add_agent(a)
                added_agents.append(a.id)
            elif a != next((o for o in old.agents if o.id == a.id), a):
                try:
                    acd_service._input(policy.update_agent, a)
                    updated_agents.append(a.id)
                except Exception as exc:  # noqa: BLE001 - e.g. logged in on a device no longer listed
                    restart.append(f"agent {a.id} ({exc})")
        restart += [f"agent {a} (removed)" for a in sorted(existing_agents - {a.id for a in new.agents})]
        for agent in added_agents:
            device = new.logins.get(agent)
            if device is not None:
                acd_service.login(agent, device)
        old_accounts = {a.username: a for a in old.accounts}
        new_accounts = {a.username: a for a in new.accounts}
        changed_accounts = []
        for name, account in new_accounts.items():
            if old_accounts.get(name) != account:
                self.directory.replace(account)
                changed_accounts.append(name)
        for name in old_accounts.keys() - new_accounts.keys():
            self.directory.remove(name)
            changed_accounts.append(name)
        dialplan_changed = new.dialplan != old.dialplan
        if dialplan_changed:
            self.manager.router = new.dialplan.build()
        self.config = new
        return ReloadReport(ok=True, flows=flows, queues_added=tuple(added_queues), agents_added=tuple(added_agents),
                            agents_updated=tuple(updated_agents), accounts_changed=tuple(sorted(changed_accounts)),
                            dialplan_changed=dialplan_changed, needs_restart=tuple(restart))

    # ------------------------------------------------------------------ statistics (system.stats)
    def statistics(self) -> DaemonStatistics:
        def stats(obj: Any) -> Any:
            return obj.statistics() if obj is not None else None

        return DaemonStatistics(
            node=self.config.node, started_at=self.started_at, uptime=self.clock() - self.started_at,
            draining=self.draining, reloads=self.reloads, reloads_refused=self.reloads_refused,
            live_calls=self.live_calls(), calls=stats(self.manager), sip=stats(self.endpoint),
            callcentre=stats(self.centre), registrar=stats(self.registrar), recording=stats(self.recording),
            store=stats(self.log), engine=stats(self.engine))


def _make_dirs(cfg: DaemonConfig) -> None:
    """The directories the state files go in (./var in the defaults)."""
    from orchestrator.store import parse_url

    paths = [Path(cfg.control.token_file)]
    if cfg.control.socket:
        paths.append(Path(cfg.control.socket))
    if cfg.storage.bindings is not None:
        paths.append(cfg.storage.bindings)
    url = parse_url(cfg.storage.url)
    if url.path is not None:
        paths.append(url.path)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)


def leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def ready_line(info: DaemonInfo) -> str:
    parts = [f"sip {', '.join(info.sip)}"]
    if info.wallboard_url:
        parts.append(f"wallboard {info.wallboard_url}")
    if info.control_socket:
        parts.append(f"control {info.control_socket}")
    parts.append(f"admin token in {info.token_file}")
    return f"hotline {info.node} ready: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hotline serve",
        description="Run the Hotline daemon in the foreground: JSON logs on stderr; SIGTERM drains calls then "
                    "exits; SIGHUP reloads IVR flows, queues, agents, accounts and the dial plan.",
        epilog="Exit status: 0 stopped cleanly, 1 failed to start or while running, 2 bad usage or an invalid "
               "configuration.")
    p.add_argument("--config", required=True, metavar="FILE", help="the TOML configuration (see etc/hotline.toml)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="overrides [daemon] log_level")
    p.add_argument("--check", action="store_true", help="validate the configuration, print OK and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hotline serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(f"{args.config}: OK")
        return EXIT_OK
    setup_logging(args.log_level or config.log_level)
    daemon = Daemon(config, path=args.config, handle_signals=True)

    async def serve() -> int:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(daemon.run)
            print(ready_line(info), flush=True)
        return EXIT_OK

    try:
        return trio.run(serve)
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        return EXIT_OK
    except Exception as group:  # noqa: BLE001 - every failure ends as one log line and exit 1
        exc = leaf_error(group)
        log.critical("failed: %s: %s", type(exc).__name__, exc,
                     exc_info=None if isinstance(exc, OSError) else (type(exc), exc, exc.__traceback__))
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
