"""`hotline serve --config FILE`: validation at start, SIGHUP reload, SIGTERM drain.

The daemon runs as a subprocess on free ports with its state in a temporary directory; a
real SIP peer (SIPp's embedded uac) places the call that is live when SIGTERM arrives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestrator.store import EventLog
from tests.orchestrator.daemon.test_demo import ROOT, free_port

pytestmark = [pytest.mark.timeout(180)]

BASE = """
[daemon]
node = "serve-test"
drain_timeout = {drain}

[sip]
listen = ["127.0.0.1:{sip}"]
transports = ["udp"]
domain = "127.0.0.1"
rate_limit = false

[rtp]
ports = [{rtp}, {rtp_hi}]

[control]
socket = "{state}/hotline.sock"
http = "127.0.0.1:{http}"

[auth]
token_file = "{state}/admin.token"

[storage]
url = "sqlite:///{state}/hotline.db"
bindings = ""

[ivr]
prompts = "{state}/prompts"
build_prompts = false

[dialplan]
dids = {{"2000" = "queue:support"}}

[[trunk]]
name = "peers"
allow = ["127.0.0.1/32"]
route = "queue:support"

[[queue]]
name = "support"
skills = {{support = 1}}
max_wait = 120

[[agent]]
id = "7001"
skills = {{support = 2}}
queues = ["support"]
devices = ["7001"]
password = "pw-7001"
"""

MORE = """
[[queue]]
name = "vip"
skills = {{vip = 1}}

[[agent]]
id = "7002"
skills = {{vip = 3}}
queues = ["vip"]
devices = ["7002"]
password = "pw-7002"
"""


def names(items: list, *keys: str) -> set[str]:
    """The ids in a list the API returned (queues say ``queue``, agents ``agent``)."""
    return {next(item[k] for k in keys if k in item) for item in items}


def write_config(path: Path, **kw) -> None:
    path.write_text(BASE.format(**kw) + kw.get("extra", ""))


@pytest.fixture
def setup(tmp_path):
    state = tmp_path / "var"
    state.mkdir()
    rtp = 48000 + 2 * (os.getpid() % 1000)
    kw = {"sip": free_port(), "http": free_port(), "rtp": rtp, "rtp_hi": rtp + 999, "state": state,
          "drain": 3}
    config = tmp_path / "hotline.toml"
    write_config(config, **kw)
    return config, kw


def ctl(kw, method: str, params: str | None = None) -> dict | list:
    cmd = [sys.executable, "-m", "orchestrator.cli", "ctl", "--socket", f"{kw['state']}/hotline.sock",
           "--token-file", f"{kw['state']}/admin.token", method] + ([params] if params else [])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("bad, message", [
    ('listen = ["127.0.0.1:abc"]', "sip.listen[0]: not an address"),
    ('listn = ["127.0.0.1:5060"]', "sip.listn: unknown key (did you mean 'listen'?)"),
])
def test_a_bad_config_is_refused_with_file_key_and_reason(setup, bad, message):
    config, kw = setup
    text = config.read_text().replace(f'listen = ["127.0.0.1:{kw["sip"]}"]', bad)
    assert text != config.read_text()
    config.write_text(text)
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "serve", "--config", str(config), "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert str(config) in out.stderr and message in out.stderr, out.stderr


def test_a_queue_with_a_zero_ring_timeout_and_an_unknown_queue_are_refused(setup):
    config, _ = setup
    base = config.read_text()
    for change, message in [("max_wait = 120", "max_wait = 120\nring_timeout = 0"),
                            ('queues = ["support"]', 'queues = ["nowhere"]')]:
        config.write_text(base.replace(change, message))
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "serve", "--config", str(config),
                              "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2 and str(config) in out.stderr, out.stderr
    config.write_text(base)
    ok = subprocess.run([sys.executable, "-m", "orchestrator.cli", "serve", "--config", str(config), "--check"],
                        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0 and "OK" in ok.stdout


def test_reload_on_sighup_then_drain_on_sigterm(setup, tmp_path):
    if shutil.which("sipp") is None:
        pytest.skip("SIPp is not installed")
    config, kw = setup
    errors = (tmp_path / "serve.err").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve", "--config", str(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    sipp = None
    try:
        ready = proc.stdout.readline()
        assert "ready" in ready, ready + (tmp_path / "serve.err").read_text()[-3000:]
        health = urllib.request.urlopen(f"http://127.0.0.1:{kw['http']}/healthz", timeout=10)
        assert health.status == 200

        # SIGHUP: a new queue and a new agent appear; an invalid file changes nothing
        assert names(ctl(kw, "queue.list"), "queue", "name") == {"support"}
        write_config(config, extra=MORE.format(), **kw)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while names(ctl(kw, "queue.list"), "queue", "name") != {"support", "vip"}:
            assert time.monotonic() < deadline, "the reload did not add the queue"
            time.sleep(0.2)
        assert "7002" in names(ctl(kw, "agent.list"), "agent", "id")
        config.write_text(config.read_text().replace('name = "vip"', 'name = "vip"\nstrategy = "no-such"'))
        proc.send_signal(signal.SIGHUP)
        time.sleep(2.0)
        assert names(ctl(kw, "queue.list"), "queue", "name") == {"support", "vip"}
        assert proc.poll() is None

        # a live call (SIPp, waiting in the support queue: nobody is logged in) when SIGTERM comes
        sipp = subprocess.Popen(["sipp", "-sn", "uac", "-s", "2000", "-m", "1", "-d", "60000", "-i", "127.0.0.1",
                                 "-p", str(free_port()), "-mp", str(kw["rtp"] - 2000), "-timeout", "60s",
                                 f"127.0.0.1:{kw['sip']}"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not ctl(kw, "call.list"):
            assert time.monotonic() < deadline, "the SIPp call never arrived"
            time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sipp is not None:
            try:
                sipp.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sipp.kill()
                sipp.wait()
        errors.close()
    log_text = (tmp_path / "serve.err").read_text()
    assert proc.returncode == 0, log_text[-3000:]
    assert waited >= kw["drain"] - 0.5  # the live call had its drain_timeout before it was hung up
    lines = [json.loads(x) for x in log_text.splitlines() if x.startswith("{")]
    messages = [x["message"] for x in lines]
    assert any(m.startswith("configuration reloaded") for m in messages)
    assert any(m.startswith("configuration reload refused") for m in messages)
    assert any("draining" in m for m in messages) and any(m.startswith("drained") for m in messages)
    with EventLog(f"sqlite:///{kw['state']}/hotline.db", read_only=True) as log:
        events = list(log.iter_events())
    reloads = [e for e in events if e.type == "config.reloaded"]
    assert [e.data.get("ok") for e in reloads] == [True, False]
    calls = {e.call for e in events if e.type == "call.incoming"}
    ends = {e.call for e in events if e.type in ("call.ended", "call.abandoned")}
    assert calls and calls <= ends  # the drained call has its record, flushed before exit
