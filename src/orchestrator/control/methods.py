"""The method table: every JSON-RPC method, declared once.

Each :class:`Method` says its parameter :class:`~orchestrator.control.schema.Schema`,
the roles that may call it, whether it changes state (then every call is
audited), how role ``agent`` is confined to its own agent and calls
(``own``), which parameters are secret in the audit log, and its handler.
The dispatcher (:mod:`orchestrator.control.server`) checks, in order: the
method exists (-32601), the connection is authenticated (-32001), the role
may call it (-32003), the params (-32602), the agent's ownership (-32003);
then it runs the handler and maps service errors (-32004, -32009...).

``own`` for role agent:

* ``"agent"``: the ``agent`` parameter defaults to the agent's own id and
  must be it;
* ``"call"``: the call must be its own (offered to it, connected to it, or
  the call service says its agent is it);
* ``"originate"``: ``from`` must be its own agent id or its logged-in device;
* ``"filter"``: list results are cut down to its own (``call.list``), or the
  query is forced to it (``cdr.query``).

Handlers take ``(ctx, params)`` and return a JSON-ready value; they may be
coroutine functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.acd.policy import AGENT_STATES

from .auth import ROLES, Principal
from .errors import Forbidden, InternalError, InvalidParams, NotAuthenticated, RpcError
from .protocol import to_json
from .schema import Bool, Choice, Digits, Int, IntChoice, JsonObject, Param, Schema, Str, StrList, Time

if TYPE_CHECKING:
    from .server import RpcServer, Session

__all__ = ["METHODS", "ROLE_SETS", "Context", "Method", "method_table"]


@dataclass
class Context:
    """What a handler sees: the server, the connection's session, its principal."""

    server: RpcServer
    session: Session
    principal: Principal | None

    @property
    def services(self):
        return self.server.services

    @property
    def hub(self):
        return self.server.hub

    def service(self, name: str) -> Any:
        svc = getattr(self.server.services, name)
        if svc is None:
            raise InternalError(f"{name}: the service is not running on this node")
        return svc


@dataclass(frozen=True)
class Method:
    name: str
    schema: Schema
    roles: frozenset[str]
    mutating: bool
    handler: Callable[[Context, dict[str, Any]], Any]
    doc: str
    own: str | None = None
    secret: frozenset[str] = field(default_factory=frozenset)
    public: bool = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "doc": self.doc, "params": self.schema.describe(),
                "roles": sorted(self.roles), "mutating": self.mutating}


