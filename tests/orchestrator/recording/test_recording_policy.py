"""Recording policy: the [recording] section, the four modes, precedence, sampling, DTMF codes."""

from __future__ import annotations

import hashlib
import hmac
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.recording import DtmfCodes, Policy, RecordingConfig, decide, draw, parse_policy

TOML = """
[recording]
dir = "var/recordings"
format = "opus"
stereo = true
sample_rate = 16000
key_file = "var/recording.keys"
retention_days = 90
policy = "on_demand"
sample_seed = "audit-2024"
dtmf_pause = "*7"
dtmf_resume = "*8"

[recording.queues.support]
policy = "25%"
retention_days = 30
format = "wav"

[recording.queues.payments]
policy = "never"

[recording.queues.sales]
policy = "always"
stereo = false

[recording.trunks]
carrier-eu = "never"
carrier-us = "always"
"""


def cfg(**section) -> RecordingConfig:
    return RecordingConfig.from_mapping({"dir": "/tmp/x", **section})


def test_section_parses_into_policies_with_defaults_filled_in():
    config = RecordingConfig.from_mapping(tomllib.loads(TOML)["recording"])
    assert config.format == "opus" and config.sample_rate == 16000 and config.retention_days == 90
    assert config.default == Policy(mode="on_demand", percent=0.0)
    assert config.queues["support"] == Policy(mode="percentage", percent=25.0, format="wav", retention_days=30)
    assert config.trunks["carrier-eu"].mode == "never"
    assert config.dtmf_codes == {"*7": "pause", "*8": "resume"}
    eff = config.effective(config.queues["sales"])
    assert (eff.format, eff.stereo, eff.sample_rate, eff.retention_days) == ("opus", False, 16000, 90)
    assert config.retention_for("support") == 30 and config.retention_for("sales") == 90
    assert config.retention_for(None) == 90
    assert str(config.key_file) == "var/recording.keys" and config.encrypted


def test_relative_paths_resolve_from_base_dir(tmp_path):
    config = RecordingConfig.from_mapping({"dir": "rec", "key_file": "/etc/k"}, base_dir=tmp_path)
    assert config.dir == tmp_path / "rec" and str(config.key_file) == "/etc/k"


@pytest.mark.parametrize("section, message", [
    ({"format": "mp3"}, "recording.format: must be one of wav, wav-ulaw, wav-alaw, opus"),
    ({"stereo": "yes"}, "recording.stereo: must be true or false"),
    ({"sample_rate": 22050}, "recording.sample_rate: must be 0"),
    ({"retention_days": -1}, "recording.retention_days: must be a number >= 0"),
    ({"policy": "sometimes"}, "recording.policy: must be always, never, on_demand or a percentage"),
    ({"policy": "150%"}, "recording.policy: a percentage must be 0% to 100%"),
    ({"policy": "x%"}, "recording.policy: a percentage must be 0% to 100%"),
    ({"colour": "red"}, "recording.colour: unknown key"),
    ({"queues": {"support": {"policy": "always", "bogus": 1}}}, "recording.queues.support.bogus: unknown key"),
    ({"queues": {"support": {"policy": "always", "format": "flac"}}}, "recording.queues.support.format: must be"),
    ({"queues": {"support": 5}}, "recording.queues.support: must be a policy string or a table"),
    ({"trunks": "never"}, "recording.trunks: must be a table"),
    ({"dtmf_start": "*1", "dtmf_stop": "*1"}, "recording.dtmf_stop: '*1' is also dtmf_start"),
    ({"dtmf_start": "*1", "dtmf_stop": "*12"}, "recording.dtmf_stop: '*12' starts with dtmf_start"),
    ({"dtmf_pause": "pause"}, "recording.dtmf_pause: must be 1-8 DTMF digits"),
    ({"vad_mode": 4}, "recording.vad_mode: must be 0, 1, 2 or 3"),
    ({"chunk_size": 10}, "recording.chunk_size: must be an int from 1024"),
    ({"key_file": 7}, "recording.key_file: must be a path string"),
    ({"opus_bitrate": 100}, "recording.opus_bitrate: must be 0"),
])
def test_bad_section_is_refused_naming_the_key(section, message):
    with pytest.raises(ValueError) as err:
        RecordingConfig.from_mapping({"dir": "/tmp/x", **section})
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("text, expected", [
    ("always", ("always", 100.0)), ("never", ("never", 0.0)), ("on_demand", ("on_demand", 0.0)),
    ("25%", ("percentage", 25.0)), ("0%", ("percentage", 0.0)), ("100%", ("percentage", 100.0)),
    (" 12.5% ", ("percentage", 12.5)),
])
def test_parse_policy(text, expected):
    assert parse_policy(text) == expected


