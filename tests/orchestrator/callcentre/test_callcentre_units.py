"""The call centre's small parts on their own: the CRM client against a real HTTP server, the
queue announcements, the event fan-out and bridges, configuration, bad arguments."""

from __future__ import annotations

import math

import pytest
import trio
from crm_server import CrmServer
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.acd import Acd, AgentConfig, QueueConfig
from orchestrator.callcentre import (
    AcdService,
    CallCentre,
    CallEventBridge,
    CrmClient,
    CrmConfig,
    CrmLookupError,
    EventFanout,
    QueuePrompts,
    RegistrationBridge,
    ServiceClock,
    device_of,
)
from orchestrator.calls import CallEvent, CallRecord
from orchestrator.ivr import FlowRegistry
from orchestrator.ivr.runner import IvrRunner


@pytest.fixture(scope="module")
def crm():
    with CrmServer() as server:
        yield server


def lookup(client, kind, target, params, seconds=5.0):
    async def main():
        with trio.fail_after(seconds):
            return await client.lookup(kind, target, params)
    return trio.run(main)


# ---------------------------------------------------------------------------- CRM client
def test_http_get_with_the_params_in_the_query_string(crm):
    client = CrmClient()
    got = lookup(client, "http", f"{crm.url}/customer", {"number": "caller"})
    assert got == {"name": "Ada Lovelace", "vip": True, "account": "AC-1815", "tier": "gold"}
    assert crm.requests[-1] == ("GET", "/customer?number=caller", None)


def test_http_post_sends_the_params_as_json(crm):
    client = CrmClient(CrmConfig(http_method="POST"))
    got = lookup(client, "http", f"{crm.url}/customer", {"number": 5550100})
    assert got["name"] == "Charles Babbage"
    assert crm.requests[-1] == ("POST", "/customer", {"number": 5550100})


def test_json_rpc_result_and_error(crm):
    client = CrmClient(CrmConfig(jsonrpc_url=f"{crm.url}/rpc"))
    got = lookup(client, "jsonrpc", "crm.lookup_caller", {"number": "caller"})
    assert got["account"] == "AC-1815"
    method, path, body = crm.requests[-1]
    assert (method, path, body["jsonrpc"], body["method"], body["params"]) == (
        "POST", "/rpc", "2.0", "crm.lookup_caller", {"number": "caller"})
    with pytest.raises(CrmLookupError, match="unknown caller"):
        lookup(client, "jsonrpc", "crm.lookup_caller", {"number": "nobody"})
    assert client.statistics() == {"requests": 2, "failures": 1}


@pytest.mark.parametrize("path, message", [("/broken", "HTTP status 500"), ("/text", "not JSON"),
                                           ("/customer?number=nobody", "HTTP status 404")])
def test_http_failures_are_lookup_errors(crm, path, message):
    with pytest.raises(CrmLookupError, match=message):
        lookup(CrmClient(), "http", f"{crm.url}{path}", {})


def test_a_refused_connection_and_a_missing_endpoint_are_lookup_errors():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(CrmLookupError, match="cannot connect"):
        lookup(CrmClient(), "http", f"http://127.0.0.1:{port}/x", {})
    with pytest.raises(CrmLookupError, match="no CRM JSON-RPC endpoint"):
        lookup(CrmClient(), "jsonrpc", "crm.x", {})


def test_a_slow_crm_is_bounded_by_the_caller():
    with CrmServer() as slow:
        async def main():
            with trio.move_on_after(0.3) as scope:
                await CrmClient().lookup("http", f"{slow.url}/slow", {})
            return scope.cancelled_caught
        assert trio.run(main)


def test_crm_config_is_checked():
    with pytest.raises(ValueError, match="http_method"):
        CrmConfig(http_method="PUT")
    with pytest.raises(ValueError, match="url"):
        CrmConfig(jsonrpc_url="ftp://example.com/rpc")
    with pytest.raises(ValueError, match="config"):
        CrmClient("http://x")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- announcements
def prompts_dir(tmp_path, names):
    for n in names:
        (tmp_path / f"{n}.wav").write_bytes(b"RIFF")
    return QueuePrompts(directory=tmp_path)


