"""The control plane assembled for the daemon: tokens, dispatcher, control socket, HTTP listener.

The daemon builds :class:`Services` from its real services and runs::

    plane = ControlPlane(ControlConfig.from_toml(cfg.get("control", {}), cfg.get("auth", {})), services,
                         hub=hub, audit=StoreAudit(event_log))
    info = await nursery.start(plane.run)
    print(f"wallboard: {info.wallboard_url}")

and publishes every event it appends to the event log with ``hub.publish``.

Configuration (CONTRACT.md "Configuration"), every key optional::

    [control]
    socket = "./var/hotline.sock"     # "" = no control socket
    http = "127.0.0.1:8080"           # HTTP listener: wallboard, /rpc, /metrics, /healthz; "" = none
    queue_stats_interval = 1.0        # seconds between queue.stats events

    [auth]
    token_file = "./var/admin.token"  # the admin token, made at first start (mode 0600)
    [[auth.token]]                    # other principals: the token's SHA-256 (hotline ctl --hash-token)
    name = "crm"
    role = "crm"
    sha256 = "..."

The wallboard: at each start a fresh ``viewer`` token (read-only: queue and
agent state and their events) is made in memory and put in the URL fragment
of ``info.wallboard_url`` (``http://HOST:PORT/#token=...``). A fragment is
never sent to the server, so it stays out of access logs and Referer
headers; the page keeps it in sessionStorage and removes it from the address
bar. Embedding a token in the served page instead would give the board to
anyone who can reach the listener; asking every time is a burden on a wall
screen. A longer-lived wallboard token can be configured as an
``[[auth.token]]`` with role ``viewer``.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from .audit import AuditSink
from .auth import Principal, TokenStore, load_or_create_token, new_token, principals_from_config
from .events import EventHub
from .server import RpcServer
from .services import Services

__all__ = ["ControlConfig", "ControlPlane", "ControlPlaneInfo"]


def _host_port(value: str, key: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{key}: must be HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    return host, int(port)


@dataclass(frozen=True)
class ControlConfig:
    socket: str | None = "./var/hotline.sock"
    http_host: str | None = "127.0.0.1"
    http_port: int = 8080
    token_file: str = "./var/admin.token"
    tokens: tuple[tuple[Principal, str], ...] = ()
    queue_stats_interval: float = 1.0

    @classmethod
    def from_toml(cls, control: Mapping[str, Any], auth: Mapping[str, Any]) -> ControlConfig:
        """The ``[control]`` and ``[auth]`` tables; ValueError names the key and says why."""
        for table, name, known in ((control, "control", {"socket", "http", "queue_stats_interval"}),
                                   (auth, "auth", {"token_file", "token"})):
            if not isinstance(table, Mapping):
                raise ValueError(f"{name}: must be a table")
            unknown = sorted(set(table) - known)
            if unknown:
                raise ValueError(f"{name}.{unknown[0]}: unknown key (expected {', '.join(sorted(known))})")
        socket = control.get("socket", cls.socket)
        if not isinstance(socket, str):
            raise ValueError(f"control.socket: must be a path string, got {socket!r}")
        http = control.get("http", "127.0.0.1:8080")
        if not isinstance(http, str):
            raise ValueError(f"control.http: must be HOST:PORT, got {http!r}")
        host, port = _host_port(http, "control.http") if http else (None, 0)
        interval = control.get("queue_stats_interval", cls.queue_stats_interval)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not (
                math.isfinite(interval) and interval > 0):
            raise ValueError(f"control.queue_stats_interval: must be a number of seconds > 0, got {interval!r}")
        token_file = auth.get("token_file", cls.token_file)
        if not isinstance(token_file, str) or not token_file:
            raise ValueError(f"auth.token_file: must be a path string, got {token_file!r}")
        entries = auth.get("token", [])
        if not isinstance(entries, list):
            raise ValueError("auth.token: must be an array of tables ([[auth.token]])")
        return cls(socket=socket or None, http_host=host, http_port=port, token_file=token_file,
                   tokens=tuple(principals_from_config(entries)), queue_stats_interval=float(interval))


@dataclass(frozen=True)
class ControlPlaneInfo:
    """What ``run`` reports once listening."""

    socket: Path | None
    http_port: int | None
    admin_token: str
    admin_token_created: bool
    wallboard_url: str | None
    wallboard_token: str


class ControlPlane:
    """Tokens, the dispatcher, the control socket, the HTTP listener, metrics and queue.stats events."""

    def __init__(self, config: ControlConfig, services: Services, *, hub: EventHub | None = None,
                 audit: AuditSink | None = None, registry: Any = None, health: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        from orchestrator.http.prometheus import Registry
        from orchestrator.http.server import HealthChecks

        from .telemetry import CallCentreMetrics

        self.config = config
        self.services = services
        self.hub = hub if hub is not None else EventHub(clock=clock)
        self.tokens = TokenStore()
        for principal, digest in config.tokens:
            self.tokens.add(principal, sha256=digest)
        self.registry = registry if registry is not None else Registry()
        self.health = health if health is not None else HealthChecks()
        self.rpc = RpcServer(tokens=self.tokens, services=services, hub=self.hub, audit=audit, clock=clock,
                             metrics=self.registry)
        self.metrics = CallCentreMetrics(self.registry, self.hub,
                                         queues=_sync(services.queues, "list_queues"),
                                         agents=_sync(services.agents, "list_agents"))

    async def run(self, *, task_status: trio.TaskStatus[ControlPlaneInfo] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``task_status.started(ControlPlaneInfo)`` once everything accepts."""
        from orchestrator.http.server import HttpServer

        from .telemetry import QueueStatsPublisher
        from .unix import UnixControlServer

        cfg = self.config
        Path(cfg.token_file).parent.mkdir(parents=True, exist_ok=True)
        admin_token, created = load_or_create_token(cfg.token_file)
        self.tokens.add(Principal("admin", "admin"), token=admin_token)
        wallboard_token = new_token()
        self.tokens.add(Principal("wallboard", "viewer"), token=wallboard_token)
        async with trio.open_nursery() as nursery:
            socket = None
            if cfg.socket:
                socket = await nursery.start(UnixControlServer(self.rpc, cfg.socket).serve)
            port = url = None
            if cfg.http_host:
                http = HttpServer(rpc=self.rpc, registry=self.registry, health=self.health)
                port = await nursery.start(http.serve, cfg.http_host, cfg.http_port)
                host = f"[{cfg.http_host}]" if ":" in cfg.http_host else cfg.http_host
                url = f"http://{host}:{port}/#token={wallboard_token}"
            if self.services.queues is not None:
                publisher = QueueStatsPublisher(self.hub, self.services.queues, interval=cfg.queue_stats_interval)
                await nursery.start(publisher.run)
            task_status.started(ControlPlaneInfo(socket=socket, http_port=port, admin_token=admin_token,
                                                 admin_token_created=created, wallboard_url=url,
                                                 wallboard_token=wallboard_token))


def _sync(service: Any, name: str) -> Callable[[], list] | None:
    """A service's list method if it is synchronous (Prometheus reads it at scrape time), else None."""
    fn = getattr(service, name, None) if service is not None else None
    if fn is None or inspect.iscoroutinefunction(fn):
        return None
    return fn
