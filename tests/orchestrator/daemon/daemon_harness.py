"""What the `hotline serve` tests share: configs written as TOML, the daemon as a subprocess, real
SIP peers (SIPp callers, a headless baresip whose accounts are the agents' phones), and readers
of what the daemon leaves behind (its JSON log lines, the event log, recordings).

Everything listens on 127.0.0.1, on ports chosen at run time (never 5060/8080); RTP uses a random
block in 50000-59000 (the range the B2BUA tests use, clear of the peers' and benchmarks' ranges).
Every process is started here and stopped by its PID: SIGTERM, then SIGKILL if it lingers.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PEERS = Path(os.environ.get("HOTLINE_PEERS", ROOT.parent / "shared" / "peers"))
SIPP_PCAPS = Path("/usr/share/sip-tester")
PASSWORD = "agent-secret"

_taken: set[int] = set()


def need(*programs: str) -> None:
    """Skip the test (saying why) unless every program is installed."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def free_port(*, kind: int | None = None) -> int:
    """A port free for UDP and TCP on 127.0.0.1, never 5060/8080, never handed out twice here."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, kind or socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in (5060, 8080) or port in _taken:
            continue
        try:
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, k) as t:
                    t.bind(("127.0.0.1", port))
        except OSError:
            continue
        _taken.add(port)
        return port
    raise RuntimeError("no free port on 127.0.0.1")


_blocks: list[tuple[int, int]] = []


def _udp_free(ports: range) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def rtp_block(size: int = 200) -> tuple[int, int]:
    """A random block of RTP ports in 50000-59000 for an engine or a peer: never overlapping one
    handed out before in this process, its first ports free now (an engine skips ports others
    hold; a peer binds the first ones of its block)."""
    for _ in range(500):
        base = random.randrange(50000, 59000 - size, 20)
        last = base + size - 1
        if any(base <= hi and lo <= last for lo, hi in _blocks) or not _udp_free(range(base, base + min(size, 24))):
            continue
        _blocks.append((base, last))
        return base, last
    raise RuntimeError("no free RTP port block in 50000-59000")


def wait_for(what: str, predicate: Callable[[], Any], *, timeout: float = 20.0, poll: float = 0.1,
              alive: Callable[[], None] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------- TOML

def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def dump_toml(doc: Mapping[str, Any]) -> str:
    """Tables and arrays of tables of a config document (nested tables inline)."""
    lines: list[str] = []
    for name, body in doc.items():
        entries = body if isinstance(body, list) else [body]
        for entry in entries:
            lines.append(f"[[{name}]]" if isinstance(body, list) else f"[{name}]")
            lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]
            lines.append("")
    return "\n".join(lines)


def write_config(path: Path, doc: Mapping[str, Any]) -> Path:
    path.write_text(dump_toml(doc))
    return path


def base_config(state: Path, *, node: str = "serve-test", drain: float = 3.0, storage: str | None = None,
                flows: Path | None = None, recording: Mapping[str, Any] | None = None,
                rtp: tuple[int, int] | None = None) -> dict[str, Any]:
    """A small, complete config on free ports: queues support and sales, agent 7001 in support
    (logged in at start on its phone 7001), DIDs 2000/2001 to the queues (and 1000 to the IVR
    flow ``main`` when ``flows`` is given). ``rtp``: the engine's ports (default: a fresh block;
    give one for a config that is never started)."""
    lo, hi = rtp if rtp is not None else rtp_block()
    dids = {"2000": "queue:support", "2001": "queue:sales"}
    if flows is not None:
        dids["1000"] = "ivr:main"
    doc: dict[str, Any] = {
        "daemon": {"node": node, "drain_timeout": drain, "log_level": "info"},
        "sip": {"listen": [f"127.0.0.1:{free_port()}"], "transports": ["udp"], "domain": "127.0.0.1",
                "rate_limit": False, "ring_timeout": 15, "max_loop_lag": 0, "max_queue_delay": 0},
        "rtp": {"address": "127.0.0.1", "ports": [lo, hi], "threads": 1},
        "control": {"socket": str(state / "hotline.sock"), "http": f"127.0.0.1:{free_port()}",
                    "queue_stats_interval": 1.0},
        "auth": {"token_file": str(state / "admin.token")},
        "storage": {"url": storage or f"sqlite:///{state}/hotline.db", "bindings": str(state / "bindings.db")},
        "ivr": {"flows": str(flows) if flows is not None else "", "prompts": "", "build_prompts": False},
        "dialplan": {"dids": dids, "default": "reject:404"},
        # the SIPp callers: a carrier trunk trusted by its source address (agents' phones use digest)
        "trunk": [{"name": "carrier", "allow": ["127.0.0.1/32"]}],
        "queue": [{"name": "support", "skills": {"support": 1}, "ring_timeout": 10, "wrapup": 0},
                  {"name": "sales", "skills": {"sales": 1}, "ring_timeout": 10}],
        "agent": [agent("7001", "support")],
    }
    if recording is not None:
        doc["recording"] = dict(recording)
    return doc


def agent(agent_id: str, queue: str, *, login: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": agent_id, "skills": {queue: 3}, "queues": [queue], "devices": [agent_id],
                             "password": PASSWORD}
    if login:
        entry["login"] = agent_id
    return entry


# ---------------------------------------------------------------------------------------------- the daemon

class Serve:
    """``hotline serve --config FILE`` as a subprocess (stdout piped, stderr to ``log``)."""

    def __init__(self, config: Path, doc: Mapping[str, Any], log: Path) -> None:
        self.config = config
        self.doc = doc
        self.log_path = log
        self.proc: subprocess.Popen | None = None
        self.ready_line = ""
        self._err: Any = None

    @property
    def sip_port(self) -> int:
        return int(self.doc["sip"]["listen"][0].rsplit(":", 1)[1])

    @property
    def http_port(self) -> int:
        return int(self.doc["control"]["http"].rsplit(":", 1)[1])

    @property
    def socket_path(self) -> str:
        return self.doc["control"]["socket"]

    @property
    def token_file(self) -> Path:
        return Path(self.doc["auth"]["token_file"])

    @property
    def url(self) -> str:
        return self.doc["storage"]["url"]

    def start(self, *, timeout: float = 60.0) -> str:
        """Start the daemon and return its ready line (fails with the log's tail if none comes)."""
        self._err = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "serve", "--config", str(self.config)],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            line = b""
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"no ready line in {timeout:g} s:\n{self.tail()}")
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise AssertionError(f"the daemon exited ({self.proc.wait()}) before it was ready:\n"
                                         f"{self.tail()}")
                line += chunk
        self.ready_line = line.decode()
        return self.ready_line

    def alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.proc.returncode}:\n{self.tail()}")

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """Stop it if it still runs (SIGTERM, then SIGKILL), by its PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._err is not None:
            self._err.close()
            self._err = None

    # -- what it says
    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def logs(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def logged(self, prefix: str) -> list[dict]:
        return [x for x in self.logs() if str(x.get("message", "")).startswith(prefix)]

    def rpc(self) -> Any:
        """A JSON-RPC client on the control socket, logged in with the admin token from the token file."""
        from orchestrator.control.ctl import RpcClient

        return RpcClient(socket_path=self.socket_path, token=self.token_file.read_text().strip(), timeout=20)

    def call(self, method: str, params: Any = None) -> Any:
        client = self.rpc()
        try:
            return client.call(method, params)
        finally:
            client.close()

    def events(self) -> list:
        return read_events(self.url)


def read_events(url: str) -> list:
    from orchestrator.store import EventLog

    with EventLog(url, read_only=True) as log:
        return list(log.iter_events())


@contextlib.contextmanager
def serving(config: Path, doc: Mapping[str, Any], log: Path) -> Iterator[Serve]:
    daemon = Serve(config, doc, log)
    try:
        yield daemon
    finally:
        daemon.close()


def agent_states(daemon: Serve) -> dict[str, str]:
    return {a["agent"]: a["state"] for a in daemon.call("agent.list")}


# ---------------------------------------------------------------------------------------------- peers

class Proc:
    """A peer process started by us; ``stop()`` ends it by its PID."""

    def __init__(self, cmd: list[str], *, cwd: Path, log: Path, stop_signal: int = signal.SIGTERM) -> None:
        self.log = log
        self.stop_signal = stop_signal
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


_SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15"""

