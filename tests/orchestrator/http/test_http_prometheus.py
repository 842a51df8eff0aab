"""The metrics registry and the text exposition format 0.0.4, checked by exact text and by
prometheus_client's own parser (a well-kept implementation of the format)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.http.prometheus import Registry, format_value


def parsed(text: str) -> dict[str, list]:
    return {f.name: [(s.name, dict(s.labels), s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_exact_text_of_each_type():
    r = Registry()
    calls = r.counter("hotline_calls_total", "Calls that entered a queue.", ("queue",))
    waiting = r.gauge("hotline_queue_waiting", "Calls waiting.\nNow.", ("queue",))
    wait = r.histogram("hotline_call_wait_seconds", "Queue wait \\ answered.", ("queue",), buckets=(5, 20))
    calls.inc(queue="support")
    calls.inc(2, queue="sales")
    waiting.set(3, queue="support")
    for v in (1.0, 5.0, 7.5, 30.0):
        wait.observe(v, queue="support")
    assert r.render() == (
        '# HELP hotline_call_wait_seconds Queue wait \\\\ answered.\n'
        '# TYPE hotline_call_wait_seconds histogram\n'
        'hotline_call_wait_seconds_bucket{queue="support",le="5"} 2\n'
        'hotline_call_wait_seconds_bucket{queue="support",le="20"} 3\n'
        'hotline_call_wait_seconds_bucket{queue="support",le="+Inf"} 4\n'
        'hotline_call_wait_seconds_sum{queue="support"} 43.5\n'
        'hotline_call_wait_seconds_count{queue="support"} 4\n'
        '# HELP hotline_calls_total Calls that entered a queue.\n'
        '# TYPE hotline_calls_total counter\n'
        'hotline_calls_total{queue="sales"} 2\n'
        'hotline_calls_total{queue="support"} 1\n'
        '# HELP hotline_queue_waiting Calls waiting.\\nNow.\n'
        '# TYPE hotline_queue_waiting gauge\n'
        'hotline_queue_waiting{queue="support"} 3\n')
    fams = parsed(r.render())
    assert fams["hotline_call_wait_seconds"][:3] == [
        ("hotline_call_wait_seconds_bucket", {"queue": "support", "le": "5"}, 2.0),
        ("hotline_call_wait_seconds_bucket", {"queue": "support", "le": "20"}, 3.0),
        ("hotline_call_wait_seconds_bucket", {"queue": "support", "le": "+Inf"}, 4.0)]
    assert fams["hotline_calls"] == [("hotline_calls_total", {"queue": "sales"}, 2.0),
                                     ("hotline_calls_total", {"queue": "support"}, 1.0)]


def test_collectors_are_read_at_each_scrape_and_a_failing_one_is_skipped():
    r = Registry()
    state = {"n": 1}
    r.add_collector(lambda: [("hotline_queue_waiting", "gauge", "w", [({"queue": "q"}, state["n"])])])

    def broken():
        raise RuntimeError("service down")
        yield  # pragma: no cover

    r.add_collector(broken)
    assert parsed(r.render())["hotline_queue_waiting"] == [("hotline_queue_waiting", {"queue": "q"}, 1.0)]
    state["n"] = 7
    assert parsed(r.render())["hotline_queue_waiting"][0][2] == 7.0


label_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["queue", "state", "a_b", "_x"]), label_text, max_size=4),
       st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, width=64)),
       label_text.filter(lambda t: t == t.strip()))     # the parser trims whitespace at the ends of HELP
def test_any_label_value_and_sample_value_round_trips_through_the_reference_parser(labels, value, help_text):
    r = Registry()
    g = r.gauge("hotline_x", help_text, tuple(labels))
    g.set(value, **labels)
    fam = list(text_string_to_metric_families(r.render()))
    assert len(fam) == 1 and fam[0].documentation == help_text
    (sample,) = fam[0].samples
    assert dict(sample.labels) == labels
    assert sample.value == float(value) or (math.isinf(value) and sample.value == value)


@pytest.mark.parametrize("value, text", [(0, "0"), (3, "3"), (2.0, "2"), (0.25, "0.25"), (1e20, "1e+20"),
                                         (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"),
                                         (True, "1")])
def test_format_value(value, text):
    assert format_value(value) == text


def test_histogram_bucket_edges_are_inclusive():
    r = Registry()
    h = r.histogram("hotline_h_seconds", "h", buckets=(1.0, 2.0))
    for v in (1.0, 1.0000001, 2.0, 2.5):
        h.observe(v)
    assert h.counts() == ([1, 3, 4], pytest.approx(6.5000001))


@pytest.mark.parametrize("make, message", [
    (lambda r: r.counter("hotline_calls", "c"), "ends in _total"),
    (lambda r: r.gauge("9bad", "g"), "not a metric name"),
    (lambda r: r.gauge("hotline_g", "g", ("__reserved",)), "not a usable label name"),
    (lambda r: r.histogram("hotline_h", "h", ("le",)), "not a usable label name"),
    (lambda r: r.histogram("hotline_h", "h", buckets=(2, 1)), "strictly increasing"),
    (lambda r: r.gauge("hotline_g", "g", ("a", "a")), "appears twice"),
])
def test_definition_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make(Registry())


def test_usage_errors():
    r = Registry()
    c = r.counter("hotline_c_total", "c", ("queue",))
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(-1, queue="q")
    with pytest.raises(ValueError, match="takes exactly queue"):
        c.inc(state="x")
    with pytest.raises(ValueError, match="already registered"):
        r.counter("hotline_c_total", "again")
