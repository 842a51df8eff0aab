"""Relay benchmarks: Hotline's engine and rtpengine (userspace), side by side,
driven by the same native generator (bench/tools/rtpload.cpp).

A call is two generator endpoints X and Y and two relay legs A and B:
X -> A -> B -> Y and Y -> B -> A -> X, 50 packets/s each way (G.711, 20 ms).
The relay runs pinned to CPU 0 with one media thread, the generator pinned to
CPU 1. Over the measurement window we read the relay process's CPU time from
/proc and the generator's loss and one-way latency; packets per second per
core = packets relayed per second / the relay's CPU share.

    python -m bench.relaybench --relay hotline --calls 500
    python -m bench.relaybench --relay rtpengine --calls 500
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.procfs import CLOCK_TICKS
from bench.procfs import cpu_seconds as process_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


def rtpload_binary() -> Path:
    candidates = sorted(ROOT.glob("build/*/rtpload"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise FileNotFoundError("rtpload is not built: run `make build` (CMake target rtpload)")
    return candidates[0]


def core_times(cpu: int) -> tuple[float, float]:
    """(busy, softirq) seconds of one CPU from /proc/stat. Busy is everything but idle and iowait.

    Packet work the kernel defers to ksoftirqd is not charged to the process that caused it,
    so a relay's process CPU can understate what it costs; the core it is pinned to shows all."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]
            return (sum(v[:8]) - idle) / CLOCK_TICKS, v[6] / CLOCK_TICKS
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def taskset(cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(cpu)]


@dataclass
class RelayResult:
    relay: str
    calls: int
    window_s: float
    packets_sent: int
    packets_received: int
    loss_ratio: float
    latency_us_p50: int
    latency_us_p99: int
    latency_us_max: int
    relay_cpu_s: float
    relay_cpu_share: float           # of one core, over the window
    packets_per_second: float        # relayed, over the window
    packets_per_core_second: float   # relayed packets per second of relay CPU
    core_busy_share: float           # the relay's pinned CPU busy (any task, softirq included), over the window
    core_softirq_share: float        # ... of which softirq (packet work, wherever it was charged)
    generator_behind: int
    extra: dict