async def maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (services may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


# ---------------------------------------------------------------------------------------------- params

ID = Str(max_len=128, pattern=r"[A-Za-z0-9_.:@+-]+", hint="an id (letters, digits and _ . : @ + -)")
ADDRESS = Str(max_len=256, pattern=r"[A-Za-z0-9_.:@+*#;=%-]+",
              hint="a number, an extension, a device or a SIP URI")
TEXT = Str(max_len=256)
TOPIC = Str(max_len=64, pattern=r"[a-z0-9_.*]+", hint="a topic pattern (lower-case letters, digits, _ . and *)")

P_AGENT = Param("agent", ID)
P_QUEUE = Param("queue", ID)
P_CALL = Param("call", ID)
P_DEVICE = Param("device", ID)
P_FROM = Param("from", Time(), required=False, doc="start of the window (Unix seconds or ISO 8601)")
P_TO = Param("to", Time(), required=False, doc="end of the window, exclusive")
P_LIMIT = Param("limit", Int(min=1, max=10000), required=False, default=100)

ALL = frozenset(ROLES)
STAFF = frozenset({"admin", "supervisor"})
ADMIN = frozenset({"admin"})
ROLE_SETS = {"all": ALL, "staff": STAFF, "admin": ADMIN}


def _window(p: Mapping[str, Any]) -> dict[str, Any]:
    start, end = p.get("from"), p.get("to")
    if start is not None and end is not None and end < start:
        raise InvalidParams("to: must not be before from")
    return {"start": start, "end": end}


# ---------------------------------------------------------------------------------------------- handlers

def _ping(ctx: Context, p: dict) -> dict:
    return {"pong": True, "time": ctx.server.clock()}


def _version(ctx: Context, p: dict) -> dict:
    from orchestrator import __version__

    role = ctx.principal.role if ctx.principal else None
    return {"version": __version__, "jsonrpc": "2.0",
            "methods": [m.describe() for m in ctx.server.methods.values() if m.public or role in m.roles]}


async def _stats(ctx: Context, p: dict) -> dict:
    out: dict[str, Any] = {"control": to_json(ctx.server.statistics()), "events": to_json(ctx.hub.statistics())}
    if ctx.services.system is not None:
        out.update(to_json(await maybe(ctx.services.system.statistics())))
    return out


def _login(ctx: Context, p: dict) -> dict:
    principal = ctx.server.tokens.authenticate(p["token"])
    if principal is None:
        raise NotAuthenticated("token: not a valid token")
    ctx.server.bind_principal(ctx.session, principal)
    ctx.principal = principal
    return principal.to_dict()


def _whoami(ctx: Context, p: dict) -> dict:
    return ctx.principal.to_dict()


def _with_since(ctx: Context, agent: dict) -> dict:
    since = ctx.server.agent_since.get(agent.get("agent"))
    if since is not None and since[0] == agent.get("state"):
        agent = {**agent, "since": since[1]}
    else:
        agent = {**agent, "since": None}
    return agent


async def _agent_list(ctx: Context, p: dict) -> list:
    agents = await maybe(ctx.service("agents").list_agents())
    out = []
    for a in to_json(agents):
        if p["state"] is not None and a.get("state") != p["state"]:
            continue
        if p["queue"] is not None and p["queue"] not in (a.get("queues") or {}):
            continue
        out.append(_with_since(ctx, a))
    return out


async def _agent_get(ctx: Context, p: dict) -> dict:
    return _with_since(ctx, to_json(await maybe(ctx.service("agents").get_agent(p["agent"]))))


async def _agent_login(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("agents").login(p["agent"], p["device"], state=p["state"], reason=p["reason"]))


async def _agent_logout(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("agents").logout(p["agent"]))


async def _agent_set_state(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("agents").set_state(p["agent"], p["state"], reason=p["reason"]))


async def _queue_list(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("queues").list_queues())


async def _queue_get(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("queues").get_queue(p["queue"]))


async def _queue_stats(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("queues").queue_stats(p["queue"], **_window(p)))


async def _call_list(ctx: Context, p: dict) -> list:
    calls = to_json(await maybe(ctx.service("calls").list_calls()))
    out = []
    for c in calls:
        if p["queue"] is not None and c.get("queue") != p["queue"]:
            continue
        if p["agent"] is not None and c.get("agent") != p["agent"]:
            continue
        if p["state"] is not None and c.get("state") != p["state"]:
            continue
        out.append(c)
    return out


async def _call_get(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("calls").get_call(p["call"]))


async def _originate(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("calls").originate(p["from"], p["to"], caller_id=p["caller_id"],
                                                      queue=p["queue"], data=p["data"]))


def _call_verb(verb: str) -> Callable:
    async def handler(ctx: Context, p: dict) -> Any:
        return await maybe(getattr(ctx.service("calls"), verb)(p["call"]))
    handler.__name__ = f"_call_{verb}"
    return handler


async def _hangup(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("calls").hangup(p["call"], reason=p["reason"]))


async def _transfer(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("calls").transfer(p["call"], p["to"], mode=p["mode"]))


async def _send_dtmf(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("calls").send_dtmf(p["call"], p["digits"]))


async def _set_data(ctx: Context, p: dict) -> Any:
    result = await maybe(ctx.service("calls").set_data(p["call"], p["data"], merge=p["merge"]))
    held = ctx.hub.attach_data(p["call"], p["data"], merge=p["merge"])
    return result if result is not None else {"call": p["call"], "data": held}


def _recording_verb(verb: str) -> Callable:
    async def handler(ctx: Context, p: dict) -> Any:
        return await maybe(getattr(ctx.service("recordings"), verb)(p["call"], by=ctx.principal.name))
    handler.__name__ = f"_recording_{verb}"
    return handler


async def _recording_get(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("recordings").get(p["recording"]))


async def _recording_list(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("recordings").list(call=p["call"], limit=p["limit"], **_window(p)))


def _monitor(mode: str) -> Callable:
    async def handler(ctx: Context, p: dict) -> Any:
        return await maybe(ctx.service("supervisor").monitor(p["call"], p["device"], mode,
                                                             supervisor=ctx.principal.name))
    handler.__name__ = f"_monitor_{mode}"
    return handler


async def _ivr_list(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("ivr").list_flows())


async def _ivr_validate(ctx: Context, p: dict) -> dict:
    problems = to_json(await maybe(ctx.service("ivr").validate(p["source"], name=p["name"])))
    return {"ok": not problems, "problems": problems}


async def _ivr_reload(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("ivr").reload())


async def _cdr_query(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("cdr").query(queue=p["queue"], agent=p["agent"], limit=p["limit"], **_window(p)))


async def _report_queues(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("reports").queues(**_window(p)))


async def _report_agents(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("reports").agents(**_window(p)))


async def _report_intervals(ctx: Context, p: dict) -> Any:
    return await maybe(ctx.service("reports").intervals(interval=p["interval"], **_window(p)))


def _subscribe(ctx: Context, p: dict) -> dict:
    topics = list(dict.fromkeys(p["topics"]))
    sub = ctx.server.subscribe(ctx.session, topics)
    return {"topics": list(sub.topics)}


def _unsubscribe(ctx: Context, p: dict) -> dict:
    ctx.server.unsubscribe(ctx.session)
    return {"topics": []}


async def _audit_query(ctx: Context, p: dict) -> Any:
    log = ctx.server.audit
    if not hasattr(log, "query"):
        raise InternalError("audit: this node's audit sink cannot be queried")
    w = _window(p)
    rows = await maybe(log.query(principal=p["principal"], method=p["method"], start=w["start"], end=w["end"],
                                 limit=p["limit"]))
    return [to_json(r) for r in rows]


# ---------------------------------------------------------------------------------------------- the table

CALL_CONTROL = frozenset({"admin", "supervisor", "crm", "agent"})
READERS = frozenset({"admin", "supervisor", "crm", "viewer"})


def _m(name: str, params: tuple[Param, ...], roles: frozenset[str], handler: Callable, doc: str, *,
       mutating: bool = False, own: str | None = None, secret: tuple[str, ...] = (), public: bool = False) -> Method:
    return Method(name=name, schema=Schema(*params), roles=roles, mutating=mutating, handler=handler, doc=doc,
                  own=own, secret=frozenset(secret), public=public)


def method_table() -> dict[str, Method]:
    """A fresh copy of the table (name -> Method)."""
    methods = [
        _m("system.ping", (), ALL, _ping, "Liveness; the server's clock (Unix seconds)."),
        _m("system.version", (), ALL, _version, "Version, and the methods this principal may call."),
        _m("system.stats", (), STAFF, _stats, "Statistics of the control plane and the services."),
        _m("auth.login", (Param("token", Str(max_len=512)),), ALL, _login,
           "Authenticate this connection with a bearer token.", public=True, secret=("token",)),
        _m("auth.whoami", (), ALL, _whoami, "The principal of this connection."),

        _m("agent.list", (Param("state", Choice(*AGENT_STATES), required=False), Param("queue", ID, required=False)),
           READERS, _agent_list, "Agents with their state, device, current call and time in state."),
        _m("agent.get", (P_AGENT,), READERS | {"agent"}, _agent_get, "One agent.", own="agent"),
        _m("agent.login", (P_AGENT, P_DEVICE, Param("state", Choice("available", "break"), required=False,
                                                   default="available"),
                           Param("reason", TEXT, required=False)),
           STAFF | {"agent"}, _agent_login, "Log an agent in on a device.", mutating=True, own="agent"),
        _m("agent.logout", (P_AGENT,), STAFF | {"agent"}, _agent_logout, "Log an agent out.", mutating=True,
           own="agent"),
        _m("agent.set_state", (P_AGENT, Param("state", Choice("available", "break", "offline")),
                               Param("reason", TEXT, required=False)),
           STAFF | {"agent"}, _agent_set_state, "available, break (with a reason) or offline.", mutating=True,
           own="agent"),

        _m("queue.list", (), READERS | {"agent"}, _queue_list, "Queues with their live state."),
        _m("queue.get", (P_QUEUE,), READERS | {"agent"}, _queue_get, "One queue's live state."),
        _m("queue.stats", (P_QUEUE, P_FROM, P_TO), READERS | {"agent"}, _queue_stats,
           "Waiting, longest wait, agents by state, service level, ASA, AHT, abandon rate, EWT."),

        _m("call.list", (Param("queue", ID, required=False), Param("agent", ID, required=False),
                         Param("state", ID, required=False)),
           CALL_CONTROL, _call_list, "Live calls (an agent sees its own).", own="filter"),
        _m("call.get", (P_CALL,), CALL_CONTROL, _call_get, "One live call.", own="call"),
        _m("call.originate", (Param("from", ADDRESS), Param("to", ADDRESS), Param("caller_id", ADDRESS, required=False),
                              Param("queue", ID, required=False), Param("data", JsonObject(), required=False)),
           CALL_CONTROL, _originate, "Place a call from a device (click to dial) or into a queue.", mutating=True,
           own="originate"),
        _m("call.answer", (P_CALL,), CALL_CONTROL, _call_verb("answer"), "Answer a call ringing on the agent's device.",
           mutating=True, own="call"),
        _m("call.hangup", (P_CALL, Param("reason", TEXT, required=False)), CALL_CONTROL, _hangup, "End a call.",
           mutating=True, own="call"),
        _m("call.hold", (P_CALL,), CALL_CONTROL, _call_verb("hold"), "Put a connected call on hold.", mutating=True,
           own="call"),
        _m("call.unhold", (P_CALL,), CALL_CONTROL, _call_verb("unhold"), "Take a call off hold.", mutating=True,
           own="call"),
        _m("call.transfer", (P_CALL, Param("to", ADDRESS), Param("mode", Choice("blind", "attended"), required=False,
                                                                  default="blind")),
           CALL_CONTROL, _transfer, "Transfer a call (blind, or attended with a consultation call).", mutating=True,
           own="call"),
        _m("call.send_dtmf", (P_CALL, Param("digits", Digits())), CALL_CONTROL, _send_dtmf,
           "Send DTMF digits on a call (RFC 4733).", mutating=True, own="call", secret=("digits",)),
        _m("call.set_data", (P_CALL, Param("data", JsonObject()), Param("merge", Bool(), required=False,
                                                                         default=True)),
           CALL_CONTROL, _set_data, "Attach CRM data to a call and its record (shown in the screen pop).",
           mutating=True, own="call"),

        _m("recording.start", (P_CALL,), CALL_CONTROL, _recording_verb("start"), "Start recording a call.",
           mutating=True, own="call"),
        _m("recording.stop", (P_CALL,), CALL_CONTROL, _recording_verb("stop"), "Stop a call's recording.",
           mutating=True, own="call"),
        _m("recording.pause", (P_CALL,), CALL_CONTROL, _recording_verb("pause"),
           "Pause a call's recording (card payments, PCI DSS).", mutating=True, own="call"),
        _m("recording.resume", (P_CALL,), CALL_CONTROL, _recording_verb("resume"), "Resume a paused recording.",
           mutating=True, own="call"),
        _m("recording.get", (Param("recording", ID),), STAFF | {"crm"}, _recording_get, "One recording."),
        _m("recording.list", (Param("call", ID, required=False), P_FROM, P_TO, P_LIMIT), STAFF | {"crm"},
           _recording_list, "Recordings, newest first."),

        _m("supervisor.listen", (P_CALL, P_DEVICE), STAFF, _monitor("listen"),
           "Listen to a live call from the supervisor's device.", mutating=True),
        _m("supervisor.whisper", (P_CALL, P_DEVICE), STAFF, _monitor("whisper"),
           "Talk to the agent only.", mutating=True),
        _m("supervisor.barge", (P_CALL, P_DEVICE), STAFF, _monitor("barge"), "Join the call.", mutating=True),

        _m("ivr.list", (), STAFF, _ivr_list, "The IVR flows in service."),
        _m("ivr.validate", (Param("source", Str(max_len=262144)), Param("name", ID, required=False, default="flow")),
           STAFF, _ivr_validate, "Lint a flow's YAML source; problems with line numbers."),
        _m("ivr.reload", (), ADMIN, _ivr_reload, "Reload the flow directory (all or nothing).", mutating=True),

        _m("cdr.query", (P_FROM, P_TO, Param("queue", ID, required=False), Param("agent", ID, required=False),
                         P_LIMIT),
           CALL_CONTROL, _cdr_query, "Call detail records (an agent gets its own).", own="filter"),
        _m("report.queues", (P_FROM, P_TO), STAFF, _report_queues, "Per-queue metrics over a window."),
        _m("report.agents", (P_FROM, P_TO), STAFF, _report_agents, "Per-agent metrics over a window."),
        _m("report.intervals", (P_FROM, P_TO, Param("interval", IntChoice(900, 1800, 3600), required=False,
                                                    default=900)),
           STAFF, _report_intervals, "Per-interval, per-queue metrics (15/30/60 minutes)."),

        _m("events.subscribe", (Param("topics", StrList(TOPIC)),), ALL, _subscribe,
           "Receive events matching topic patterns as notifications (replaces earlier topics)."),
        _m("events.unsubscribe", (), ALL, _unsubscribe, "Stop receiving events."),
        _m("audit.query", (Param("principal", Str(max_len=64), required=False),
                           Param("method", Str(max_len=64), required=False), P_FROM, P_TO, P_LIMIT),
           ADMIN, _audit_query, "The audit log, newest first."),
    ]
    table = {m.name: m for m in methods}
    if len(table) != len(methods):
        raise AssertionError("two methods share a name")
    return table


METHODS = method_table()


async def check_ownership(ctx: Context, method: Method, p: dict[str, Any]) -> None:
    """Confine role ``agent`` to itself (see the module docstring); raises Forbidden."""
    principal = ctx.principal
    if principal is None or principal.role != "agent" or method.own is None:
        return
    me = principal.agent
    if method.own == "agent":
        if p.get("agent") != me:
            raise Forbidden(f"agent: an agent may act only on itself ({me})")
    elif method.own == "call":
        if not await _owns_call(ctx, me, p["call"]):
            raise Forbidden(f"call: {p['call']} is not one of your calls")
    elif method.own == "originate":
        if p["from"] != me:
            device = None
            if ctx.services.agents is not None:
                device = to_json(await maybe(ctx.services.agents.get_agent(me))).get("device")
            if device is None or p["from"] != device:
                raise Forbidden(f"from: an agent may call only from itself ({me}) or its own device")
    elif method.own == "filter":
        if p.get("agent") is not None and p["agent"] != me:
            raise Forbidden(f"agent: an agent may see only its own ({me})")
        p["agent"] = me


async def _owns_call(ctx: Context, me: str, call: str) -> bool:
    if ctx.hub.owns_call(me, call):
        return True
    calls = ctx.services.calls
    if calls is None:
        return False
    try:
        info = to_json(await maybe(calls.get_call(call)))
    except (RpcError, LookupError, ValueError):  # no such call (any service's way of saying so)
        return False
    return isinstance(info, dict) and info.get("agent") == me