_INVITE = """INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:555[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:555[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

""" + _SDP

# A caller: talks (SIPp's shipped G.711 A-law capture, 7 s) and stays until Hotline ends the call
# with a BYE. Used for live calls that a drain, an agent or nobody (kill -9) ends.
CALLER = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller talking until Hotline hangs up">
  <send retrans="500"><![CDATA[
{_INVITE}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: sipp <sip:555[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:555[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
  ]]></send>
  <nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
  ]]></send>
</scenario>
"""

# A caller turned away: the INVITE must get 503 with a Retry-After (the scenario fails otherwise).
REFUSED = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller refused with 503 and Retry-After">
  <send retrans="500"><![CDATA[
{_INVITE}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="503">
    <action><ereg regexp="[0-9]+" search_in="hdr" header="Retry-After:" check_it="true" assign_to="after"/></action>
  </recv>
  <nop><action><log message="Retry-After [$after]"/></action></nop>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: sipp <sip:555[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
  ]]></send>
</scenario>
"""


class Sipp(Proc):
    """SIPp (the Debian package sip-tester) running one of the scenarios above."""

    def __init__(self, workdir: Path, name: str, scenario: str, target: str, service: str, *, calls: int = 1,
                 rate: float = 10.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "pcap").exists():
            (workdir / "pcap").symlink_to(SIPP_PCAPS)
        xml = workdir / f"{name}.xml"
        xml.write_text(scenario)
        self.messages = workdir / f"{name}.messages"
        super().__init__(["sipp", "-sf", str(xml), "-s", service, target, "-i", "127.0.0.1", "-p", str(free_port()),
                          "-mi", "127.0.0.1", "-mp", str(rtp_block(40)[0]), "-m", str(calls), "-l", str(calls),
                          "-r", str(rate), "-nostdin", "-trace_msg", "-message_file", str(self.messages),
                          "-timeout", "120s", "-timeout_error"],
                         cwd=workdir, log=workdir / f"{name}.out", stop_signal=signal.SIGKILL)

    def sip_messages(self) -> str:
        return self.messages.read_text(errors="replace") if self.messages.exists() else ""


