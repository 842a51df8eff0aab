"""Shared pieces of the B2BUA interop tests: free ports, peer processes started
and killed by PID in nurseries, config rendering (the ``$PEERS`` placeholder,
as smoke.sh does it), tshark captures and their RTP stream tables.

Everything listens on 127.0.0.1 only, on ports chosen at run time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[3]
PEERS = Path(os.environ.get("HOTLINE_PEERS", ROOT.parent / "shared" / "peers"))
SIPP_SCENARIOS = ROOT / "bench" / "sipp"
SIPP_PCAPS = Path("/usr/share/sip-tester")


def trio_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))
    return wrapper


def need(*programs: str) -> None:
    """Skip the test (saying why) unless every program is installed."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"peer not installed: {', '.join(missing)}")


_taken: set[int] = set()


def free_port(kind: int = socket.SOCK_DGRAM, *, pair: bool = False, span: int = 1) -> int:
    """A free port on 127.0.0.1 (an even one with ``span`` free neighbours if asked),
    never one handed out before in this process and never 5060/8080."""
    for _ in range(500):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if (pair and port % 2) or port in (5060, 8080) or port + span > 65535:
            continue
        block = range(port, port + max(span, 2 if pair else 1))
        if any(p in _taken for p in block):
            continue
        ok = True
        for p in block:
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                t = socket.socket(socket.AF_INET, k)
                try:
                    t.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                finally:
                    t.close()
        if ok:
            _taken.update(block)
            return port
    raise RuntimeError("no free port")


def rendered_peers(tmp: Path) -> Path:
    """A copy of $PEERS with the ``$PEERS`` placeholder replaced by the copy's path (as smoke.sh)."""
    if not PEERS.is_dir():
        pytest.skip(f"peer configs not found at {PEERS}")
    out = tmp / "peers"
    shutil.copytree(PEERS, out, symlinks=True)
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            if "$PEERS" in text:
                path.write_text(text.replace("$PEERS", str(out)))
                path.chmod(0o644)
    return out