def test_position_and_wait_announcements_pick_their_pieces(tmp_path):
    p = prompts_dir(tmp_path, ["queue_position", "number_3", "queue_wait", "number_2", "queue_minutes",
                               "queue_wait_short"])
    files, missing = p.announcement(3, 95.0)
    assert [f.rsplit("/", 1)[1] for f in files] == ["queue_position.wav", "number_3.wav", "queue_wait.wav",
                                                    "number_2.wav", "queue_minutes.wav"] and missing == 0
    files, missing = p.announcement(1, 20.0)
    assert [f.rsplit("/", 1)[1] for f in files] == ["queue_position.wav", "queue_wait_short.wav"]
    files, missing = p.announcement(42, None)  # no number_42 file, no wait known
    assert [f.rsplit("/", 1)[1] for f in files] == ["queue_position.wav"] and missing == 1


@given(ewt=st.floats(min_value=60.0, max_value=3600.0))
def test_the_wait_is_announced_in_whole_minutes_rounded_up(ewt):
    p = QueuePrompts(directory=None)
    files, missing = p.announcement(None, ewt)
    assert files == [] and missing == 3  # wait, number, minutes: all missing without a directory
    minutes = math.ceil(ewt / 60.0)
    assert minutes * 60 >= ewt and (minutes - 1) * 60 < ewt


def test_queue_prompts_are_checked():
    with pytest.raises(ValueError, match="callback_key"):
        QueuePrompts(callback_key="12")
    with pytest.raises(ValueError, match="callback_listen"):
        QueuePrompts(callback_listen=0)


# ---------------------------------------------------------------------------- bridges
@pytest.mark.parametrize("uri, device", [("sip:9001@hotline", "9001"), ("sips:alice@example.com;transport=tls",
                                                                       "alice"),
                                         ("9002", "9002"), ("sip:example.com", None), ("", None), (None, None)])
def test_device_of(uri, device):
    assert device_of(uri) == device


class Log:
    def __init__(self, fail=False):
        self.appended = []
        self.fail = fail

    def append_nowait(self, event):
        if self.fail:
            raise RuntimeError("disk full")
        self.appended.append(event)


class Bus:
    def __init__(self):
        self.published = []

    def publish(self, event):
        self.published.append(event)


def test_the_fanout_logs_and_publishes_every_event_and_survives_a_failing_store():
    from orchestrator.acd import events as ev

    log, bus = Log(), Bus()
    fan = EventFanout(log, bus, clock=lambda: 123.0)
    fan(ev.CallQueued(at=5.0, call="c", queue="q", priority=0, caller=None, position=1, ewt=None))
    fan({"type": "call.ivr", "call": "c", "node": "menu", "digits": "2"})
    assert [e["type"] for e in log.appended] == ["call.queued", "call.ivr"]
    assert log.appended[0]["at"] == 5.0 and log.appended[1]["at"] == 123.0 and bus.published == log.appended
    broken = EventFanout(Log(fail=True), bus)
    broken({"type": "call.ivr", "call": "c"})
    s = broken.statistics()
    assert (s.events, s.logged, s.log_errors, s.published) == (1, 0, 1, 1)
    with pytest.raises(ValueError, match="log"):
        EventFanout(object())
    with pytest.raises(ValueError, match="bus"):
        EventFanout(None, object())


def _service():
    acd = Acd([QueueConfig(name="q")], [AgentConfig(id="a1", queues={"q": 0})])
    log = Log()
    return AcdService(acd, record=EventFanout(log)), log


def test_registration_events_drive_the_agent_state():
    from orchestrator.registrar.events import DeviceRegistered, DeviceUnregistered

    service, log = _service()

    class Binding:
        def to_dict(self):
            return {"aor": "sip:9001@hotline"}

    async def main():
        service.login("a1", "9001")
        bridge = RegistrationBridge(service, service.record)
        states = [service.get_agent("a1")["state"]]
        bridge(DeviceRegistered(at=1.0, aor="sip:9001@hotline", binding=Binding()))
        states.append(service.get_agent("a1")["state"])
        bridge(DeviceUnregistered(at=2.0, aor="sip:9001@hotline", binding=Binding(), reason="expired"))
        states.append(service.get_agent("a1")["state"])
        return states, bridge
    states, bridge = trio.run(main)
    assert states == ["unregistered", "available", "unregistered"]
    assert [e["type"] for e in log.appended if e["type"].startswith("device.")] == ["device.registered",
                                                                                    "device.unregistered"]
    assert log.appended[-1]["device"] == "9001" and bridge.handled == 2 and bridge.errors == 0


