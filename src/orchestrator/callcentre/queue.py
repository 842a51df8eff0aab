"""Calls routed straight to a queue (the dial plan's ``ToQueue``, e.g. 2000 -> support).

:class:`QueueHandler` is the B2BUA's handler for queue targets: it answers,
hands the call to the ACD service and then carries out how the stay ended:
the conversation with the agent (and the queue's post-call survey, through
the IVR runner), the queue's destination for a call that left (voicemail,
an extension, hang-up), or a hang-up after the caller chose a callback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueHandler", "QueueHandlerStatistics"]

log = logging.getLogger("hotline.callcentre")


@dataclass(frozen=True, kw_only=True)
class QueueHandlerStatistics:
    calls: int
    answered: int
    left: int
    callbacks: int
    gone: int


class QueueHandler:
    """``handlers={"queue": QueueHandler(acd_service, ivr_runner)}``."""

    def __init__(self, acd: Any, ivr: Any) -> None:
        for name, obj, method in (("acd", acd, "queue_call"), ("ivr", ivr, "after_agent")):
            if not callable(getattr(obj, method, None)):
                raise ValueError(f"{name}: must have a {method}() method")
        self.acd = acd
        self.ivr = ivr
        self._n = dict.fromkeys(("calls", "answered", "left", "callbacks", "gone"), 0)

    async def handle(self, call: Any, target: Any) -> None:
        queue = getattr(target, "queue", None)
        if not queue:
            await call.hangup("no_queue", status=404)
            return
        if not await call.answer():
            return
        self._n["calls"] += 1
        call.keep_caller = self.ivr.survey_for(queue) is not None
        outcome = await self.acd.queue_call(call, queue)
        if outcome.result == "answered":
            self._n["answered"] += 1
            await self.ivr.after_agent(call, queue)
            return
        if outcome.result == "callback":
            self._n["callbacks"] += 1
            await call.hangup("callback")
            return
        if outcome.result == "gone":
            self._n["gone"] += 1
            return
        self._n["left"] += 1
        await self.ivr.destination(call, outcome.destination or "hangup")

    def statistics(self) -> QueueHandlerStatistics:
        return QueueHandlerStatistics(**self._n)
