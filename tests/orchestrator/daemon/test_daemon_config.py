"""`hotline serve --config FILE`: an invalid configuration is refused with the file, the key and
what is wrong, section by section; `--check` says OK or exits 2 with the message on stderr; an
invalid file at start stops the daemon before it binds anything; etc/hotline.toml validates.

The table runs in-process through ``load_config`` on a real file (the message a user reads is
the same one ``serve`` prints); the command line is run as a subprocess for each outcome.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import ROOT, base_config, write_config

from orchestrator.daemon.config import ConfigError, load_config

pytestmark = [pytest.mark.timeout(120)]

HOTLINE = Path(sys.executable).parent / "hotline"


def put(*path: Any, value: Any) -> Callable[[dict], None]:
    """A change to the base config: set ``doc[path...] = value``."""
    def change(doc: dict, tmp: Path) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return change


def bad_flows(doc: dict, tmp: Path) -> None:
    flows = tmp / "flows"
    (flows / "prompts" / "en").mkdir(parents=True)
    (flows / "main.yaml").write_text("start: hello\nnodes:\n  hello: {type: play, prompts: [hello], next: nowhere}\n")
    doc["ivr"]["flows"] = str(flows)


# (change, key, what the message says); every section of CONTRACT.md "Configuration" has cases
CASES = [
    pytest.param(put("sip", "listen", value=["127.0.0.1:abc"]), "sip.listen[0]",
                 "not an address: '127.0.0.1:abc' (expected HOST:PORT", id="sip-listen-not-an-address"),
    pytest.param(put("sip", "listen", value=["localhost:5060"]), "sip.listen[0]",
                 "the host must be an IP address", id="sip-listen-host-name"),
    pytest.param(put("sip", "listn", value=["127.0.0.1:5060"]), "sip.listn",
                 "unknown key (did you mean 'listen'?)", id="sip-unknown-key"),
    pytest.param(put("sip", "transports", value=["tls"]), "sip.transports[0]",
                 "must be udp or tcp, got 'tls' (TLS has its own [sip.tls] table)", id="sip-transport-tls"),
    pytest.param(put("sip", "codecs", value=["G729"]), "sip.codecs[0]", "must be one of PCMU, PCMA, opus",
                 id="sip-codec"),
    pytest.param(put("sip", "tls", value={"listen": "127.0.0.1:5061"}), "sip.tls.certificate",
                 "required when [sip.tls] is present", id="sip-tls-no-certificate"),
    pytest.param(put("sipp", value={}), "sipp", "unknown section (did you mean 'sip'?)", id="unknown-section"),
    pytest.param(put("daemon", "drain_timeout", value=-1), "daemon.drain_timeout", "must be >= 0, got -1",
                 id="daemon-drain-timeout"),
    pytest.param(put("daemon", "log_level", value="loud"), "daemon.log_level",
                 "must be one of debug, info, warning, error, got 'loud'", id="daemon-log-level"),
    pytest.param(put("rtp", "ports", value=[50000, 50001]), "rtp.ports",
                 "the range 50000..50001 holds fewer than two RTP/RTCP pairs", id="rtp-ports"),
    pytest.param(put("rtp", "address", value="nowhere"), "rtp.address", "not an IP address: 'nowhere'",
                 id="rtp-address"),
    pytest.param(put("control", "http", value="127.0.0.1:99999"), "control.http", "must be HOST:PORT",
                 id="control-http"),
    pytest.param(put("control", "sokcet", value="x.sock"), "control.sokcet", "unknown key (did you mean 'socket'?)",
                 id="control-unknown-key"),
    pytest.param(put("auth", "token_file", value=""), "auth.token_file", "must be a path string",
                 id="auth-token-file"),
    pytest.param(put("storage", "url", value="mysql://db/hotline"), "storage.url",
                 "unknown storage scheme 'mysql' (use sqlite or postgresql)", id="storage-scheme"),
    pytest.param(put("storage", "url", value="var/hotline.db"), "storage.url", "has no scheme",
                 id="storage-no-scheme"),
    pytest.param(put("recording", "policy", value="sometimes"), "recording.policy",
                 "must be always, never, on_demand or a percentage", id="recording-policy"),
    pytest.param(put("recording", "policy", value="150%"), "recording.policy", "a percentage must be 0% to 100%",
                 id="recording-percentage"),
    pytest.param(put("recording", "format", value="mp3"), "recording.format",
                 "must be one of wav, wav-ulaw, wav-alaw, opus, got 'mp3'", id="recording-format"),
    pytest.param(put("recording", "key_file", value="/nonexistent/recording.keys"), "recording.key_file",
                 "no such file: '/nonexistent/recording.keys' (make one with: hotline recordings",
                 id="recording-key-file"),
    pytest.param(put("recording", "queues", value={"support": {"policy": "often"}}),
                 "recording.queues.support.policy", "got 'often'", id="recording-queue-policy"),
    pytest.param(put("queue", 0, "ring_timeout", value=0), "queue[0].ring_timeout", "must be > 0, got 0",
                 id="queue-ring-timeout-0"),
    pytest.param(put("queue", 1, "ring_timout", value=5), "queue[1].ring_timout",
                 "unknown key (did you mean 'ring_timeout'?)", id="queue-unknown-key"),
    pytest.param(put("queue", 0, "strategy", value="loudest"), "queue[0].strategy", "unknown strategy 'loudest'",
                 id="queue-strategy"),
    pytest.param(put("queue", 0, "on_timeout", value="queue:gold"), "queue[0].on_timeout",
                 "sends calls to queue 'gold', which is not configured", id="queue-overflow-to-missing-queue"),
    pytest.param(put("queue", 1, "name", value="support"), "queue[1].name", "queue 'support' is configured twice",
                 id="queue-twice"),
    pytest.param(put("queue", value={"name": "support"}), "queue",
                 "must be an array of tables ([[queue]]), not a single table", id="queue-not-an-array"),
    pytest.param(put("agent", 0, "queues", value=["nowhere"]), "agent[0].queues", "no queue named 'nowhere'",
                 id="agent-in-unknown-queue"),
    pytest.param(put("agent", 0, "login", value="7999"), "agent[0].login",
                 "device '7999' is not in devices ['7001']", id="agent-login-device"),
    pytest.param(put("agent", 0, "skills", value={"support": 9}), "agent[0].skills['support']",
                 "proficiency must be an int from 1 to 5", id="agent-skill"),
    pytest.param(put("account", value=[{"username": "7001", "password": "x"}]), "account",
                 "username '7001' is configured twice", id="account-twice"),
    pytest.param(put("dialplan", "dids", value={"2000": "queue:suport"}), "dialplan.dids.2000",
                 "no queue named 'suport' (did you mean 'support'?)", id="did-to-missing-queue"),
    pytest.param(put("dialplan", "dids", value={"1000": "ivr:main"}), "dialplan.dids.1000",
                 "no IVR flow named 'main' (no [ivr] flows directory)", id="did-to-missing-flow"),
    pytest.param(put("dialplan", "default", value="voicemail"), "dialplan.default", "not a target: 'voicemail'",
                 id="dialplan-default"),
    pytest.param(put("dialplan", "prefixes", value=[{"prefix": "0", "trunk": "nope"}]),
                 "dialplan.prefixes[0].trunk", "no trunk named 'nope' with a uri to call out to (none is configured)",
                 id="dialplan-prefix-trunk"),
    pytest.param(put("trunk", 0, "allow", value=["not-a-net"]), "trunk[0].allow", "'not-a-net' is not a network",
                 id="trunk-allow"),
    pytest.param(put("trunk", 0, "route", value="queue:nope"), "trunk[0].route", "no queue named 'nope'",
                 id="trunk-route"),
    pytest.param(put("ivr", "flows", value="/nonexistent/flows"), "ivr.flows",
                 "no such directory: '/nonexistent/flows'", id="ivr-flows-dir"),
    pytest.param(bad_flows, "ivr.flows", "main.yaml:3: node 'hello': 'next' points to unknown node 'nowhere'",
                 id="ivr-flow-problems"),
]


@pytest.fixture
def doc(tmp_path: Path) -> dict:
    state = tmp_path / "var"
    return base_config(state, recording={"dir": str(state / "recordings"), "policy": "always"},
                       rtp=(50000, 50199))  # never started: no ports taken


def test_the_base_config_is_valid(doc, tmp_path):
    config = load_config(write_config(tmp_path / "hotline.toml", doc))
    assert [q.name for q in config.queues] == ["support", "sales"] and config.drain_timeout == 3.0


@pytest.mark.parametrize("change, key, reason", CASES)
def test_an_invalid_config_names_file_key_and_reason(doc, tmp_path, change, key, reason):
    bad = copy.deepcopy(doc)
    change(bad, tmp_path)
    path = write_config(tmp_path / "hotline.toml", bad)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert (err.file, err.key) == (str(path), key), str(err)
    assert str(err).startswith(f"{path}: {key}: ") and reason in err.message, str(err)


def serve(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "serve", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_check_says_ok_and_starts_nothing(doc, tmp_path):
    path = write_config(tmp_path / "hotline.toml", doc)
    out = serve("--config", str(path), "--check")
    assert (out.returncode, out.stdout, out.stderr) == (0, f"{path}: OK\n", "")
    assert not (tmp_path / "var").exists()  # no token, database, socket or recordings made


def test_check_refuses_with_the_message_on_stderr(doc, tmp_path):
    doc["queue"][0]["ring_timeout"] = 0
    path = write_config(tmp_path / "hotline.toml", doc)
    out = serve("--config", str(path), "--check")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"hotline serve: {path}: queue[0].ring_timeout: must be > 0, got 0\n"


def test_serve_refuses_an_invalid_config_before_it_binds_anything(doc, tmp_path):
    doc["agent"][0]["queues"] = ["suport"]
    path = write_config(tmp_path / "hotline.toml", doc)
    out = serve("--config", str(path))
    assert (out.returncode, out.stdout) == (2, "")  # no ready line
    assert f"{path}: agent[0].queues: no queue named 'suport' (did you mean 'support'?)" in out.stderr
    assert not (tmp_path / "var").exists()
    sip = int(doc["sip"]["listen"][0].rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", sip))  # the SIP port was never taken


def test_a_missing_or_malformed_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    out = serve("--config", str(missing), "--check")
    assert out.returncode == 2 and out.stderr == f"hotline serve: {missing}: no such file\n"
    broken = tmp_path / "broken.toml"
    broken.write_text('[sip]\nlisten = = 3\n')
    out = serve("--config", str(broken), "--check")
    assert out.returncode == 2 and f"{broken}: not valid TOML" in out.stderr and "line 2" in out.stderr, out.stderr


def test_the_example_config_validates_with_the_console_script():
    assert HOTLINE.exists(), "the hotline console script is not installed in the venv"
    out = subprocess.run([str(HOTLINE), "serve", "--config", "etc/hotline.toml", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=False)
    assert (out.returncode, out.stdout, out.stderr) == (0, "etc/hotline.toml: OK\n", "")


def test_the_example_config_means_what_its_comments_say(monkeypatch):
    monkeypatch.chdir(ROOT)  # its paths are relative to the daemon's working directory
    config = load_config("etc/hotline.toml")
    assert config.node == "hotline-1" and config.drain_timeout == 30
    assert config.sip.listen == (("127.0.0.1", 5060),) and config.sip.transports == ("udp", "tcp")
    assert config.storage.url == "sqlite:///var/hotline.db"
    assert [q.name for q in config.queues] == ["support", "sales", "billing"]
    assert {a.id for a in config.agents} == {"9001", "9002"}
    assert config.recording is not None and config.recording.default.mode == "always"
    assert sorted(config.dialplan.dids) == ["1000", "2000", "2001"] and "main" in config.flows