def test_always_never_on_demand_decisions_and_reasons():
    config = RecordingConfig.from_mapping(tomllib.loads(TOML)["recording"])
    d = decide("c1", config, queue="sales")
    assert (d.record, d.mode, d.source, d.reason) == (True, "always", "queue:sales", "queue sales: always")
    assert d.policy.stereo is False and d.policy.format == "opus"
    d = decide("c1", config, queue="payments", trunk="carrier-us")
    assert (d.record, d.mode, d.source) == (False, "never", "queue:payments")
    d = decide("c1", config)
    assert (d.record, d.mode, d.source) == (False, "on_demand", "default")
    assert d.reason == "the default policy: on demand (recording.start or DTMF)"
    d = decide("c1", config, trunk="carrier-us")
    assert (d.record, d.source) == (True, "trunk:carrier-us")


def test_precedence_trunk_never_wins_then_queue_then_trunk_then_default():
    config = RecordingConfig.from_mapping(tomllib.loads(TOML)["recording"])
    # a trunk saying never beats a queue saying always
    assert decide("c", config, queue="sales", trunk="carrier-eu").source == "trunk:carrier-eu"
    assert decide("c", config, queue="sales", trunk="carrier-eu").record is False
    # otherwise the queue beats the trunk
    assert decide("c", config, queue="sales", trunk="carrier-us").source == "queue:sales"
    # unknown queue: the trunk; unknown both: the default
    assert decide("c", config, queue="nope", trunk="carrier-us").source == "trunk:carrier-us"
    assert decide("c", config, queue="nope", trunk="nope").source == "default"


def test_decision_event_carries_the_reason_and_the_draw():
    config = RecordingConfig.from_mapping(tomllib.loads(TOML)["recording"])
    d = decide("node-42", config, queue="support", trunk="carrier-us")
    expected = int.from_bytes(hmac.new(b"audit-2024", b"node-42", hashlib.sha256).digest()[:8], "big") / 2**64 * 100
    assert d.draw == pytest.approx(expected, abs=1e-12)
    assert d.record is (expected < 25)
    event = d.to_event(at=5.0)
    assert event == {"type": "recording.decision", "at": 5.0, "call": "node-42", "record": d.record,
                     "mode": "percentage", "policy": "25%", "source": "queue:support", "reason": d.reason,
                     "queue": "support", "trunk": "carrier-us", "draw": d.draw}
    assert d.reason == (f"queue support: 25% sampled; draw {expected:.4f} "
                        f"{'<' if d.record else '>='} 25")


def test_percentage_is_reproducible_and_its_observed_rate_matches():
    config = cfg(policy="30%", sample_seed="seed-a")
    calls = [f"hotline-a-{i}" for i in range(20000)]
    first = [decide(c, config).record for c in calls]
    again = [decide(c, config).record for c in calls]
    assert first == again  # same seed, same calls: the same decisions
    rate = sum(first) / len(first)
    # Binomial(20000, 0.3): sd = sqrt(0.3 * 0.7 / 20000) = 0.0032; 5 sd = 0.016.
    assert abs(rate - 0.30) < 0.016
    other = [decide(c, cfg(policy="30%", sample_seed="seed-b")).record for c in calls]
    assert other != first  # another seed draws again
    assert abs(sum(other) / len(other) - 0.30) < 0.016


def test_percentage_edges():
    assert not any(decide(f"c{i}", cfg(policy="0%")).record for i in range(500))
    assert all(decide(f"c{i}", cfg(policy="100%")).record for i in range(500))


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_draw_is_in_range_and_matches_the_documented_hmac(seed, call):
    value = draw(seed, call)
    assert 0.0 <= value < 100.0 and math.isfinite(value)
    mac = hmac.new(seed.encode(), call.encode(), hashlib.sha256).digest()
    assert value == int.from_bytes(mac[:8], "big") / 2**64 * 100.0


def test_decide_refuses_a_bad_call_id():
    with pytest.raises(ValueError, match="call: must be a non-empty string"):
        decide("", cfg())


# ------------------------------------------------------------------------------------ DTMF codes
def model_dtmf(codes: dict[str, str], digits: str) -> list[str | None]:
    """Plain model: after each digit, the action whose code ends the digits keyed since the last match."""
    out, since = [], ""
    for d in digits:
        since += d
        hit = next((a for c, a in codes.items() if since.endswith(c)), None)
        out.append(hit)
        if hit is not None:
            since = ""
    return out


@settings(max_examples=300)
@given(st.text(alphabet="0123456789*#", max_size=60))
def test_dtmf_codes_match_the_model(digits):
    codes = {"*1": "start", "*2": "stop", "*79": "pause", "#8": "resume"}
    m = DtmfCodes(codes)
    assert [m.feed(d) for d in digits] == model_dtmf(codes, digits)


def test_dtmf_codes_examples_and_validation():
    m = DtmfCodes({"*7": "pause", "*8": "resume"})
    assert [m.feed(d) for d in "12*7"] == [None, None, None, "pause"]
    assert [m.feed(d) for d in "7*8"] == [None, None, "resume"]  # "*7" was consumed: "7" alone is nothing
    with pytest.raises(ValueError, match="is not one of start, stop, pause, resume"):
        DtmfCodes({"*1": "explode"})
    assert DtmfCodes({}).feed("1") is None