def test_personal_calls_make_the_device_busy_and_idle_again():
    service, log = _service()

    def event(name, **kw):
        return CallEvent(name=name, call_id="hl-7", at=10.0, caller="sip:9001@127.0.0.1", callee="9009", **kw)

    async def main():
        service.login("a1", "9001")
        service.device_registered("9001")
        bridge = CallEventBridge(service, service.record)
        bridge.emit(event("call.incoming"))
        busy = service.get_agent("a1")["state"]
        record = CallRecord(call_id="hl-7", direction="inbound", caller="sip:9001@127.0.0.1", callee="9009",
                            route="extension:9009", started_at=1.0, answered_at=2.0, ended_at=10.0,
                            ring_seconds=1.0, talk_seconds=8.0, hold_seconds=0.0, cause="normal_clearing",
                            sip_code=200, ended_by="caller", transferred=False, legs=())
        bridge.emit(event("call.ended", details={"cause": "normal_clearing", "sip_code": 200}, record=record))
        return busy, service.get_agent("a1")["state"], bridge
    busy, after, bridge = trio.run(main)
    assert (busy, after) == ("busy", "available")
    ended = next(e for e in log.appended if e["type"] == "call.ended")
    assert (ended["call"], ended["cause"], ended["reason"], ended["talk_seconds"]) == (
        "hl-7", "normal_clearing", "caller_hangup", 8.0)
    assert "talk" not in ended and "hold" not in ended  # the ACD's own talk/hold are the record's
    assert bridge.errors == 0


def test_the_service_clock_is_unix_time_that_follows_trio_and_never_goes_back():
    import time

    clock = ServiceClock()

    async def main():
        a = clock()
        await trio.sleep(0.05)
        b = clock()
        return a, b, clock.to_trio(b) - trio.current_time()
    a, b, skew = trio.run(main)
    assert abs(a - time.time()) < 5 and b - a >= 0.05 and abs(skew) < 0.01


# ---------------------------------------------------------------------------- configuration
def test_call_centre_from_config(tmp_path):
    flows = tmp_path / "ivr"
    flows.mkdir()
    (flows / "bye.yaml").write_text("start: bye\nnodes:\n  bye:\n    type: hangup\n")
    centre = CallCentre.from_config({
        "queue": [{"name": "support", "ring_timeout": 15}],
        "agent": [{"id": "9001", "queues": ["support"]}],
        "ivr": {"flows": "ivr", "surveys": {"*": "bye"}, "crm_url": "http://127.0.0.1:9/rpc",
                "recordings": "rec", "music": {"default": "moh.wav"}},
    }, base_dir=tmp_path)
    assert centre.acd.acd.queues() == ["support"] and centre.acd.acd.agents() == ["9001"]
    assert list(centre.registry.flows) == ["bye"] and centre.ivr.survey_for("sales") == "bye"
    assert centre.ivr.crm.config.jsonrpc_url == "http://127.0.0.1:9/rpc"
    assert centre.prompts.music == {"default": str(tmp_path / "moh.wav")}
    assert set(centre.handlers) == {"queue", "ivr"}
    with pytest.raises(ValueError, match="ivr.flow_dir"):
        CallCentre.from_config({"ivr": {"flow_dir": "x"}})
    (flows / "bad.yaml").write_text("start: nowhere\nnodes: {}\n")
    with pytest.raises(ValueError, match="ivr.flows"):
        CallCentre.from_config({"ivr": {"flows": "ivr"}}, base_dir=tmp_path)


def test_services_check_their_arguments(tmp_path):
    acd = Acd([QueueConfig(name="q")])
    with pytest.raises(ValueError, match="acd"):
        AcdService(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ring_grace"):
        AcdService(acd, ring_grace=-1)
    with pytest.raises(ValueError, match="record"):
        AcdService(acd, record=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="registry"):
        IvrRunner(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="surveys"):
        IvrRunner(FlowRegistry(), surveys={"q": ""}, recordings=tmp_path)
    with pytest.raises(ValueError, match="barge_in_grace"):
        IvrRunner(FlowRegistry(), barge_in_grace=-1, recordings=tmp_path)

    async def main():
        service = AcdService(acd)

        class FakeCall:
            id = "x"
        with pytest.raises(ValueError, match="max_wait"):
            await service.queue_call(FakeCall(), "q", max_wait=0)
        with pytest.raises(ValueError, match="number"):
            service.request_callback("x", "q", "")
    trio.run(main)
