"""Queue and agent tables from TOML (``[[queue]]``, ``[[agent]]``) into validated configs."""

from __future__ import annotations

import tomllib

import pytest

from orchestrator.acd import Acd, AgentConfig, Destination, EscalationStep, QueueConfig, Strategy
from orchestrator.acd import effects as fx

CONFIG = """
[[queue]]
name = "support"
strategy = "skills"
skills = { support = 2 }
ring_timeout = 15
wrapup = 30
max_wait = 600
on_timeout = "voicemail:support"
max_length = 50
on_full = "queue:sales"
join_empty = "no-staffed"
announce_every = 60
callback_mode = "caller-first"
escalation = [
  { after = 30, widen = { support = 1 }, max_penalty = 1 },
  { after = 60, priority = 1 },
  { after = 90, offer_callback = true },
  { after = 300, overflow = "sales" },
  { after = 900, voicemail = "support" },
]

[[queue]]
name = "sales"

[[agent]]
id = "9001"
skills = { support = 3 }
queues = { support = 0, sales = 1 }
devices = ["9001"]

[[agent]]
id = "9002"
queues = ["sales"]
wrapup = 5
"""


def test_toml_tables_build_the_configs():
    doc = tomllib.loads(CONFIG)
    queues = [QueueConfig.from_dict(q) for q in doc["queue"]]
    agents = [AgentConfig.from_dict(a) for a in doc["agent"]]
    support = queues[0]
    assert support.strategy is Strategy.SKILLS and dict(support.skills) == {"support": 2}
    assert support.on_timeout == Destination(kind="voicemail", target="support")
    assert support.on_full == Destination(kind="queue", target="sales")
    assert [s.action for s in support.escalation] == ["widen", "priority", "offer-callback", "overflow", "exit"]
    assert support.escalation[0] == EscalationStep.widen(30, skills={"support": 1}, max_penalty=1)
    assert str(support.escalation[4].destination) == "voicemail:support"
    assert agents[0].devices == ("9001",) and dict(agents[1].queues) == {"sales": 0} and agents[1].wrapup == 5
    acd = Acd(queues, agents)
    acd.agent_login("9001", "9001", 0.0)
    acd.device_registered("9001", 0.0)
    out = acd.call_arrived("c1", "support", 1.0)
    assert [o.agent for o in out if isinstance(o, fx.Offer)] == ["9001"]


@pytest.mark.parametrize("table, message", [
    ({"name": "q", "strategy": "cheapest"}, "strategy"),
    ({"name": "q", "colour": "blue"}, "colour: unknown queue setting"),
    ({"name": "q", "on_full": "teleport:x"}, "kind"),
    ({"name": "q", "escalation": [{"widen": {"a": 1}}]}, r"escalation\[0\].after"),
    ({"name": "q", "escalation": [{"after": 5, "dance": 1}]}, r"escalation\[0\].dance"),
    ({"name": "q", "escalation": [{"after": 5, "priority": 1, "overflow": "x"}]}, "exactly one action"),
    ({"name": "q", "escalation": [{"after": 5, "offer_callback": "yes"}]}, "offer_callback"),
    ({"name": "q", "escalation": [{"after": 5, "widen": {"a": 9}}]}, "proficiency"),
    ({"name": "q", "escalation": "soon"}, "escalation"),
])
def test_bad_queue_tables_name_the_key(table, message):
    with pytest.raises(ValueError, match=message):
        QueueConfig.from_dict(table)


def test_bad_agent_tables_name_the_key():
    with pytest.raises(ValueError, match="shoe_size: unknown agent setting"):
        AgentConfig.from_dict({"id": "a", "shoe_size": 44})
    with pytest.raises(ValueError, match="proficiency"):
        AgentConfig.from_dict({"id": "a", "skills": {"x": 0}})
    with pytest.raises(ValueError, match="id"):
        AgentConfig.from_dict({"skills": {}})
