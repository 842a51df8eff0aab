"""A large, steady call centre for scaling tests and the routing benchmark.

``Center(agents=10_000, skills=50, waiting=1_000)`` builds an :class:`Acd`
with one queue per skill. Half the skills are *hot*: their agents are all on
calls and ``waiting`` calls wait in their queues. The other half are *cold*:
their agents are available. Each agent has three skills of its half, with
proficiencies 1 to 5, and is a member of those three queues.

Two steady cycles exercise the two routing decisions, and leave the centre
in the same shape (same numbers of agents busy/available, calls waiting):

* :meth:`Center.agent_frees_up`: a hot agent's call ends (no wrap-up), so
  the policy picks the best waiting call over the agent's queues - the
  *agent-available* decision; then the agent answers it and a new caller
  arrives in a hot queue (and waits);
* :meth:`Center.call_arrives`: a caller arrives in a cold queue, so the
  policy picks an available agent - the *call-arrival* decision; then the
  caller hangs up while it rings (the agent is available again).

Each returns the decision's outputs; pass ``clock`` (e.g.
``time.perf_counter_ns``) to also get the decision's duration.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from orchestrator.acd import Acd, AgentConfig, QueueConfig, Strategy
from orchestrator.acd import effects as fx

__all__ = ["Center"]


class Center:
    """A steady centre of ``agents`` agents, ``skills`` queues and ``waiting`` waiting calls."""

    def __init__(self, agents: int = 10_000, skills: int = 50, waiting: int = 1_000, *, seed: int = 1,
                 strategy: Strategy | str = Strategy.SKILLS, skills_per_agent: int = 3) -> None:
        if skills < 2 or skills % 2:
            raise ValueError(f"skills: must be an even number >= 2, got {skills!r}")
        half = skills // 2
        if skills_per_agent > half:
            raise ValueError(f"skills_per_agent: at most skills/2 = {half}, got {skills_per_agent!r}")
        if agents < 2:
            raise ValueError(f"agents: need at least 2, got {agents!r}")
        rng = self._rng = random.Random(seed)
        names = [f"skill{i:02d}" for i in range(skills)]
        self.hot = names[:half]
        self.cold = names[half:]
        queues = [QueueConfig(name=n, strategy=strategy, skills={n: 1}, ring_timeout=30.0) for n in names]
        configs = []
        for i in range(agents):
            side = self.hot if i % 2 == 0 else self.cold
            mine = rng.sample(side, skills_per_agent)
            configs.append(AgentConfig(id=f"agent{i:05d}", skills={s: rng.randint(1, 5) for s in mine},
                                       queues={s: 0 for s in mine}))
        self.acd = Acd(queues, configs, rng=random.Random(seed))
        self.now = 0.0
        self._n = 0
        self._connected: list[str] = []   # hot calls on the line, oldest first
        self._cursor = 0
        self._slot = 0
        acd = self.acd
        for cfg in configs:
            self.now += 0.001
            acd.agent_login(cfg.id, "dev-" + cfg.id, self.now)
            acd.device_registered("dev-" + cfg.id, self.now)
        # Occupy every hot agent, then queue the waiting calls.
        hot_agents = sum(1 for i in range(agents) if i % 2 == 0)
        while len(self._connected) < hot_agents:
            self._hot_arrival(answer=True)
        # Some of the calls above found every agent of their queue busy and wait already.
        for _ in range(waiting - acd.statistics().calls_waiting):
            self._hot_arrival(answer=False)
        self.waiting = acd.statistics().calls_waiting

    def _next_id(self) -> str:
        self._n += 1
        return f"call{self._n:07d}"

    def _hot_arrival(self, *, answer: bool) -> None:
        self.now += 0.001
        cid = self._next_id()
        out = self.acd.call_arrived(cid, self._rng.choice(self.hot), self.now)
        if answer:
            offers = [o for o in out if isinstance(o, fx.Offer)]
            if offers:
                self.acd.offer_answered(offers[0].offer, self.now)
                self._connected.append(cid)

    def agent_frees_up(self, clock: Callable[[], int] | None = None) -> tuple[list, int]:
        """One agent-available decision (timed with ``clock`` if given), then restore the shape."""
        call, now = self.prepare_agent_decision()
        t0 = clock() if clock else 0
        out = self.acd.call_ended(call, now)
        t1 = clock() if clock else 0
        self.finish_agent_decision(out)
        return out, t1 - t0

    def prepare_agent_decision(self) -> tuple[str, float]:
        """(call, now): ending this hot call at ``now`` is an agent-available decision."""
        self.now += 0.001
        self._slot = self._cursor % len(self._connected)
        self._cursor += 1
        return self._connected[self._slot], self.now

    def finish_agent_decision(self, out: list) -> None:
        """Check the decision offered one waiting call; answer it; a new caller waits in its place."""
        offers = [o for o in out if isinstance(o, fx.Offer)]
        if len(offers) != 1:
            raise AssertionError(f"a freed hot agent must be offered exactly one waiting call, got {out}")
        self.acd.offer_answered(offers[0].offer, self.now)
        self._connected[self._slot] = offers[0].call
        self._hot_arrival(answer=False)

    def call_arrives(self, clock: Callable[[], int] | None = None) -> tuple[list, int]:
        """One call-arrival decision (timed with ``clock`` if given), then restore the shape."""
        call, queue, now = self.prepare_arrival_decision()
        t0 = clock() if clock else 0
        out = self.acd.call_arrived(call, queue, now)
        t1 = clock() if clock else 0
        self.finish_arrival_decision(call, out)
        return out, t1 - t0

    def prepare_arrival_decision(self) -> tuple[str, str, float]:
        """(call, queue, now): this call arriving in this cold queue is a call-arrival decision."""
        self.now += 0.001
        return self._next_id(), self._rng.choice(self.cold), self.now

    def finish_arrival_decision(self, call: str, out: list) -> None:
        """Check an agent was offered the call; the caller hangs up while it rings."""
        if not any(isinstance(o, fx.Offer) for o in out):
            raise AssertionError(f"a cold queue must have an available agent, got {out}")
        self.acd.call_abandoned(call, self.now)

    def sample_hot_agent(self) -> str:
        """An agent on a hot call (for baselines that ask 'which call would this agent get')."""
        call = self._connected[self._cursor % len(self._connected)]
        return self.acd.call_snapshot(call).agent

    def sample_cold_queue(self) -> str:
        """A cold queue (for baselines that ask 'which agent would a call here get')."""
        return self._rng.choice(self.cold)