@contextlib.asynccontextmanager
async def process(cmd: Sequence[str], *, cwd: Path | None = None, log: Path | None = None,
                  stop_signal: int = signal.SIGTERM, env: dict | None = None,
                  stdin: int = subprocess.DEVNULL) -> AsyncIterator[trio.Process]:
    """Run a peer in the background; on exit send ``stop_signal`` to its PID, then kill it."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = await trio.lowlevel.open_process(list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=stdin, env=env)
    try:
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(stop_signal)
                with trio.move_on_after(5):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            if log is not None:
                out.close()


async def run(cmd: Sequence[str], *, cwd: Path | None = None,
              seconds: float = 60) -> subprocess.CompletedProcess:
    """Run a command to completion, bounded (the process is killed if it overruns)."""
    with trio.fail_after(seconds):
        return await trio.run_process(list(cmd), cwd=cwd, capture_stdout=True, capture_stderr=True,
                                      check=False, stdin=b"")


@dataclass
class Capture:
    path: Path
    proc: trio.Process


@contextlib.asynccontextmanager
async def tshark(path: Path, bpf: str) -> AsyncIterator[Capture]:
    """Capture loopback traffic matching ``bpf`` until the block ends (SIGINT to tshark's PID)."""
    need("tshark")
    proc = await trio.lowlevel.open_process(["tshark", "-i", "lo", "-f", bpf, "-w", str(path), "-q"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            stdin=subprocess.DEVNULL)
    try:
        buffer = b""
        with trio.fail_after(20):  # tshark says "Capturing on 'Loopback: lo'" once it is ready
            while b"Capturing" not in buffer:
                chunk = await proc.stderr.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"tshark did not start: {buffer.decode(errors='replace')}")
                buffer += chunk
        yield Capture(path, proc)
        await trio.sleep(0.5)
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                with trio.move_on_after(10):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


@dataclass(frozen=True)
class RtpStream:
    src: tuple[str, int]
    dst: tuple[str, int]
    ssrc: str
    payload: str
    packets: int
    lost: int


def rtp_streams(capture: Path, ports: str) -> list[RtpStream]:
    """tshark's ``-z rtp,streams`` table, ``ports`` decoded as RTP (e.g. "6000-6200")."""
    out = subprocess.run(["tshark", "-r", str(capture), "-d", f"udp.port=={ports},rtp", "-q", "-z",
                          "rtp,streams"], capture_output=True, text=True, timeout=120).stdout
    streams = []
    row = re.compile(r"\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+"
                     r"(.+?)\s+(\d+)\s+(-?\d+)\s+\(")
    for line in out.splitlines():
        m = row.match(line)
        if m:
            streams.append(RtpStream((m.group(1), int(m.group(2))), (m.group(3), int(m.group(4))), m.group(5),
                                     m.group(6).strip(), int(m.group(7)), int(m.group(8))))
    return streams


def malformed(capture: Path, ports: str) -> str:
    return subprocess.run(["tshark", "-r", str(capture), "-d", f"udp.port=={ports},rtp", "-Y",
                           "_ws.malformed || _ws.expert.severity >= \"error\""],
                          capture_output=True, text=True, timeout=120).stdout.strip()


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


# ---------------------------------------------------------------------------- baresip
class Baresip:
    """A headless baresip (RECIPES.md 2) driven over ctrl_tcp (netstring JSON).

    Its config dir is generated by ``$PEERS/baresip/mkcfg.sh`` with ports chosen
    at run time; it auto-answers and plays ``$PEERS/audio/welcome_30s.wav``.
    """

    def __init__(self, peers: Path, workdir: Path, name: str) -> None:
        self.name = name
        self.sip_port = free_port()
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.rtp_min = free_port(pair=True, span=20)
        self.dir = workdir / f"baresip-{name}"
        subprocess.run(["sh", str(peers / "baresip" / "mkcfg.sh"), str(self.dir), name, str(self.sip_port),
                        str(self.ctrl_port), str(self.rtp_min), str(self.rtp_min + 19),
                        str(peers / "audio" / "welcome_30s.wav")], check=True, capture_output=True)
        self.events: list[dict] = []
        self._stream: trio.SocketStream | None = None
        self._responses: dict[str, dict] = {}
        self._tokens = 0
        self._arrived = trio.Event()

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Baresip]:
        async with process(["baresip", "-f", str(self.dir)], log=self.dir / "baresip.log"), \
                trio.open_nursery() as nursery:
            with trio.fail_after(15):
                while True:
                    try:
                        self._stream = await trio.open_tcp_stream("127.0.0.1", self.ctrl_port)
                        break
                    except OSError:
                        await trio.sleep(0.1)
            nursery.start_soon(self._reader)
            try:
                yield self
            finally:
                with contextlib.suppress(Exception), trio.move_on_after(3):
                    await self.command("quit")
                nursery.cancel_scope.cancel()
                await self._stream.aclose()

    async def _reader(self) -> None:
        import json

        buffer = b""
        assert self._stream is not None
        while True:
            data = await self._stream.receive_some(65536)
            if not data:
                return
            buffer += data
            while b":" in buffer:
                head, rest = buffer.split(b":", 1)
                length = int(head)
                if len(rest) < length + 1:
                    break
                message = json.loads(rest[:length])
                buffer = rest[length + 1:]
                if message.get("response"):
                    self._responses[message.get("token", "")] = message
                else:
                    self.events.append(message)
                self._arrived.set()
                self._arrived = trio.Event()

    async def command(self, command: str, params: str = "") -> dict:
        import json

        self._tokens += 1
        token = f"t{self._tokens}"
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        assert self._stream is not None
        await self._stream.send_all(str(len(body)).encode() + b":" + body + b",")
        with trio.fail_after(10):
            while token not in self._responses:
                await self._arrived.wait()
        return self._responses.pop(token)

    async def wait_event(self, kind: str, count: int = 1) -> dict:
        while sum(1 for e in self.events if e.get("type") == kind) < count:
            await self._arrived.wait()
        return [e for e in self.events if e.get("type") == kind][count - 1]


# ---------------------------------------------------------------------------- linphone
class Linphone:
    """linphonec 5.1 (RECIPES.md 3) in piped mode, auto-answering, audio from a WAV file.

    Not the ``linphonecsh`` daemon: that one is shared per Unix user. HOME points
    at a private directory (so the fix for its database directory stays ours)
    and the config is a fresh copy of the pristine one with our ports.
    """

    def __init__(self, peers: Path, workdir: Path, name: str = "carol") -> None:
        self.name = name
        self.sip_port = free_port()
        self.rtp_min = free_port(pair=True, span=20)
        self.home = workdir / f"linphone-{name}"
        (self.home / ".local" / "share" / "linphone").mkdir(parents=True)
        text = (peers / "linphone" / "linphonerc.pristine").read_text()
        text = re.sub(r"sip_port=\d+", f"sip_port={self.sip_port}", text)
        text = re.sub(r"contact=sip:\S+", f"contact=sip:{name}@127.0.0.1:{self.sip_port}", text)
        text = re.sub(r"audio_rtp_port=\S+", f"audio_rtp_port={self.rtp_min}-{self.rtp_min + 19}", text)
        self.config = self.home / "linphonerc"
        self.config.write_text(text)
        self.wav = peers / "audio" / "welcome_30s.wav"

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Linphone]:
        env = {**os.environ, "HOME": str(self.home)}
        async with process(["linphonec", "-c", str(self.config), "-a"], env=env, stdin=subprocess.PIPE,
                           log=self.home / "linphonec.log") as proc:
            self.proc = proc
            for command in ("soundcard use files", f"play {self.wav}"):
                await proc.stdin.send_all(command.encode() + b"\n")
            await trio.sleep(1.0)
            try:
                yield self
            finally:
                with contextlib.suppress(Exception):
                    await proc.stdin.send_all(b"quit\n")
                with trio.move_on_after(3):
                    await proc.wait()
