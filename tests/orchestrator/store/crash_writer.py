"""A node with live calls, to be killed: run as ``python crash_writer.py URL NODE CALLS``.

CALLS concurrent call flows append events (durable ``append`` for the steps a
B2BUA must not acknowledge before they are logged, ``append_nowait`` for the
rest) forever. Each acknowledged append is printed as ``seq call type`` on a
line of its own, flushed, *after* ``append`` returned: a line on stdout is a
promise that the event is durable. The test SIGKILLs this process mid-flight
and checks every promise against the reopened log.
"""

from __future__ import annotations

import sys

import trio

from orchestrator.store import EventLog


def ack(seq: int, call: str, kind: str) -> None:
    sys.stdout.write(f"{seq} {call} {kind}\n")
    sys.stdout.flush()


async def call_flow(log: EventLog, k: int) -> None:
    i = 0
    while True:
        call = f"w{k}-{i}"
        agent = f"a{k}"
        ack(await log.append({"type": "call.incoming", "call": call, "caller": f"+1555{k:03d}{i:04d}",
                              "callee": "2000"}), call, "call.incoming")
        log.append_nowait({"type": "call.ivr", "call": call, "node": "menu", "digits": str(i % 10)})
        ack(await log.append({"type": "call.queued", "call": call, "queue": "support", "priority": 0,
                              "caller": None, "position": 1, "ewt": None}), call, "call.queued")
        if i % 3:
            log.append_nowait({"type": "agent.state", "agent": agent, "state": "on_call", "previous": "available",
                               "call": call, "queue": "support"})
            ack(await log.append({"type": "call.answered", "call": call, "queue": "support", "agent": agent,
                                  "offer": 1, "wait": 1.0}), call, "call.answered")
            await trio.sleep(0.001)
            if i % 3 == 2:
                ack(await log.append({"type": "call.ended", "call": call, "queue": "support", "agent": agent,
                                      "talk": 5.0, "hold": 0.0}), call, "call.ended")
                log.append_nowait({"type": "agent.state", "agent": agent, "state": "available",
                                   "previous": "on_call"})
        i += 1


async def main(url: str, node: str, calls: int) -> None:
    log = EventLog(url, node=node)
    sys.stdout.write(f"open {len(log.last_recovery.calls)}\n")
    sys.stdout.flush()
    async with trio.open_nursery() as nursery:
        for k in range(calls):
            nursery.start_soon(call_flow, log, k)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
