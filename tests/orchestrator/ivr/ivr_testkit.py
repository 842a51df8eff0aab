"""Helpers for the IVR tests: a scripted caller that drives a Session like the
Trio runner will, with a fake clock, and the demo flows with real prompts."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestrator.ivr import Effect, FlowEnded, FlowSet, Session, load_flows, parse_flow
from orchestrator.ivr.nodes import QUEUED, RECORDING

ROOT = Path(__file__).resolve().parents[3]
IVR_DIR = ROOT / "ivr"
LONDON = ZoneInfo("Europe/London")
# A Tuesday at 10:00 in London: the demo office is open.
OPEN_TIME = datetime(2026, 3, 10, 10, 0, tzinfo=LONDON)


def build_demo_prompts() -> None:
    """Generate ivr/prompts/ from ivr/prompts.toml (incremental), as `make` does."""
    spec = importlib.util.spec_from_file_location("ivr_build_prompts", IVR_DIR / "build_prompts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_prompts()


def flow_from(text: str, name: str = "t"):
    flow, problems = parse_flow(text, name=name, check_prompts=False)
    assert not problems, "\n".join(map(str, problems))
    return flow


def types(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def of(effects: list[Effect], cls: type) -> list:
    return [e for e in effects if isinstance(e, cls)]


class Caller:
    """Drives one session; ``now`` advances only when a timer fires."""

    def __init__(self, session: Session, now: datetime | float = OPEN_TIME) -> None:
        self.s = session
        self.now = now.timestamp() if isinstance(now, datetime) else float(now)
        self.log: list[Effect] = []

    def _take(self, effects: list[Effect]) -> list[Effect]:
        self.log.extend(effects)
        return effects

    def start(self, **variables) -> list[Effect]:
        return self._take(self.s.call_started(variables, now=self.now))

    def press(self, digits: str) -> list[Effect]:
        out: list[Effect] = []
        for d in digits:
            out += self._take(self.s.digit(d, now=self.now))
        return out

    def prompt_ends(self) -> list[Effect]:
        assert self.s.play_id is not None, "no prompt is playing"
        return self._take(self.s.playback_done(self.s.play_id, now=self.now))

    def timer_fires(self) -> list[Effect]:
        assert self.s.timer_id is not None, "no timer is running"
        started = [e for e in self.log if type(e).__name__ == "StartTimer" and e.timer_id == self.s.timer_id]
        self.now = started[-1].at
        return self._take(self.s.timeout(self.s.timer_id, now=self.now))

    def crm_answers(self, data: dict) -> list[Effect]:
        return self._take(self.s.lookup_result(data, self.s.request_id, now=self.now))

    def crm_fails(self, reason: str = "error") -> list[Effect]:
        return self._take(self.s.lookup_failed(reason, self.s.request_id, now=self.now))

    def recorded(self, path: str, duration: float) -> list[Effect]:
        return self._take(self.s.record_done(path, duration, now=self.now))

    def queue(self, outcome: str) -> list[Effect]:
        return self._take(self.s.queue_result(outcome, now=self.now))

    def hang_up(self) -> list[Effect]:
        return self._take(self.s.hangup(now=self.now))

    def stay_silent(self, max_steps: int = 500) -> list[Effect]:
        """Answer every outstanding effect the way a silent caller would, until the flow ends."""
        out: list[Effect] = []
        for _ in range(max_steps):
            if self.s.finished:
                return out
            if self.s.play_id is not None:
                out += self.prompt_ends()
            elif self.s.timer_id is not None:
                out += self.timer_fires()
            elif self.s.request_id is not None:
                out += self.crm_fails("timeout")
            elif self.s.phase == RECORDING:
                out += self.recorded("", 0.0)
            elif self.s.phase == QUEUED:
                out += self.queue("timeout")
            else:
                raise AssertionError(f"session stuck at {self.s.node_name!r}: it waits for nothing")
        raise AssertionError(f"no end after {max_steps} steps (at {self.s.node_name!r})")

    @property
    def ended(self) -> FlowEnded:
        assert self.s.finished
        last = self.log[-1]
        assert isinstance(last, FlowEnded)
        return last


def demo_flowset() -> FlowSet:
    build_demo_prompts()
    return load_flows(IVR_DIR)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
