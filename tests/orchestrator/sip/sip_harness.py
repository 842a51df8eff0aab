"""SipPair: two TransactionLayers joined by a fake wire, on a simulated clock.

Like h11's ConnectionPair, but with time: every Send is serialized to bytes
and delivered to the other side's ``receive_datagram`` after ``delay``
seconds unless ``drop`` says to lose it (``duplicate`` delivers it twice);
every SetTimer goes into a heap keyed by its time, so ``run()`` plays out RFC
timers exactly, in microseconds of wall time.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.sip import (
    Address,
    CancelTimer,
    Request,
    Response,
    Send,
    SetTimer,
    TimerConfig,
    TransactionKey,
    TransactionLayer,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)


@dataclass
class Endpoint:
    name: str
    address: Address
    layer: TransactionLayer
    sent: list[tuple[float, Request | Response]] = field(default_factory=list)
    events: list[tuple[float, object]] = field(default_factory=list)
    timers: dict[tuple[TransactionKey, str], float] = field(default_factory=dict)
    timers_set: list[str] = field(default_factory=list)
    on_event: Callable[[SipPair, object], None] | None = None

    def sent_at(self, what: Callable[[Request | Response], bool]) -> list[float]:
        return [t for t, m in self.sent if what(m)]

    def events_of(self, kind: type) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.events if isinstance(e, kind)]


class SipPair:
    def __init__(self, *, config: TimerConfig = TimerConfig(), transport: str = "UDP", delay: float = 0.0,
                 seed: int = 1) -> None:
        self.now = 0.0
        self.delay = delay
        self.rng = random.Random(seed)
        self.uac = Endpoint("uac", Address("192.0.2.1", 5060, transport), TransactionLayer(config))
        self.uas = Endpoint("uas", Address("192.0.2.2", 5060, transport), TransactionLayer(config))
        self.drop: Callable[[Endpoint, Request | Response], bool] = lambda sender, msg: False
        self.duplicate: Callable[[Endpoint, Request | Response], bool] = lambda sender, msg: False
        self._queue: list = []
        self._seq = itertools.count()

    def peer(self, endpoint: Endpoint) -> Endpoint:
        return self.uas if endpoint is self.uac else self.uac

    def process(self, endpoint: Endpoint, outputs: list) -> None:
        for o in outputs:
            if isinstance(o, Send):
                endpoint.sent.append((self.now, o.message))
                if self.drop(endpoint, o.message):
                    continue
                copies = 2 if self.duplicate(endpoint, o.message) else 1
                for _ in range(copies):
                    heapq.heappush(self._queue, (self.now + self.delay, next(self._seq), "wire",
                                                 self.peer(endpoint), o.message.serialize(), endpoint.address))
            elif isinstance(o, SetTimer):
                endpoint.timers[(o.transaction, o.name)] = o.at
                endpoint.timers_set.append(o.name)
                heapq.heappush(self._queue, (o.at, next(self._seq), "timer", endpoint, o.transaction, o.name))
            elif isinstance(o, CancelTimer):
                endpoint.timers.pop((o.transaction, o.name), None)
            else:
                endpoint.events.append((self.now, o))
                if endpoint.on_event is not None:
                    endpoint.on_event(self, o)

    def run(self, until: float = 1e9) -> None:
        while self._queue and self._queue[0][0] <= until:
            at, _, kind, endpoint, a, b = heapq.heappop(self._queue)
            if kind == "timer" and endpoint.timers.get((a, b)) != at:
                continue  # cancelled or re-armed
            self.now = at
            if kind == "timer":
                del endpoint.timers[(a, b)]
                self.process(endpoint, endpoint.layer.timer_fired(a, b, self.now))
            else:
                self.process(endpoint, endpoint.layer.receive_datagram(a, b, self.now))
        self.now = max(self.now, until) if until < 1e9 else self.now

    # -- helpers for tests --------------------------------------------------------------
    def request(self, method: str, *, cseq: int = 1, call_id: str | None = None, from_tag: str | None = None,
                to: str = "<sip:bob@192.0.2.2>", body: bytes = b"") -> Request:
        headers = [
            ("Via", f"SIP/2.0/{self.uac.address.transport} 192.0.2.1:5060;branch={new_branch(self.rng)}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:alice@192.0.2.1>;tag={from_tag or new_tag(self.rng)}"),
            ("To", to),
            ("Call-ID", call_id or new_call_id(self.rng, "192.0.2.1")),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@192.0.2.1:5060>"),
        ]
        return Request(method, "sip:bob@192.0.2.2", headers, body)

    def uac_send(self, request: Request) -> TransactionKey:
        key, out = self.uac.layer.send_request(request, self.uas.address, self.now)
        self.process(self.uac, out)
        return key

    def uas_respond(self, key: TransactionKey, request: Request, code: int, *, to_tag: str = "uas-tag") -> Response:
        response = make_response(request, code, to_tag=to_tag)
        self.process(self.uas, self.uas.layer.send_response(key, response, self.now))
        return response
