"""A naive linear-scan router over an :class:`~orchestrator.acd.Acd`'s state: the reference.

It answers the two routing questions the indexed policy answers, by looking
at every agent or every call and re-deriving readiness, eligibility and the
strategy order from their definitions (not from the policy's indexes):

* :func:`agents_for` - which agent(s) a call waiting in this queue with this
  requirement would be offered now;
* :func:`call_for` - which waiting call an agent would be offered if it
  became ready now.

Tests check the indexed policy against it (hypothesis); the benchmark uses
it as the baseline. It is O(agents) / O(calls) per question on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import Strategy

__all__ = ["agent_ready", "agents_for", "call_for", "eligible", "waiting_calls"]


def agent_ready(agent, now: float) -> bool:
    """Ready to be offered a call: logged in, available, idle, device registered and idle, no delay."""
    dev = agent.device
    return (agent.logged_in and agent.presence == "available" and agent.activity is None
            and dev is not None and dev.registered and not dev.busy and now >= agent.not_before)


def eligible(agent, queue_name: str, skills: Mapping[str, int], max_penalty: int | None) -> bool:
    """Member of the queue within the penalty cap, with every required skill at its minimum."""
    penalty = agent.cfg.queues.get(queue_name)
    if penalty is None or (max_penalty is not None and penalty > max_penalty):
        return False
    return all(agent.skills.get(s, 0) >= m for s, m in skills.items())


def _order(agent, queue, skills: Mapping[str, int]) -> tuple:
    penalty = agent.cfg.queues[queue.name]
    s = queue.cfg.strategy
    if s is Strategy.LONGEST_IDLE:
        return (penalty, agent.idle_since, agent.seq)
    if s is Strategy.SKILLS:
        return (penalty, -sum(agent.skills.get(k, 0) for k in skills), agent.idle_since, agent.seq)
    if s is Strategy.FEWEST_CALLS:
        return (penalty, agent.calls.get(queue.name, 0), agent.idle_since, agent.seq)
    if s is Strategy.LEAST_TALK_TIME:
        return (penalty, agent.talk.get(queue.name, 0.0), agent.idle_since, agent.seq)
    return (penalty, agent.seq)


def agents_for(acd, queue_name: str, skills: Mapping[str, int], max_penalty: int | None, now: float) -> list[str]:
    """Agent ids a call needing ``skills`` in ``queue_name`` would be offered (ring-all: several).

    For the ``random`` strategy, every agent it may pick (the lowest penalty tier).
    """
    queue = acd._queues[queue_name]
    ready = [(_order(a, queue, skills), a) for a in acd._agents.values()
             if agent_ready(a, now) and eligible(a, queue_name, skills, max_penalty)]
    if not ready:
        return []
    ready.sort(key=lambda pair: pair[0])
    tier = ready[0][0][0]
    tier_agents = [a for key, a in ready if key[0] == tier]
    s = queue.cfg.strategy
    if s is Strategy.RING_ALL:
        limit = queue.cfg.ring_all_max or len(tier_agents)
        return [a.id for a in tier_agents[:limit]]
    if s is Strategy.RANDOM:
        return [a.id for a in tier_agents]
    if s is Strategy.ROUND_ROBIN:
        after = [a for a in tier_agents if a.seq > queue.rr_last]
        return [(after or tier_agents)[0].id]
    return [ready[0][1].id]


def waiting_calls(acd) -> list:
    """Every call waiting for an agent (not ringing, not connected, not a callback awaiting retry)."""
    return [c for c in acd._calls.values() if c.state == "waiting"]


def call_for(acd, agent_id: str) -> str | None:
    """The waiting call ``agent_id`` would be offered: best (priority, first queued, arrival) it is eligible for."""
    agent = acd._agents[agent_id]
    best = None
    for c in acd._calls.values():
        if c.state != "waiting" or not eligible(agent, c.queue.name, c.req_skills, c.max_penalty):
            continue
        key = (-c.priority, c.waiting_since, c.seq)
        if best is None or key < best[0]:
            best = (key, c.id)
    return best[1] if best else None
