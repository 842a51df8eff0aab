"""A Hotline engine in its own process, for the capacity benchmarks (bench/capacity.py).

Like bench/engine_server.py, but it builds one of five kinds of call and can
report its statistics while it runs. It reads one JSON line on stdin:

    {"kind": "relay" | "record" | "transcode" | "conference" | "ivr",
     "endpoints": [port, ...],        # the generator's sockets, in order
     "threads": 1, "record_dir": "...", "prompt": "x.wav", "room_size": 4}

and prints {"dest": [...]}: the engine port each generator endpoint must send
to (dest[i] for endpoints[i]). How endpoints map onto calls, per kind:

- relay: endpoints (x, y) pairs; legs A (remote x) and B (remote y), bridged:
  same codec, so packets are relayed without decoding. One call per pair.
- record: the same, and leg A is recorded (stereo WAV: what x says on the
  left, what it hears on the right), so both directions are also decoded.
- transcode: endpoints (x, y) pairs; x <-> A (PCMU) = B (Opus) <-> C (Opus) =
  D (PCMU) <-> y, where "=" is a bridge and B <-> C is loopback UDP inside the
  same engine. Each bridge is a transcoded call (PCMU decode + Opus encode one
  way, Opus decode + PCMU encode the other), so a pair is TWO calls, and all
  the media on the wire is valid for its codec.
- conference: endpoints in groups of ``room_size``; each endpoint talks to its
  own leg, and each group's legs are members of one mix-minus room.
- ivr: one endpoint per session; its leg plays a speech prompt in a loop to
  the caller (stop on DTMF) and listens for in-band DTMF: the media side of
  an IVR session.

Then it answers commands, one line each on stdin:
``stats`` -> one JSON line {"engine": EngineStats, "legs": summed LegStats of
the legs facing the generator, "internal_legs": the same for the legs inside
the engine (transcode's Opus legs), "rss_bytes": ...}; ``stop`` (or end of input)
-> the same line, then it closes the engine and exits. Python is idle between
commands: the process's CPU time is the engine's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from bench.procfs import rss_bytes
from mediacore.engine import Engine

KINDS = ("relay", "record", "transcode", "conference", "ivr")
OPUS_PT = 111
SUMMED = ("packets_received", "packets_sent", "packets_lost", "packets_late", "packets_relayed",
          "concealed_samples", "dropped_malformed", "dropped_unknown_payload_type", "send_errors")


def calls_per_endpoints(kind: str, endpoints: int, room_size: int = 4) -> int:
    """How many calls (or sessions, or conference members) a number of generator endpoints stands for."""
    if kind == "transcode":
        return endpoints  # a pair of endpoints carries two transcoding bridges
    if kind in ("relay", "record"):
        return endpoints // 2
    return endpoints  # conference members, IVR sessions


def build(engine: Engine, spec: dict) -> tuple[list[int], list[int], list[int]]:
    """Create the calls; return (dest ports in endpoint order, ids of the legs facing the generator,
    ids of the legs inside the engine: the Opus legs of the transcode kind)."""
    kind, eps = spec["kind"], spec["endpoints"]
    dest: list[int] = []
    facing: list[int] = []
    internal: list[int] = []

    def leg(remote_port: int, affinity: int, **options) -> object:
        return engine.create_leg(remote=("127.0.0.1", remote_port), affinity=affinity, **options)

    if kind in ("relay", "record", "transcode"):
        if len(eps) % 2:
            raise ValueError(f"{kind} needs an even number of endpoints")
        for i in range(len(eps) // 2):
            x, y = eps[2 * i], eps[2 * i + 1]
            a = leg(x, i, codec="PCMU")
            if kind == "transcode":
                d = leg(y, i, codec="PCMU")
                b = engine.create_leg(codec="opus", payload_type=OPUS_PT, affinity=i)
                c = engine.create_leg(codec="opus", payload_type=OPUS_PT, affinity=i,
                                      remote=("127.0.0.1", b.rtp_port))
                engine.update_leg(b.id, remote=("127.0.0.1", c.rtp_port))
                engine.bridge(a.id, b.id)
                engine.bridge(c.id, d.id)
                dest += [a.rtp_port, d.rtp_port]
                facing += [a.id, d.id]
                internal += [b.id, c.id]
                continue
            b = leg(y, i, codec="PCMU")
            engine.bridge(a.id, b.id)
            if kind == "record":
                engine.record(a.id, os.path.join(spec["record_dir"], f"call{i}.wav"))
            dest += [a.rtp_port, b.rtp_port]
            facing += [a.id, b.id]
    elif kind == "conference":
        size = int(spec.get("room_size", 4))
        if size < 3 or len(eps) % size:
            raise ValueError("conference needs room_size >= 3 and endpoints a multiple of it")
        for r in range(len(eps) // size):
            room = engine.create_room(affinity=r)
            for port in eps[r * size:(r + 1) * size]:
                m = leg(port, r, codec="PCMU")
                engine.join(room, m.id)
                dest.append(m.rtp_port)
                facing.append(m.id)
    elif kind == "ivr":
        for i, port in enumerate(eps):
            s = leg(port, i, codec="PCMU", detect_inband_dtmf=True)
            engine.play(s.id, file=spec["prompt"], loops=0, stop_on_dtmf=True)
            dest.append(s.rtp_port)
            facing.append(s.id)
    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return dest, facing, internal


def _sum_legs(engine: Engine, legs: list[int]) -> dict:
    totals = dict.fromkeys(SUMMED, 0)
    # one round trip per media thread: a per-leg query on a busy engine took seconds at 2,000
    # legs and ate the measurement window
    for s in engine.leg_stats_many(legs):
        for k in SUMMED:
            totals[k] += getattr(s, k)
    return totals


def snapshot(engine: Engine, facing: list[int], internal: list[int]) -> dict:
    return {"engine": dataclasses.asdict(engine.statistics()), "legs": _sum_legs(engine, facing),
            "internal_legs": _sum_legs(engine, internal), "rss_bytes": rss_bytes()}


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    n = len(spec["endpoints"])
    # Below the kernel's ephemeral range (32768+, where the generator's sockets land) and with 2,000
    # pairs of slack: other engines on the machine (tests, benches) may hold ports in the range.
    port_min = spec.get("port_min", 10000)
    with Engine(port_range=(port_min, port_min + 4 * n + 4000), threads=spec.get("threads", 1),
                stats_interval=0, rtcp_interval=spec.get("rtcp_interval", 5.0),
                socket_buffer_bytes=spec.get("socket_buffer_bytes", 1 << 20)) as engine:
        idle_rss = rss_bytes()
        dest, facing, internal = build(engine, spec)
        print(json.dumps({"dest": dest, "idle_rss_bytes": idle_rss, "rss_bytes": rss_bytes()}), flush=True)
        for line in sys.stdin:
            print(json.dumps(snapshot(engine, facing, internal)), flush=True)
            if line.strip() != "stats":
                break
        else:
            print(json.dumps(snapshot(engine, facing, internal)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
