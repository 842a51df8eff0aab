"""The Trio registrar service on Trio's autojump clock: REGISTERs answered
through the request's transaction, bindings expired on time with the events
in order, the sink and its failures, restoring from a store at start - and
the purity of the cores (no trio, socket or clock outside service.py)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing
from registrar_harness import PHONE, REALM, T0, make_registrar, register

import orchestrator.registrar
from orchestrator.registrar import (
    ChannelSink,
    LocationService,
    RegistrarService,
    SqliteBindingStore,
)
from orchestrator.sip import Address, Request, Response, authorization_for

AOR = f"sip:9001@{REALM}"


@dataclass
class FakeIncoming:
    """Stands in for orchestrator.transport.IncomingRequest."""

    request: Request
    source: Address = PHONE
    sent: list[Response] = field(default_factory=list)
    can_send: bool = True

    def send_response(self, response: Response) -> bool:
        self.sent.append(response)
        return self.can_send


def registered(service, *, expires=60, cseq=2, user="9001", password="agent-pw"):
    first = FakeIncoming(register(user, cseq=cseq - 1, expires=expires, call_id="svc"))
    assert service.handle(first)
    challenge = first.sent[0].www_authenticate[0]
    request = register(user, cseq=cseq, expires=expires, call_id="svc")
    request.headers.add(
        "Authorization",
        str(
            authorization_for(
                challenge,
                method="REGISTER",
                uri=str(request.uri),
                username=user,
                password=password,
                cnonce="c",
            )
        ),
    )
    second = FakeIncoming(request)
    assert service.handle(second)
    return second.sent[0]


def clock():
    return T0 + trio.current_time()


@pytest.fixture
def mock_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def run(fn, mock_clock):
    trio.run(fn, clock=mock_clock)


def test_bindings_expire_on_time_and_the_sink_hears_everything(mock_clock):
    events = []

    async def main():
        service = RegistrarService(make_registrar(), sink=events.append, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await trio.sleep(5)
            assert registered(service, expires=60).status_code == 200
            assert [str(b.uri) for b in service.lookup(AOR)] == ["sip:9001@192.0.2.10:5062"]
            await trio.sleep(59.9)
            assert service.is_registered(AOR) and [e.type for e in events][-1] == "device.registered"
            await trio.sleep(0.2)
            assert not service.is_registered(AOR)
            assert [(e.type, e.at) for e in events] == [
                ("registration.added", T0 + 5),
                ("device.registered", T0 + 5),
                ("registration.removed", T0 + 65),
                ("device.unregistered", T0 + 65),
            ]
            assert events[-1].reason == "expired"
            stats = service.statistics()
            assert (stats.handled, stats.events_emitted, stats.sink_errors) == (2, 4, 0)
            nursery.cancel_scope.cancel()

    run(main, mock_clock)


def test_a_shorter_new_binding_wakes_the_expiry_task(mock_clock):
    events = []

    async def main():
        service = RegistrarService(make_registrar(), sink=events.append, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            registered(service, expires=3600, user="9001")
            await trio.sleep(1)
            registered(service, expires=60, user="9002", password="other-pw")
            await trio.sleep(61)
            gone = [(e.aor, e.at) for e in events if e.type == "device.unregistered"]
            assert gone == [(f"sip:9002@{REALM}", T0 + 61)]
            nursery.cancel_scope.cancel()

    run(main, mock_clock)


def test_channel_sink_and_a_failing_sink(mock_clock):
    async def main():
        send, receive = trio.open_memory_channel(3)
        sink = ChannelSink(send)
        service = RegistrarService(make_registrar(), sink=sink, clock=clock)
        registered(service)
        registered(service, user="9002", password="other-pw")
        got = [receive.receive_nowait().type for _ in range(3)]
        assert got == ["registration.added", "device.registered", "registration.added"]
        assert sink.dropped == 1  # the 4th did not fit

        def broken(event):
            raise RuntimeError("consumer bug")

        service = RegistrarService(make_registrar(), sink=broken, clock=clock)
        assert registered(service).status_code == 200  # the REGISTER is still answered
        assert service.statistics().sink_errors == 2

    run(main, mock_clock)


def test_handler_chains_other_methods_and_counts_unsent(mock_clock):
    async def main():
        service = RegistrarService(make_registrar(), clock=clock)
        others = []
        handler = service.handler(others.append)
        invite = FakeIncoming(Request("INVITE", f"sip:2000@{REALM}", [("CSeq", "1 INVITE")]))
        handler(invite)
        assert others == [invite] and invite.sent == []
        lost = FakeIncoming(register(cseq=1), can_send=False)
        handler(lost)
        assert lost.sent[0].status_code == 401 and service.statistics().responses_unsent == 1

    run(main, mock_clock)


def test_restart_restores_bindings_and_announces_them(tmp_path, mock_clock):
    path = tmp_path / "bindings.db"
    events = []

    async def first_life():
        with SqliteBindingStore(path) as store:
            service = RegistrarService(make_registrar(location=LocationService(store=store)), clock=clock)
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)
                registered(service, expires=600)
                nursery.cancel_scope.cancel()

    async def second_life():
        await trio.sleep(100)
        with SqliteBindingStore(path) as store:
            service = RegistrarService(
                make_registrar(location=LocationService(store=store)), sink=events.append, clock=clock
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)
                assert [(e.type, e.restored) for e in events] == [("device.registered", True)]
                assert service.is_registered(AOR)
                await trio.sleep(600)
                assert events[-1].type == "device.unregistered" and events[-1].at == pytest.approx(T0 + 600)
                nursery.cancel_scope.cancel()

    run(first_life, mock_clock)
    run(second_life, trio.testing.MockClock(autojump_threshold=0))


def test_constructor_validation():
    with pytest.raises(ValueError, match="registrar"):
        RegistrarService(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sink"):
        RegistrarService(make_registrar(), sink=42)  # type: ignore[arg-type]


CORE = ["auth", "credentials", "digestauth", "events", "guards", "location", "registrar", "store", "trunks"]
FORBIDDEN = {"trio", "socket", "time", "threading", "asyncio", "random", "datetime"}


@pytest.mark.parametrize("module", CORE)
def test_cores_are_pure(module):
    """Only service.py (and the CLI) may touch Trio, sockets or clocks."""
    path = Path(orchestrator.registrar.__file__).parent / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
