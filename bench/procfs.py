"""What the benchmarks read about processes and ports, in one place.

CPU time and memory of a process from /proc, and a loopback port free for both UDP and
TCP that is never one of the demo's fixed ports (5060, 8080).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(*pids: int) -> float:
    """utime + stime of these processes (all their threads); a process already gone counts 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory (VmRSS) of a process; 0 when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    """A port on 127.0.0.1 free for UDP and TCP alike, never 5060 or 8080."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET) as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            if port in (5060, 8080):
                continue
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
