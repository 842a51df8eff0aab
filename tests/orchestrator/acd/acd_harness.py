"""A small driver for the ACD policy in tests: a clock, the event log, the effects."""

from __future__ import annotations

from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.acd import effects as fx
from orchestrator.acd import events as ev


class Harness:
    """Feeds an :class:`Acd`, keeps every output, and checks time only moves forward."""

    def __init__(self, queues, agents, *, rng=None) -> None:
        self.acd = Acd(queues, agents, rng=rng)
        self.now = 0.0
        self.outputs: list = []
        self.last: list = []

    def at(self, now: float) -> Harness:
        self.now = now
        return self

    def __getattr__(self, name):
        method = getattr(self.acd, name)

        def call(*args, **kwargs):
            out = method(*args, self.now, **kwargs) if name != "tick" else method(self.now)
            self.outputs.extend(out)
            self.last = out
            return out

        return call

    def tick_to(self, now: float) -> list:
        """Run every deadline up to ``now`` in order, as the service would."""
        out = []
        while True:
            d = self.acd.next_deadline()
            if d is None or d > now:
                break
            self.now = max(self.now, d)
            out += self.acd.tick(self.now)
        self.now = now
        out += self.acd.tick(now)
        self.outputs.extend(out)
        self.last = out
        return out

    def login(self, *agents: str) -> None:
        for a in agents:
            self.agent_login(a, "dev-" + a)
            self.device_registered("dev-" + a)

    def events(self, kind=None) -> list:
        return [o for o in self.outputs if isinstance(o, ev.Event) and (kind is None or isinstance(o, kind))]

    def state(self, agent: str) -> str:
        return self.acd.agent_snapshot(agent).state


def of(outputs, kind) -> list:
    return [o for o in outputs if isinstance(o, kind)]


def offered_agents(outputs) -> list[str]:
    return [o.agent for o in outputs if isinstance(o, fx.Offer)]


def one_offer(outputs) -> fx.Offer:
    offers = of(outputs, fx.Offer)
    assert len(offers) == 1, outputs
    return offers[0]


def queue(name="q", **kw) -> QueueConfig:
    return QueueConfig(name=name, **kw)


def agent(aid, queues=("q",), skills=None, **kw) -> AgentConfig:
    qs = queues if isinstance(queues, dict) else {q: 0 for q in queues}
    return AgentConfig(id=aid, queues=qs, skills=skills or {}, **kw)
