"""Conference mixer: bit-exact against a dense plain-numpy model of the gain matrix.

The model below is the O(N^2) definition (every ordered pair, its gain, its
ramp); the native mixer computes the same with a bus sum and sparse edges, and
must agree sample for sample, saturation included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mediacore import g711
from mediacore.mixer import GAIN_MAX, Mixer

ONE = 4096


# --------------------------------------------------------------------------- the model
class MixModel:
    """Plain-Python definition of what every slot hears (see cpp/mixer.hpp)."""

    def __init__(self, n: int, max_slots: int = 256) -> None:
        self.n = n
        self.max_slots = max_slots
        self.slots: dict[int, dict] = {}
        self.edges: dict[tuple[int, int], dict] = {}
        self.clipped = 0
        self.ticks = 0

    def add_slot(self, conference: bool = True) -> int:
        sid = next(i for i in range(self.max_slots + 1) if i not in self.slots)
        if sid == self.max_slots:
            return -1
        self.slots[sid] = dict(member=conference, muted=False, muted_prev=False, deaf=False, deaf_prev=False)
        return sid

    def remove_slot(self, sid: int) -> None:
        del self.slots[sid]
        self.edges = {k: e for k, e in self.edges.items() if sid not in k}

    def default(self, s: int, d: int) -> int:
        return ONE if s != d and self.slots[s]["member"] and self.slots[d]["member"] else 0

    def set_edge(self, s: int, d: int, g: int) -> None:
        if (s, d) in self.edges:
            self.edges[(s, d)].update(gain=g, releasing=False)
        else:
            self.edges[(s, d)] = dict(gain=g, prev=self.default(s, d), releasing=False)

    def clear_edge(self, s: int, d: int) -> None:
        if (s, d) in self.edges:
            self.edges[(s, d)]["releasing"] = True

    def gain(self, s: int, d: int) -> int:
        e = self.edges.get((s, d))
        return e["gain"] if e and not e["releasing"] else self.default(s, d)

    def explicit_edges(self) -> int:
        return len(self.edges)

    def _ramp(self, g0: int, g1: int) -> np.ndarray:
        i = np.arange(self.n, dtype=np.int64)
        return (g0 * (self.n - 1 - i) + g1 * (i + 1)) // self.n

    @staticmethod
    def _scale(x: np.ndarray, g) -> np.ndarray:
        return (x.astype(np.int64) * g + 2048) >> 12

    def tick(self, inputs: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        eff: dict[int, np.ndarray | None] = {}
        for s, sl in self.slots.items():
            x = inputs.get(s)
            g0, g1 = (0 if sl["muted_prev"] else ONE), (0 if sl["muted"] else ONE)
            if x is None or (g0 == 0 and g1 == 0):
                eff[s] = None
            elif g0 == g1:
                eff[s] = x.astype(np.int64)
            else:
                eff[s] = self._scale(x, self._ramp(g0, g1))
        out = {}
        for d, sl in self.slots.items():
            if sl["deaf"] and sl["deaf_prev"]:
                out[d] = np.zeros(self.n, np.int16)
                continue
            acc = np.zeros(self.n, np.int64)
            for s in self.slots:
                x = eff[s]
                if x is None:
                    continue
                e = self.edges.get((s, d))
                if e is None:
                    acc += x * (self.default(s, d) // ONE)
                else:
                    g1 = self.default(s, d) if e["releasing"] else e["gain"]
                    g = g1 if e["prev"] == g1 else self._ramp(e["prev"], g1)
                    acc += self._scale(x, g)
            self.clipped += int(np.count_nonzero((acc > 32767) | (acc < -32768)))
            o = np.clip(acc, -32768, 32767)
            if sl["deaf"] != sl["deaf_prev"]:
                o = self._scale(o, self._ramp(0 if sl["deaf_prev"] else ONE, 0 if sl["deaf"] else ONE))
            out[d] = o.astype(np.int16)
        for k, e in list(self.edges.items()):
            if e["releasing"]:
                del self.edges[k]
            else:
                e["prev"] = e["gain"]
        for sl in self.slots.values():
            sl["muted_prev"], sl["deaf_prev"] = sl["muted"], sl["deaf"]
        self.ticks += 1
        return out


def rows_of(outputs: dict[int, np.ndarray], rows: int, n: int) -> np.ndarray:
    arr = np.zeros((rows, n), np.int16)
    for s, o in outputs.items():
        arr[s] = o
    return arr


# --------------------------------------------------------------------------- stateful property test
pcm_value = st.one_of(st.integers(-32768, 32767), st.sampled_from([-32768, 32767, 0]))
gain_q12 = st.one_of(st.sampled_from([0, ONE, 2 * ONE, 8 * ONE, ONE // 2]), st.integers(0, 8 * ONE))


class MixerMachine(RuleBasedStateMachine):
    """Random graphs, gains, mode switches and inputs: native == model every tick."""

    N = 8  # 1 ms at 8 kHz: short frames keep the model fast; ramps still span the frame

    def __init__(self) -> None:
        super().__init__()
        self.native = Mixer(sample_rate=8000, frame_ms=1, max_slots=6)
        self.model = MixModel(self.N, max_slots=6)

    @rule(conference=st.booleans())
    def add_slot(self, conference):
        ids = self.model.add_slot(conference)
        if ids < 0:
            with pytest.raises(ValueError, match="full"):
                self.native.add_slot(conference)
        else:
            assert self.native.add_slot(conference) == ids

    @precondition(lambda self: self.model.slots)
    @rule(data=st.data())
    def remove_slot(self, data):
        s = data.draw(st.sampled_from(sorted(self.model.slots)))
        self.native.remove_slot(s)
        self.model.remove_slot(s)

    @precondition(lambda self: self.model.slots)
    @rule(data=st.data(), g=gain_q12)
    def set_edge(self, data, g):
        s = data.draw(st.sampled_from(sorted(self.model.slots)))
        d = data.draw(st.sampled_from(sorted(self.model.slots)))
        self.native.connect(s, d, g / ONE)
        self.model.set_edge(s, d, g)

    @precondition(lambda self: self.model.slots)
    @rule(data=st.data())
    def disconnect_or_reset(self, data):
        s = data.draw(st.sampled_from(sorted(self.model.slots)))
        d = data.draw(st.sampled_from(sorted(self.model.slots)))
        if data.draw(st.booleans()):
            self.native.disconnect(s, d)
            self.model.set_edge(s, d, 0)
        else:
            self.native.reset_edge(s, d)
            self.model.clear_edge(s, d)

    @precondition(lambda self: self.model.slots)
    @rule(data=st.data(), on=st.booleans(), what=st.sampled_from(["member", "muted", "deaf"]))
    def set_flag(self, data, on, what):
        s = data.draw(st.sampled_from(sorted(self.model.slots)))
        {"member": self.native.set_conference, "muted": self.native.mute, "deaf": self.native.deafen}[what](s, on)
        self.model.slots[s][what] = on

    @precondition(lambda self: len(self.model.slots) >= 3)
    @rule(data=st.data(), mode=st.sampled_from(["off", "listen", "whisper", "barge"]))
    def supervise(self, data, mode):
        sup, caller, agent = data.draw(st.permutations(sorted(self.model.slots)))[:3]
        self.native.supervise(sup, caller, agent, mode)
        hears = mode != "off"
        self.model.set_edge(caller, sup, ONE if hears else 0)
        self.model.set_edge(agent, sup, ONE if hears else 0)
        self.model.set_edge(sup, agent, ONE if mode in ("whisper", "barge") else 0)
        self.model.set_edge(sup, caller, ONE if mode == "barge" else 0)

    @rule(data=st.data(), batched=st.booleans())
    def tick(self, data, batched):
        inputs = {}
        for s in sorted(self.model.slots):
            if batched or data.draw(st.booleans()):
                inputs[s] = np.array(data.draw(st.lists(pcm_value, min_size=self.N, max_size=self.N)), np.int16)
        expected = self.model.tick(inputs)
        if batched:
            rows = self.native.slot_bound + data.draw(st.integers(0, 2))
            arr = rows_of(inputs, rows, self.N)
            got = self.native.mix(arr)
            assert np.array_equal(got, rows_of(expected, rows, self.N))
        else:
            for s, x in inputs.items():
                self.native.set_input(s, x)
            self.native.mix()
            for s, o in expected.items():
                assert np.array_equal(self.native.output(s), o), f"slot {s}"

    @invariant()
    def same_graph(self):
        st_ = self.native.statistics()
        assert st_.slots == len(self.model.slots)
        assert st_.edges == self.model.explicit_edges()
        assert st_.clipped_samples == self.model.clipped
        assert st_.ticks == self.model.ticks
        assert self.native.slots == sorted(self.model.slots)
        for s in self.model.slots:
            for d in self.model.slots:
                assert self.native.gain(s, d) == self.model.gain(s, d) / ONE


TestMixerMatchesModel = MixerMachine.TestCase
TestMixerMatchesModel.settings = settings(max_examples=100, stateful_step_count=30, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=60, deadline=None)
@given(
    n_parties=st.integers(1, 12),
    data=st.data(),
)
def test_random_full_graph_with_gains_matches_model_at_20ms(n_parties, data):
    """Dense random gain matrices, loud inputs (saturation), a real 20 ms frame."""
    n = 160
    m, model = Mixer(8000, 20), MixModel(n)
    for _ in range(n_parties):
        conf = data.draw(st.booleans())
        assert m.add_slot(conf) == model.add_slot(conf)
    for s in range(n_parties):
        for d in range(n_parties):
            if data.draw(st.integers(0, 3)) == 0:
                g = data.draw(gain_q12)
                m.connect(s, d, g / ONE)
                model.set_edge(s, d, g)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(3):
        x = rng.integers(-32768, 32768, size=(n_parties, n), dtype=np.int16)
        expected = model.tick({s: x[s] for s in range(n_parties)})
        assert np.array_equal(m.mix(x), rows_of(expected, n_parties, n))
    assert m.statistics().clipped_samples == model.clipped


# --------------------------------------------------------------------------- real speech
@pytest.fixture(scope="module")
def voices(speech_8k) -> np.ndarray:
    """Three different 'parties' cut from the espeak-ng speech: 30 frames each."""
    frames = 30
    n = 160
    parts = [speech_8k[i * frames * n:(i + 1) * frames * n] for i in range(3)]
    assert all(len(p) == frames * n for p in parts)
    return np.stack(parts).reshape(3, frames, n)


def test_three_party_conference_hears_the_others_exactly(voices):
    m = Mixer(8000, 20)
    slots = [m.add_slot() for _ in range(3)]
    assert slots == [0, 1, 2]
    for t in range(voices.shape[1]):
        x = np.ascontiguousarray(voices[:, t, :])
        heard = m.mix(x)
        wide = x.astype(np.int32)
        for d in range(3):
            expected = np.clip(wide.sum(axis=0) - wide[d], -32768, 32767).astype(np.int16)
            assert np.array_equal(heard[d], expected)
    assert m.statistics().edges == 0  # a full mesh needs no explicit edges


def test_supervisor_modes_who_hears_whom(voices):
    """listen -> whisper -> barge -> listen -> off on a live call, with real speech."""
    m = Mixer(8000, 20)
    caller, agent = m.add_slot(), m.add_slot()
    sup = m.add_slot(conference=False)
    c, a, s = (voices[i].astype(np.int32) for i in range(3))

    def run(t):
        return m.mix(np.stack([voices[0, t], voices[1, t], voices[2, t]]))

    def check(heard, t, sup_to_agent, sup_to_caller, sup_hears):
        assert np.array_equal(heard[caller], np.clip(a[t] + (s[t] if sup_to_caller else 0), -32768, 32767))
        assert np.array_equal(heard[agent], np.clip(c[t] + (s[t] if sup_to_agent else 0), -32768, 32767))
        expected_sup = np.clip(c[t] + a[t], -32768, 32767) if sup_hears else np.zeros(len(c[t]))
        assert np.array_equal(heard[sup], expected_sup)

    # Before any mode: the supervisor is connected to nobody.
    check(run(0), 0, False, False, False)
    schedule = [("listen", (False, False, True)), ("whisper", (True, False, True)),
                ("barge", (True, True, True)), ("listen", (False, False, True)), ("off", (False, False, False))]
    t = 1
    for mode, (to_agent, to_caller, hears) in schedule:
        m.supervise(sup, caller, agent, mode)
        run(t)  # the switching tick ramps
        for t2 in range(t + 1, t + 4):
            check(run(t2), t2, to_agent, to_caller, hears)
        t += 4
    # Mode switches are edges only: 4 of them, nothing else.
    assert m.statistics().edges == 4
    assert m.gain(sup, caller) == 0.0 and m.gain(caller, agent) == 1.0


def test_mode_switch_ramps_over_one_frame_without_a_step():
    """Whisper switched on mid-call: the agent hears the supervisor fade in over exactly one frame."""
    n = 160
    m = Mixer(8000, 20)
    caller, agent, sup = m.add_slot(), m.add_slot(), m.add_slot(conference=False)
    m.listen(sup, caller, agent)
    tone = np.full(n, 10000, np.int16)
    silent = np.zeros(n, np.int16)
    frames = np.stack([silent, silent, tone])
    assert not m.mix(frames)[agent].any()
    m.whisper(sup, caller, agent)
    ramp = m.mix(frames)[agent].astype(np.int32)
    i = np.arange(n)
    expected = (10000 * ((ONE * (i + 1)) // n) + 2048) >> 12
    assert np.array_equal(ramp, expected)
    assert ramp[-1] == 10000 and np.all(np.diff(ramp) >= 0) and np.max(np.diff(ramp)) <= 64  # 10000 / 160 per sample, rounded
    assert np.array_equal(m.mix(frames)[agent], tone)


def test_mute_and_deaf_ramp_then_hold():
    n = 160
    m = Mixer(8000, 20)
    a, b = m.add_slot(), m.add_slot()
    x = np.stack([np.full(n, 8000, np.int16), np.full(n, -4000, np.int16)])
    m.mute(a)
    heard = m.mix(x)
    assert heard[b][0] > 7900 and heard[b][-1] == 0  # ramps down to silence
    assert np.array_equal(m.mix(x)[b], np.zeros(n, np.int16))
    assert np.array_equal(m.mix(x)[a], x[b])  # a still hears b
    m.mute(a, False)
    heard = m.mix(x)
    assert heard[b][0] == (8000 * (ONE // n) + 2048) >> 12 and heard[b][-1] == 8000  # ramps back up
    m.deafen(b)
    heard = m.mix(x)
    assert heard[b][0] == (8000 * (ONE * (n - 1) // n) + 2048) >> 12 and heard[b][-1] == 0
    assert not m.mix(x)[b].any()
    assert m.is_deaf(b) and not m.is_muted(a)


def test_missing_input_is_silence_not_a_repeat():
    m = Mixer(8000, 20)
    a, b = m.add_slot(), m.add_slot()
    m.set_input(a, np.full(160, 1234, np.int16))
    m.mix()
    assert np.all(m.output(b) == 1234)
    m.mix()  # a said nothing this tick
    assert not m.output(b).any()


def test_saturation_is_counted():
    m = Mixer(8000, 20)
    for _ in range(3):
        m.add_slot()
    x = np.full((3, 160), 30000, np.int16)
    x[2] = -32768
    heard = m.mix(x)
    assert np.all(heard[2] == 32767)       # 60000 saturates
    assert np.all(heard[0] == -2768)       # 30000 - 32768
    m.connect(0, 1, GAIN_MAX)
    heard = m.mix(x)  # ramping up to 8x
    assert np.all(heard[1] <= 32767) and heard[1][-1] == 32767
    assert m.statistics().clipped_samples >= 160 + 100


@pytest.mark.parametrize("rate, n", [(8000, 160), (16000, 320), (48000, 960)])
def test_rates_and_frame_sizes(rate, n):
    m = Mixer(sample_rate=rate, frame_ms=20)
    assert m.frame_samples == n and m.sample_rate == rate
    model = MixModel(n)
    for conf in (True, True, False, True):
        assert m.add_slot(conf) == model.add_slot(conf)
    m.connect(2, 0, 0.5)
    model.set_edge(2, 0, ONE // 2)
    m.connect(1, 3, 3.25)
    model.set_edge(1, 3, 13 * ONE // 4)
    t = np.arange(n) / rate
    x = np.stack([(8000 * np.sin(2 * np.pi * f * t)).astype(np.int16) for f in (300, 440, 1000, 2000)])
    for _ in range(2):
        assert np.array_equal(m.mix(x), rows_of(model.tick(dict(enumerate(x))), 4, n))


def test_hundred_party_conference_matches_model():
    n = 160
    m, model = Mixer(8000, 20), MixModel(n)
    for _ in range(100):
        assert m.add_slot() == model.add_slot()
    rng = np.random.default_rng(3)
    x = np.clip(rng.laplace(0, 600, (100, n)), -32768, 32767).astype(np.int16)
    m.mute(7)
    model.slots[7]["muted"] = True
    m.listen(99, 0, 1)
    model.set_edge(0, 99, ONE), model.set_edge(1, 99, ONE), model.set_edge(99, 1, 0), model.set_edge(99, 0, 0)
    for _ in range(3):
        assert np.array_equal(m.mix(x), rows_of(model.tick(dict(enumerate(x))), 100, n))
    assert m.statistics().edges == 4


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_tick_is_decode_mix_encode(law, voices):
    m = Mixer(8000, 20)
    for _ in range(4):
        m.add_slot()
    m.remove_slot(2)  # a hole: row 2 is ignored and comes back as silence
    enc, dec = getattr(g711, f"{law}_encode"), getattr(g711, f"{law}_decode")
    pcm = np.stack([voices[0, 5], voices[1, 5], voices[2, 5], voices[0, 9]])
    codes = np.stack([np.frombuffer(enc(p), np.uint8) for p in pcm])
    out = m.mix_g711(codes, law)
    decoded = np.stack([dec(c.tobytes()) for c in codes]).astype(np.int32)
    for d, others in ((0, (1, 3)), (1, (0, 3)), (3, (0, 1))):
        mixed = np.clip(decoded[list(others)].sum(axis=0), -32768, 32767).astype(np.int16)
        assert out[d].tobytes() == enc(mixed)
    silence = g711.ULAW_SILENCE if law == "ulaw" else g711.ALAW_SILENCE
    assert np.all(out[2] == silence)


def test_slot_ids_are_reused_and_edges_die_with_their_slot():
    m = Mixer(8000, 20, max_slots=3)
    a, b, c = m.add_slot(), m.add_slot(), m.add_slot()
    with pytest.raises(ValueError, match="full"):
        m.add_slot()
    m.connect(a, b, 0.5)
    m.connect(b, c, 2.0)
    m.connect(c, a)
    assert m.statistics().edges == 3
    m.remove_slot(b)
    assert m.statistics().edges == 1 and m.slots == [a, c] and m.slot_bound == 3
    assert m.add_slot() == b
    assert not m.has_edge(a, b) and m.gain(a, b) == 1.0  # a fresh member
    m.reset_edge(c, a)
    assert not m.has_edge(c, a)


def test_gain_is_quantized_to_q12():
    m = Mixer()
    a, b = m.add_slot(), m.add_slot(conference=False)
    m.connect(a, b, 0.1)
    assert m.gain(a, b) == round(0.1 * 4096) / 4096
    assert m.gain(b, a) == 0.0


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(sample_rate=44100), "sample_rate"),
        (dict(frame_ms=0), "frame_ms"),
        (dict(frame_ms=20.5), "frame_ms"),
        (dict(max_slots=0), "max_slots"),
        (dict(max_slots=5000), "max_slots"),
    ],
)
def test_bad_construction(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        Mixer(**kwargs)


def test_native_constructor_refuses_bad_config_too():
    from mediacore import _mixer

    with pytest.raises(ValueError, match="sample_rate"):
        _mixer.Mixer(11025, 20, 4)


def test_bad_arguments_are_clear_value_errors():
    m = Mixer()
    a, b = m.add_slot(), m.add_slot()
    with pytest.raises(ValueError, match="src 7"):
        m.connect(7, a)
    with pytest.raises(ValueError, match="dst"):
        m.connect(a, -1)
    with pytest.raises(ValueError, match="gain"):
        m.connect(a, b, 9.0)
    with pytest.raises(ValueError, match="gain"):
        m.connect(a, b, -0.5)
    with pytest.raises(ValueError, match="gain"):
        m.connect(a, b, "loud")
    with pytest.raises(ValueError, match="slot True"):
        m.mute(True)
    with pytest.raises(ValueError, match="mode"):
        m.supervise(a, b, a, "spy")
    with pytest.raises(ValueError, match="different"):
        m.supervise(a, b, a, "listen")
    with pytest.raises(ValueError, match="law"):
        m.mix_g711(np.zeros((2, 160), np.uint8), "g729")
    with pytest.raises(ValueError, match="8000"):
        Mixer(16000).mix_g711(np.zeros((0, 320), np.uint8))


@pytest.mark.parametrize(
    "arr, needle",
    [
        (np.zeros((2, 160), np.float32), "int16"),
        (np.zeros((2, 160), np.int32), "int16"),
        (np.zeros(320, np.int16), "2-dimensional"),
        (np.zeros((2, 161), np.int16), "160 samples"),
        (np.zeros((1, 160), np.int16), "at least 2 rows"),
        (np.zeros((2, 320), np.int16)[:, ::2], "contiguous"),
        ([[0] * 160] * 2, "numpy"),
    ],
    ids=["float32", "int32", "1d", "short-row", "few-rows", "strided", "list"],
)
def test_bad_frames_are_refused(arr, needle):
    m = Mixer()
    m.add_slot(), m.add_slot()
    with pytest.raises((ValueError, TypeError), match=needle):
        m.mix(arr)


def test_bad_single_input_and_g711_codes():
    m = Mixer()
    a = m.add_slot()
    with pytest.raises(ValueError, match="160 samples"):
        m.set_input(a, np.zeros(159, np.int16))
    with pytest.raises(ValueError, match="int16"):
        m.set_input(a, np.zeros(160, np.float64))
    with pytest.raises(ValueError, match="uint8"):
        m.mix_g711(np.zeros((1, 160), np.int16))
    with pytest.raises(ValueError, match="slot 3"):
        m.output(3)
