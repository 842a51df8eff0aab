"""The wallboard in headless Chromium (Debian chromium + chromium-driver, driven by selenium):
a simulated call load goes in through the real ACD, a screenshot is taken, and every number
the page shows is checked against what the test fed in.
"""

from __future__ import annotations

import shutil
import struct

import pytest

from orchestrator.metrics import queue_stats
from tests.orchestrator.control.control_fakes import CallCentre, LiveServer

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs the Debian packages chromium and chromium-driver"),
]


LABELS = {"on_call": "on call", "wrap_up": "wrap-up"}


def duration(seconds: float) -> str:
    """The page's mm:ss / h:mm:ss."""
    s = int(max(0, seconds))
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=en-GB"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def text(driver, table: str, key_attr: str, key: str, field: str) -> str:
    return driver.find_element("css selector", f'#{table} tr[{key_attr}="{key}"] [data-field="{field}"]').text


def wait(driver, condition, what: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def load(cc: CallCentre) -> dict:
    """The simulated load: 4 agents in (one on break), 9 calls, 2 answered, 1 abandoned, 75 s of waiting."""
    cc.login_all("9001", "9002", "9003", "9004")
    cc.feed(cc.acd.set_state("9004", "break", cc.clock(), reason="lunch"))
    calls = {q: [cc.calls.originate(f"+4420{q[:2]}{i}", "2000", queue=q)["call"] for i in range(n)]
             for q, n in (("support", 7), ("sales", 3))}
    ringing = [c for c in calls["support"] + calls["sales"] if cc.calls.calls[c]["state"] == "ringing"]
    for c in ringing[:2]:
        cc.calls.answer(c)
    cc.clock.advance(3)
    cc.calls.hangup(calls["sales"][-1])          # a sales caller gives up after 3 s (a short abandon)
    cc.clock.advance(72)
    return calls


def expected_queue(cc: CallCentre, q: str) -> dict[str, str]:
    stats = queue_stats(cc.acd.queue_snapshot(q, cc.clock()), cc.events)
    by = stats.agents_by_state
    sl = stats.service_level
    return {"queue": q, "waiting": str(stats.waiting), "longest_wait": duration(stats.longest_wait),
            "service_level": "–" if sl is None else f"{round(sl * 100)}%", "available": str(by["available"]),
            "ringing": str(by["ringing"]), "on_call": str(by["on_call"]), "wrap_up": str(by["wrap_up"]),
            "break": str(by["break"]), "answered": str(stats.answered), "abandoned": str(stats.abandoned)}


def page_queue(driver, q: str) -> dict[str, str]:
    return {f: text(driver, "queues", "data-queue", q, f) for f in
            ("queue", "waiting", "longest_wait", "service_level", "available", "ringing", "on_call", "wrap_up",
             "break", "answered", "abandoned")}


def test_the_wallboard_shows_the_call_load_and_follows_it_live(browser, tmp_path):
    cc = CallCentre(tmp_path, ring_timeout=600.0)
    with LiveServer(cc, stats_interval=0.1) as live:
        calls = live.run(load, cc)
        browser.get(f"{live.url}/#token={cc.token['viewer']}")
        wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true",
             "the page logged in and loaded")
        assert "token" not in browser.current_url          # moved out of the address bar
        assert browser.find_element("id", "status").text == "live"

        for q in ("support", "sales"):
            want = live.run(expected_queue, cc, q)
            wait(browser, lambda d, q=q, want=want: page_queue(d, q) == want, f"queue {q} shows {want}")
        support = page_queue(browser, "support")
        assert int(support["waiting"]) >= 4 and support["longest_wait"] == "1:15"
        sales = page_queue(browser, "sales")
        assert sales["abandoned"] == "1"

        def agent_rows(d):
            return {a: (text(d, "agents", "data-agent", a, "state"), text(d, "agents", "data-agent", a, "call"),
                        text(d, "agents", "data-agent", a, "queue")) for a in cc.acd.agents()}

        def acd_rows():
            out = {}
            for a in cc.acd.agents():
                s = cc.acd.agent_snapshot(a)
                out[a] = (LABELS.get(s.state, s.state), s.call or "", s.queue or "")
            return out

        want_agents = live.run(acd_rows)
        wait(browser, lambda d: agent_rows(d) == want_agents, f"agents show {want_agents}")
        assert want_agents["9004"][0] == "break" and want_agents["9005"][0] == "offline"
        assert text(browser, "agents", "data-agent", "9004", "reason") == "(lunch)"
        # time in state: the agents that have not changed since the load began show its 75 s
        assert 75 <= seconds(text(browser, "agents", "data-agent", "9004", "time_in_state")) < 75 + 60
        browser.save_screenshot(str(tmp_path / "wallboard.png"))

        # live: the last ringing call is answered and a new caller joins sales
        ringing = next(c for c in calls["support"] + calls["sales"] if cc.calls.calls[c]["state"] == "ringing")
        live.run(cc.calls.answer, ringing)
        live.run(lambda: cc.calls.originate("+442099", "2001", queue="sales"))
        for q in ("support", "sales"):
            want = live.run(expected_queue, cc, q)
            wait(browser, lambda d, q=q, want=want: page_queue(d, q) == want, f"queue {q} follows to {want}")
        want_agents = live.run(acd_rows)
        wait(browser, lambda d: agent_rows(d) == want_agents, "agents follow the answer")
        browser.save_screenshot(str(tmp_path / "wallboard-live.png"))

    for name in ("wallboard.png", "wallboard-live.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (1280, 1000) or width >= 800


def test_a_refused_token_asks_for_another(browser, tmp_path):
    cc = CallCentre(tmp_path)
    with LiveServer(cc) as live:
        browser.get(f"{live.url}/#token=not-a-valid-token-00000000000")
        wait(browser, lambda d: d.find_element("id", "login").is_displayed(), "the login form")
        assert browser.find_element("id", "login-error").text == "That token was refused."
        assert not browser.find_element("id", "board").is_displayed()
        field = browser.find_element("id", "token")
        field.send_keys(cc.token["viewer"])
        browser.find_element("css selector", "#login button").click()
        wait(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true",
             "logged in with the typed token")
        assert [r.get_attribute("data-queue") for r in browser.find_elements("css selector", "#queues tbody tr")] \
            == ["sales", "support"]