class Generator:
    def __init__(self, endpoints: int, duration: float, warmup: float, cpu: int | None = 1) -> None:
        self.proc = subprocess.Popen(
            taskset(cpu) + [str(rtpload_binary()), "--endpoints", str(endpoints), "--duration", str(duration),
                            "--warmup", str(warmup)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORTS"):
            raise RuntimeError(f"rtpload did not start: {line!r}")
        self.ports = [int(p) for p in line.split()[1:]]

    def go(self, destinations: list[int]) -> None:
        self.proc.stdin.write("GO " + " ".join(map(str, destinations)) + "\n")
        self.proc.stdin.flush()

    def result(self, timeout: float) -> dict:
        out, _ = self.proc.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class HotlineRelay:
    name = "hotline"

    def __init__(self, cpu: int | None = 0, threads: int = 1, record_dir: str | None = None) -> None:
        self.cpu, self.threads, self.record_dir = cpu, threads, record_dir
        self.proc: subprocess.Popen | None = None
        self.stats: dict = {}

    def start(self, pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'src'}")
        self.proc = subprocess.Popen(taskset(self.cpu) + [sys.executable, "-m", "bench.engine_server"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        spec = {"calls": pairs, "threads": self.threads, "record_dir": self.record_dir,
                "socket_buffer_bytes": 1 << 20}
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        ports = json.loads(self.proc.stdout.readline())
        return ports["a"], ports["b"]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            try:
                self.stats = json.loads(self.proc.stdout.readline() or "{}")
                self.proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, json.JSONDecodeError):
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------ rtpengine (NG protocol, bencode over UDP)

def _benc(x) -> bytes:
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(_benc(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(_benc(k) + _benc(x[k]) for k in sorted(x)) + b"e"
    raise TypeError(type(x))


def _bdec(b: bytes, i: int = 0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1
        items = []
        while b[i:i + 1] != b"e":
            v, i = _bdec(b, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return {items[k].decode(): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def _sdp(port: int) -> str:
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


class RtpengineRelay:
    name = "rtpengine"

    def __init__(self, cpu: int | None = 0, threads: int = 1, port_min: int = 30000) -> None:
        self.cpu, self.threads, self.port_min = cpu, threads, port_min
        self.proc: subprocess.Popen | None = None
        self.tmp = tempfile.TemporaryDirectory(prefix="rtpengine-bench-")
        self.stats: dict = {}

    def _ng(self, sock: socket.socket, cmd: dict) -> dict:
        cookie = os.urandom(4).hex().encode()
        sock.sendto(cookie + b" " + _benc(cmd), ("127.0.0.1", self.ng_port))
        while True:
            data, _ = sock.recvfrom(65535)
            ck, body = data.split(b" ", 1)
            if ck == cookie:
                return _bdec(body)[0]

    def start(self, pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
        if shutil.which("rtpengine") is None:
            raise FileNotFoundError("rtpengine is not installed (Debian package rtpengine-daemon)")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.ng_port = s.getsockname()[1]
        s.close()
        port_max = self.port_min + 8 * len(pairs) + 100
        conf = Path(self.tmp.name) / "rtpengine.conf"
        conf.write_text(
            "[rtpengine]\ntable = -1\ninterface = 127.0.0.1\n"
            f"listen-ng = 127.0.0.1:{self.ng_port}\nport-min = {self.port_min}\nport-max = {port_max}\n"
            f"timeout = 120\nsilent-timeout = 3600\nforeground = true\nlog-stderr = true\nlog-level = 3\n"
            f"num-threads = {self.threads}\ndelete-delay = 0\n")
        self.proc = subprocess.Popen(
            taskset(self.cpu) + ["rtpengine", f"--config-file={conf}", f"--pidfile={self.tmp.name}/pid"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                if self._ng(sock, {"command": "ping"}).get("result") == b"pong":
                    break
            except (socket.timeout, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise RuntimeError("rtpengine did not answer ping")
        sock.settimeout(5)
        to_a, to_b = [], []
        for i, (x, y) in enumerate(pairs):
            flags = ["trust-address"]
            r = self._ng(sock, {"command": "offer", "call-id": f"bench-{i}", "from-tag": "x", "sdp": _sdp(x),
                                "flags": flags, "replace": ["origin", "session-connection"]})
            port_for_y = int(re.search(rb"m=audio (\d+)", r["sdp"]).group(1))
            r = self._ng(sock, {"command": "answer", "call-id": f"bench-{i}", "from-tag": "x", "to-tag": "y",
                                "sdp": _sdp(y), "flags": flags, "replace": ["origin", "session-connection"]})
            port_for_x = int(re.search(rb"m=audio (\d+)", r["sdp"]).group(1))
            to_a.append(port_for_x)
            to_b.append(port_for_y)
        sock.close()
        return to_a, to_b

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


def run(relay, calls: int, *, duration: float = 10.0, warmup: float = 3.0) -> RelayResult:
    gen = Generator(2 * calls, duration, warmup)
    try:
        xs, ys = gen.ports[0::2], gen.ports[1::2]
        to_a, to_b = relay.start(list(zip(xs, ys)))
        dest = [0] * (2 * calls)
        dest[0::2], dest[1::2] = to_a, to_b
        gen.go(dest)
        t_go = time.monotonic()
        time.sleep(max(0.0, t_go + 0.05 + warmup - time.monotonic()))
        cpu0, core0 = process_cpu_seconds(relay.pid), core_times(relay.cpu or 0)
        t0 = time.monotonic()
        time.sleep(max(0.0, t_go + 0.05 + duration - time.monotonic()))
        cpu1, core1 = process_cpu_seconds(relay.pid), core_times(relay.cpu or 0)
        t1 = time.monotonic()
        out = gen.result(timeout=duration + 30)
    finally:
        gen.kill()
        relay.stop()
    window = t1 - t0
    cpu = cpu1 - cpu0
    pps = out["received_measured"] / out["window_s"]
    return RelayResult(
        relay=relay.name, calls=calls, window_s=round(window, 3),
        packets_sent=out["sent_measured"], packets_received=out["received_measured"],
        loss_ratio=out["loss_ratio"], latency_us_p50=out["latency_us"]["p50"],
        latency_us_p99=out["latency_us"]["p99"], latency_us_max=out["latency_us"]["max"],
        relay_cpu_s=round(cpu, 3), relay_cpu_share=round(cpu / window, 4),
        packets_per_second=round(pps, 1),
        packets_per_core_second=round(pps / (cpu / window), 1) if cpu > 0 else float("inf"),
        core_busy_share=round((core1[0] - core0[0]) / window, 4),
        core_softirq_share=round((core1[1] - core0[1]) / window, 4),
        generator_behind=out["behind_schedule"], extra={"relay_stats": relay.stats, "generator": out})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--relay", choices=["hotline", "rtpengine"], default="hotline")
    ap.add_argument("--calls", type=int, nargs="+", default=[100])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--record", action="store_true", help="Hotline: record every call (WAV)")
    args = ap.parse_args(argv)
    for n in args.calls:
        with tempfile.TemporaryDirectory(prefix="hotline-rec-") as rec:
            relay = HotlineRelay(record_dir=rec if args.record else None) if args.relay == "hotline" \
                else RtpengineRelay()
            r = run(relay, n, duration=args.duration, warmup=args.warmup)
        d = asdict(r)
        d.pop("extra")
        print(json.dumps(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