class Baresip(Proc):
    """A headless baresip (RECIPES.md 2, config from ``$PEERS/baresip/mkcfg.sh``): one process whose
    accounts are agents' phones; each registers with Hotline (digest) and answers automatically,
    sending ``$PEERS/audio/welcome_30s.wav``. Driven over ctrl_tcp (netstring JSON)."""

    def __init__(self, workdir: Path, users: list[str], registrar_port: int) -> None:
        self.dir = workdir / "baresip"
        self.ctrl_port = free_port(kind=socket.SOCK_STREAM)
        rtp_lo = rtp_block(40)[0]
        subprocess.run(["sh", str(PEERS / "baresip" / "mkcfg.sh"), str(self.dir), users[0], str(free_port()),
                        str(self.ctrl_port), str(rtp_lo), str(rtp_lo + 39), str(PEERS / "audio" / "welcome_30s.wav")],
                       check=True, capture_output=True)
        config = self.dir / "config"
        # no sndfile dumps (they are not looked at here) and room for every agent's call
        config.write_text(config.read_text().replace("module\t\t\tsndfile.so\n", "")
                          .replace("call_max_calls\t\t4", "call_max_calls\t\t16"))
        (self.dir / "accounts").write_text("".join(
            f"<sip:{u}@127.0.0.1:{registrar_port}>;auth_pass={PASSWORD};regint=60;answermode=auto;"
            "audio_codecs=pcmu,pcma;ptime=20\n" for u in users))
        super().__init__(["baresip", "-f", str(self.dir)], cwd=workdir, log=self.dir / "baresip.log")
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.events: list[dict] = []

    def _connect(self) -> socket.socket:
        if self._sock is None:
            def connect() -> socket.socket | None:
                try:
                    return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5)
                except OSError:
                    return None
            self._sock = wait_for("baresip's ctrl_tcp", connect, timeout=15)
        return self._sock

    def command(self, command: str, params: str = "") -> dict:
        sock = self._connect()
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self._read(sock, deadline):
                if message.get("response"):
                    return message
                self.events.append(message)
        raise AssertionError(f"baresip did not answer {command!r}")

    def _read(self, sock: socket.socket, deadline: float) -> list[dict]:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return []
        if not data:
            raise AssertionError("baresip closed its control connection")
        self._buffer += data
        out = []
        while b":" in self._buffer:
            head, rest = self._buffer.split(b":", 1)
            n = int(head)
            if len(rest) < n + 1:
                break
            out.append(json.loads(rest[:n]))
            self._buffer = rest[n + 1:]
        return out

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        super().stop()


# ---------------------------------------------------------------------------------------------- audio

def soxi_duration(path: Path) -> float:
    """The duration sox reads from an audio file's header (fails if sox cannot read it)."""
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, timeout=30, check=True)
    return float(out.stdout)


def sox_rms(path: Path) -> float:
    """The RMS amplitude of the whole file as sox decodes it (0 = silence)."""
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, timeout=30, check=True)
    m = re.search(r"RMS\s+amplitude:\s+([0-9.eE+-]+)", out.stderr)
    assert m, out.stderr
    return float(m.group(1))
