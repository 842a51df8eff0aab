"""The location service's binding rules (RFC 3261 10.3 steps 6-8) on a
simulated clock, its events, its persistence hook, and a hypothesis state
machine against a plain-Python model of the rules."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orchestrator.registrar import (
    Binding,
    BindingAdded,
    BindingRefreshed,
    BindingRemoved,
    DeviceRegistered,
    DeviceUnregistered,
    LocationService,
    MemoryBindingStore,
    RegistrationRejected,
    SqliteBindingStore,
    aor_key,
)
from orchestrator.sip import Address, parse_name_addr

AOR = "sip:9001@hotline.example"
T0 = 1_700_000_000.0
SRC = Address("192.0.2.10", 5062, "UDP")


def c(text: str):
    return parse_name_addr(text, "Contact")


def kinds(events) -> list[str]:
    return [e.type + (f":{e.reason}" if hasattr(e, "reason") else "") for e in events]


def test_aor_key_is_canonical_user_at_host():
    assert aor_key("sip:9001@HotLine.Example:5060;transport=tcp") == "sip:9001@hotline.example"
    assert aor_key("sips:9001@hotline.example") == "sip:9001@hotline.example"
    assert aor_key("sip:a%62c@x.example") == "sip:abc@x.example"  # escapes decoded (10.3 step 5)
    assert aor_key("sip:Alice@x.example") != aor_key("sip:alice@x.example")  # the user part is case-sensitive
    with pytest.raises(ValueError, match="user"):
        aor_key("sip:hotline.example")
    with pytest.raises(ValueError, match="sip"):
        aor_key("tel:+15551234")


def test_add_refresh_and_remove_with_events():
    loc = LocationService()
    after, events = loc.register(
        AOR,
        [(c("<sip:9001@192.0.2.10:5062>"), 60)],
        call_id="x",
        cseq=1,
        now=T0,
        source=SRC,
        user_agent="phone/1",
        username="9001",
    )
    assert kinds(events) == ["registration.added", "device.registered"]
    b = after[0]
    assert (b.aor, str(b.uri), b.expires_at, b.transport, b.user_agent) == (
        AOR,
        "sip:9001@192.0.2.10:5062",
        T0 + 60,
        "UDP",
        "phone/1",
    )
    assert events[1].binding is b
    _, events = loc.register(AOR, [(c("<sip:9001@192.0.2.10:5062>"), 120)], call_id="x", cseq=2, now=T0 + 30)
    assert kinds(events) == ["registration.refreshed"]
    assert loc.lookup(AOR, T0 + 100)[0].expires_at == T0 + 150
    assert loc.lookup(AOR, T0 + 100)[0].registered_at == T0  # first registration kept
    _, events = loc.register(AOR, [(c("<sip:9001@192.0.2.10:5062>"), 0)], call_id="x", cseq=3, now=T0 + 40)
    assert kinds(events) == ["registration.removed:unregistered", "device.unregistered:unregistered"]
    assert loc.lookup(AOR, T0 + 40) == [] and loc.statistics().bindings == 0


def test_expires_zero_for_an_unknown_contact_changes_nothing():
    loc = LocationService()
    after, events = loc.register(AOR, [(c("<sip:9001@192.0.2.10>"), 0)], call_id="x", cseq=1, now=T0)
    assert after == () and events == []


def test_same_call_id_needs_a_higher_cseq_and_a_failure_changes_nothing():
    loc = LocationService()
    loc.register(AOR, [(c("<sip:9001@192.0.2.10>"), 60)], call_id="x", cseq=5, now=T0)
    for stale_cseq in (5, 4):
        with pytest.raises(RegistrationRejected) as err:
            loc.register(
                AOR,
                [(c("<sip:9001@192.0.2.99>"), 60), (c("<sip:9001@192.0.2.10>"), 0)],
                call_id="x",
                cseq=stale_cseq,
                now=T0 + 1,
            )
        assert err.value.status_code == 500
    # atomic: the new contact of the failed request was not added either
    assert [str(b.uri) for b in loc.lookup(AOR, T0 + 2)] == ["sip:9001@192.0.2.10"]
    assert loc.statistics().rejected_out_of_order == 2


def test_a_different_call_id_updates_whatever_its_cseq():
    """A phone that rebooted has a new Call-ID and may restart CSeq at 1 (10.3 step 7)."""
    loc = LocationService()
    loc.register(AOR, [(c("<sip:9001@192.0.2.10>"), 60)], call_id="before-reboot", cseq=900, now=T0)
    _, events = loc.register(
        AOR, [(c("<sip:9001@192.0.2.10>"), 60)], call_id="after-reboot", cseq=1, now=T0 + 5
    )
    assert kinds(events) == ["registration.refreshed"]
    assert loc.lookup(AOR, T0 + 6)[0].call_id == "after-reboot"
    _, events = loc.register(AOR, [(c("<sip:9001@192.0.2.10>"), 0)], call_id="third", cseq=1, now=T0 + 7)
    assert kinds(events)[0] == "registration.removed:unregistered"


def test_uri_comparison_follows_rfc3261_19_1_4():
    loc = LocationService()
    loc.register(AOR, [(c("<sip:9001@HOST.example:5062;transport=udp>"), 60)], call_id="x", cseq=1, now=T0)
    _, events = loc.register(
        AOR, [(c("<sip:9001@host.example:5062;transport=UDP>"), 60)], call_id="x", cseq=2, now=T0
    )
    assert kinds(events) == ["registration.refreshed"]  # host and parameter values compare case-insensitively
    _, events = loc.register(AOR, [(c("<sip:9001@host.example>"), 60)], call_id="x", cseq=3, now=T0)
    assert kinds(events) == ["registration.added"]  # a missing port is not 5062
    assert len(loc.lookup(AOR, T0)) == 2


def test_same_instance_id_replaces_a_binding_whose_address_changed():
    loc = LocationService()
    inst = ';+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>"'
    loc.register(AOR, [(c(f"<sip:9001@192.0.2.10:5062>{inst}"), 60)], call_id="x", cseq=1, now=T0)
    _, events = loc.register(
        AOR, [(c(f"<sip:9001@192.0.2.10:40000>{inst}"), 60)], call_id="x", cseq=2, now=T0 + 1
    )
    assert kinds(events) == ["registration.refreshed"]
    (b,) = loc.lookup(AOR, T0 + 1)
    assert (
        str(b.uri) == "sip:9001@192.0.2.10:40000"
        and b.instance == "<urn:uuid:00000000-0000-0000-0000-000000000001>"
    )


def test_contact_star_removes_every_binding_under_the_cseq_rule():
    loc = LocationService()
    loc.register(
        AOR, [(c("<sip:9001@192.0.2.10>"), 60), (c("<sip:9001@192.0.2.11>"), 60)], call_id="x", cseq=3, now=T0
    )
    loc.register(AOR, [(c("<sip:9001@192.0.2.12>"), 60)], call_id="y", cseq=1, now=T0)
    with pytest.raises(RegistrationRejected):
        loc.remove_all(AOR, call_id="x", cseq=3, now=T0 + 1)
    assert len(loc.lookup(AOR, T0 + 1)) == 3
    after, events = loc.remove_all(AOR, call_id="x", cseq=4, now=T0 + 1)
    assert after == () and kinds(events) == ["registration.removed:unregistered"] * 3 + [
        "device.unregistered:unregistered"
    ]
    assert loc.remove_all(AOR, call_id="x", cseq=5, now=T0 + 2) == ((), [])


def test_lookup_orders_by_q_then_most_recent_and_hides_expired():
    loc = LocationService()
    loc.register(
        AOR,
        [
            (c("<sip:a@192.0.2.1>;q=0.5"), 100),
            (c("<sip:b@192.0.2.2>"), 10),
            (c("<sip:c@192.0.2.3>;q=0.9"), 100),
        ],
        call_id="x",
        cseq=1,
        now=T0,
    )
    loc.register(AOR, [(c("<sip:d@192.0.2.4>;q=0.5"), 100)], call_id="y", cseq=1, now=T0 + 1)
    assert [b.uri.user for b in loc.lookup(AOR, T0 + 2)] == ["b", "c", "d", "a"]  # no q counts as 1.0
    assert [b.uri.user for b in loc.lookup(AOR, T0 + 10)] == ["c", "d", "a"]  # b expired at exactly T0+10
    assert loc.is_registered(AOR, T0 + 100) and not loc.is_registered(AOR, T0 + 101)


def test_expire_emits_per_binding_then_device_events_at_the_right_time():
    loc = LocationService()
    loc.register(
        AOR, [(c("<sip:a@192.0.2.1>"), 30), (c("<sip:b@192.0.2.2>"), 60)], call_id="x", cseq=1, now=T0
    )
    assert loc.next_expiry() == T0 + 30
    assert loc.expire(T0 + 29.9) == []
    assert kinds(loc.expire(T0 + 30)) == ["registration.removed:expired"]
    assert loc.next_expiry() == T0 + 60
    events = loc.expire(T0 + 61)
    assert kinds(events) == ["registration.removed:expired", "device.unregistered:expired"]
    assert isinstance(events[1], DeviceUnregistered) and events[1].binding.uri.user == "b"
    assert loc.next_expiry() is None and loc.statistics().expired == 2


def test_a_refresh_moves_the_expiry_and_leaves_no_stale_timer():
    loc = LocationService()
    loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 30)], call_id="x", cseq=1, now=T0)
    loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 30)], call_id="x", cseq=2, now=T0 + 20)
    assert loc.expire(T0 + 30) == []  # the first expiry time is dead
    assert loc.next_expiry() == T0 + 50
    assert kinds(loc.expire(T0 + 50))[-1] == "device.unregistered:expired"


def test_an_expired_binding_noticed_by_a_register_is_reported_once():
    loc = LocationService()
    loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 30)], call_id="x", cseq=1, now=T0)
    _, events = loc.register(AOR, [(c("<sip:b@192.0.2.2>"), 30)], call_id="y", cseq=1, now=T0 + 40)
    # the AOR never looked unregistered to the consumer: no device events
    assert kinds(events) == ["registration.removed:expired", "registration.added"]
    assert loc.expire(T0 + 45) == []


def test_heap_is_compacted_under_frequent_refreshes():
    loc = LocationService()
    for i in range(5000):
        loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 3600)], call_id="x", cseq=i + 1, now=T0 + i * 0.01)
    assert loc.statistics().pending_expiries <= 2 * 1 + 1024 + 1
    assert len(loc.lookup(AOR, T0 + 60)) == 1


@pytest.mark.parametrize("policy", ["reject", "evict-oldest"])
def test_contact_limit_per_aor(policy):
    loc = LocationService(max_contacts=2, on_limit=policy)
    loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 60)], call_id="a", cseq=1, now=T0)
    loc.register(AOR, [(c("<sip:b@192.0.2.2>"), 60)], call_id="b", cseq=1, now=T0 + 1)
    if policy == "reject":
        with pytest.raises(RegistrationRejected) as err:
            loc.register(AOR, [(c("<sip:c@192.0.2.3>"), 60)], call_id="c", cseq=1, now=T0 + 2)
        assert err.value.status_code == 503 and loc.statistics().rejected_over_limit == 1
        assert [b.uri.user for b in loc.lookup(AOR, T0 + 2)] == ["b", "a"]
    else:
        _, events = loc.register(AOR, [(c("<sip:c@192.0.2.3>"), 60)], call_id="c", cseq=1, now=T0 + 2)
        assert kinds(events) == ["registration.removed:evicted", "registration.added"]
        assert events[0].binding.uri.user == "a"  # the least recently refreshed goes
        assert [b.uri.user for b in loc.lookup(AOR, T0 + 2)] == ["c", "b"]
    # a request that alone exceeds the limit is refused under either policy
    with pytest.raises(RegistrationRejected):
        loc.register(AOR, [(c(f"<sip:{u}@192.0.2.9>"), 60) for u in "xyz"], call_id="z", cseq=1, now=T0 + 3)
    # refreshing an existing contact at the limit is fine
    loc.register(AOR, [(c("<sip:b@192.0.2.2>"), 60)], call_id="b", cseq=2, now=T0 + 4)


def test_duplicate_contacts_in_one_request_count_once_last_wins():
    loc = LocationService()
    after, events = loc.register(
        AOR, [(c("<sip:a@192.0.2.1>"), 60), (c("<sip:a@192.0.2.1>;q=0.2"), 90)], call_id="x", cseq=1, now=T0
    )
    assert len(after) == 1 and after[0].expires_at == T0 + 90 and after[0].q == 0.2
    assert kinds(events) == ["registration.added", "device.registered"]


def test_expires_parameter_is_not_stored_but_feature_tags_are():
    loc = LocationService()
    after, _ = loc.register(
        AOR,
        [(c('<sip:a@192.0.2.1>;expires=60;+sip.instance="<urn:x>";reg-id=1'), 60)],
        call_id="x",
        cseq=1,
        now=T0,
    )
    assert str(after[0].contact) == '<sip:a@192.0.2.1>;+sip.instance="<urn:x>";reg-id=1'
    assert after[0].reg_id == "1"


class FailingStore(MemoryBindingStore):
    fail = False

    def save(self, aor, bindings):
        if self.fail:
            raise OSError("disk full")
        super().save(aor, bindings)


def test_a_store_failure_is_a_500_and_changes_nothing():
    store = FailingStore()
    loc = LocationService(store=store)
    loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 60)], call_id="x", cseq=1, now=T0)
    store.fail = True
    with pytest.raises(RegistrationRejected) as err:
        loc.register(
            AOR, [(c("<sip:a@192.0.2.1>"), 0), (c("<sip:b@192.0.2.2>"), 60)], call_id="x", cseq=2, now=T0 + 1
        )
    assert err.value.status_code == 500 and "disk full" in err.value.detail
    assert [b.uri.user for b in loc.lookup(AOR, T0 + 1)] == ["a"]
    assert loc.statistics().store_errors == 1
    # expiry still happens in memory when the store is down (the bindings are dead either way)
    assert kinds(loc.expire(T0 + 60))[-1] == "device.unregistered:expired"


def test_bindings_survive_a_restart_in_sqlite(tmp_path):
    path = tmp_path / "bindings.db"
    with SqliteBindingStore(path) as store:
        loc = LocationService(store=store)
        loc.register(
            AOR,
            [(c('<sip:a@192.0.2.1:5062;transport=tcp>;+sip.instance="<urn:uuid:1>";q=0.7'), 600)],
            call_id="x",
            cseq=7,
            now=T0,
            source=Address("192.0.2.1", 40001, "TCP"),
            user_agent="Linphone/5",
            username="9001",
            path=["<sip:edge.example;lr>"],
        )
        loc.register("sip:9002@hotline.example", [(c("<sip:b@192.0.2.2>"), 30)], call_id="y", cseq=1, now=T0)
        loc.register("sip:9003@hotline.example", [(c("<sip:z@192.0.2.3>"), 30)], call_id="z", cseq=1, now=T0)
        loc.register("sip:9003@hotline.example", [(c("<sip:z@192.0.2.3>"), 0)], call_id="z", cseq=2, now=T0)
        before = loc.lookup(AOR, T0)
    with SqliteBindingStore(path) as store:  # "restart" 100 s later
        loc = LocationService(store=store)
        events = loc.restore(T0 + 100)
        assert kinds(events) == ["device.registered"] and events[0].restored
        assert loc.lookup(AOR, T0 + 100) == before
        b = before[0]
        assert (b.transport, b.user_agent, b.q, b.cseq, b.instance, b.path) == (
            "TCP",
            "Linphone/5",
            0.7,
            7,
            "<urn:uuid:1>",
            ("<sip:edge.example;lr>",),
        )
        assert loc.lookup("sip:9002@hotline.example", T0 + 100) == []  # expired while we were down
        # the CSeq rule holds across the restart
        with pytest.raises(RegistrationRejected):
            loc.register(
                AOR, [(c("<sip:a@192.0.2.1:5062;transport=tcp>"), 60)], call_id="x", cseq=7, now=T0 + 101
            )
    with SqliteBindingStore(path) as store:
        assert {x.aor for x in store.load()} == {AOR}  # the expired AOR was dropped from the file


def test_damaged_store_rows_are_skipped(tmp_path):
    path = tmp_path / "bindings.db"
    with SqliteBindingStore(path) as store:
        store.save(
            AOR,
            [
                Binding(
                    aor=AOR,
                    contact=c("<sip:a@192.0.2.1>"),
                    expires_at=T0 + 60,
                    call_id="x",
                    cseq=1,
                    registered_at=T0,
                    updated_at=T0,
                )
            ],
        )
        store._db.execute("INSERT INTO registrar_bindings VALUES ('sip:bad@x', '[{\"aor\": 1}]')")
        store._db.execute("INSERT INTO registrar_bindings VALUES ('sip:worse@x', 'not json')")
        assert [b.aor for b in store.load()] == [AOR] and store.damaged == 2


def test_event_records_are_plain_data():
    loc = LocationService()
    _, events = loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 60)], call_id="x", cseq=1, now=T0, source=SRC)
    d = events[1].to_dict()
    assert d["type"] == "device.registered" and d["restored"] is False and d["aor"] == AOR
    assert d["binding"]["source"] == {"host": "192.0.2.10", "port": 5062, "transport": "UDP"}
    assert Binding.from_dict(d["binding"]) == events[1].binding
    removed = loc.register(AOR, [(c("<sip:a@192.0.2.1>"), 0)], call_id="x", cseq=2, now=T0)[1][0]
    assert isinstance(removed, BindingRemoved) and removed.to_dict()["reason"] == "unregistered"


def test_configuration_errors_are_value_errors():
    with pytest.raises(ValueError, match="max_contacts"):
        LocationService(max_contacts=0)
    with pytest.raises(ValueError, match="on_limit"):
        LocationService(on_limit="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expires"):
        LocationService().register(AOR, [(c("<sip:a@192.0.2.1>"), -1)], call_id="x", cseq=1, now=T0)


# ----------------------------------------------------------------------------------------------
# Property test: the service against a plain model of the rules
# ----------------------------------------------------------------------------------------------
URIS = [f"sip:u{i}@192.0.2.{i}" for i in range(4)]
AORS = ["sip:1@h.example", "sip:2@h.example"]


class LocationMachine(RuleBasedStateMachine):
    """Model: aor -> {uri: (expires_at, call_id, cseq)}; events checked against model transitions."""

    def __init__(self) -> None:
        super().__init__()
        self.loc = LocationService(max_contacts=3)
        self.model: dict[str, dict[str, tuple[float, str, int]]] = {a: {} for a in AORS}
        self.now = T0
        self.announced = {a: False for a in AORS}  # what the device events told a consumer

    def live(self, aor):
        return {u: v for u, v in self.model[aor].items() if v[0] > self.now}

    def track(self, events):
        for e in events:
            if isinstance(e, DeviceRegistered):
                assert not self.announced[e.aor]
                self.announced[e.aor] = True
            elif isinstance(e, DeviceUnregistered):
                assert self.announced[e.aor]
                self.announced[e.aor] = False
            else:
                assert isinstance(e, (BindingAdded, BindingRefreshed, BindingRemoved))

    @rule(
        aor=st.sampled_from(AORS),
        contacts=st.lists(st.tuples(st.sampled_from(URIS), st.sampled_from([0, 10, 100])), max_size=3),
        call_id=st.sampled_from(["a", "b"]),
        cseq=st.integers(1, 6),
    )
    def register(self, aor, contacts, call_id, cseq):
        live = self.live(aor)
        wanted = dict(contacts)  # last wins
        refused = any(u in live and live[u][1] == call_id and cseq <= live[u][2] for u in wanted)
        after = dict(live)
        for u, e in wanted.items():
            if e == 0:
                after.pop(u, None)
            else:
                after[u] = (self.now + e, call_id, cseq)
        refused = refused or len(after) > 3
        try:
            _, events = self.loc.register(
                aor, [(c(f"<{u}>"), e) for u, e in contacts], call_id=call_id, cseq=cseq, now=self.now
            )
        except RegistrationRejected:
            assert refused
            return
        assert not refused
        self.model[aor] = after
        self.track(events)

    @rule(aor=st.sampled_from(AORS), call_id=st.sampled_from(["a", "b"]), cseq=st.integers(1, 6))
    def star(self, aor, call_id, cseq):
        live = self.live(aor)
        refused = any(v[1] == call_id and cseq <= v[2] for v in live.values())
        try:
            _, events = self.loc.remove_all(aor, call_id=call_id, cseq=cseq, now=self.now)
        except RegistrationRejected:
            assert refused
            return
        assert not refused
        self.model[aor] = {}
        self.track(events)

    @rule(dt=st.sampled_from([1.0, 9.5, 10.0, 50.0, 120.0]))
    def advance(self, dt):
        self.now += dt

    @rule()
    def expire(self):
        self.track(self.loc.expire(self.now))
        for aor in AORS:
            self.model[aor] = self.live(aor)
            assert self.announced[aor] == bool(self.model[aor])

    @invariant()
    def lookup_matches_model(self):
        for aor in AORS:
            got = {str(b.uri): (b.expires_at, b.call_id, b.cseq) for b in self.loc.lookup(aor, self.now)}
            assert got == self.live(aor)


TestLocationMachine = LocationMachine.TestCase
TestLocationMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
