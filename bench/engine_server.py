"""A Hotline engine in its own process, for the relay benchmarks.

Reads one JSON line on stdin: {"calls": [[x_port, y_port], ...], "threads": 1,
"record_dir": null | "path", "codec": "PCMU", "port_min": 20000}. Creates two
legs per call (remote x and y), bridges them, optionally records each call,
prints {"a": [...], "b": [...]} (the ports the generator must send to), then
waits for a line on stdin, prints the engine's statistics as JSON and exits.
Python is idle meanwhile: the process's CPU time is the engine's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from mediacore.engine import Engine


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    calls = spec["calls"]
    port_min = spec.get("port_min", 20000)
    with Engine(port_range=(port_min, port_min + 4 * len(calls) + 100), threads=spec.get("threads", 1),
                stats_interval=0, rtcp_interval=spec.get("rtcp_interval", 5.0),
                socket_buffer_bytes=spec.get("socket_buffer_bytes", 0)) as engine:
        a_ports, b_ports, legs = [], [], []
        for i, (x, y) in enumerate(calls):
            a = engine.create_leg(codec=spec.get("codec", "PCMU"), remote=("127.0.0.1", x), affinity=i)
            b = engine.create_leg(codec=spec.get("codec", "PCMU"), remote=("127.0.0.1", y), affinity=i)
            engine.bridge(a.id, b.id)
            if spec.get("record_dir"):
                engine.record(a.id, os.path.join(spec["record_dir"], f"call{i}.wav"))
            a_ports.append(a.rtp_port)
            b_ports.append(b.rtp_port)
            legs.append((a.id, b.id))
        print(json.dumps({"a": a_ports, "b": b_ports}), flush=True)
        sys.stdin.readline()
        stats = engine.statistics()
        print(json.dumps(dataclasses.asdict(stats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
