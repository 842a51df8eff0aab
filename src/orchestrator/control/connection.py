"""The Trio driver shared by the transports: one task reads requests, one writes.

A transport supplies two coroutines: ``receive()`` returning the next
complete message (``None`` when the peer has gone) and ``send(texts)``
writing JSON texts in order. :func:`serve_session` answers each message in
turn; the answers and the session's event notifications go out through a
single writer task, which sends whatever is ready in one write (a burst of
events published together costs one system call per subscriber, not one per
event). Nothing else writes to the transport, so no lock is needed.

A peer that stops reading blocks only its own writer: its answers back up
to ``MAX_PENDING_ANSWERS`` and then its reader waits (it cannot make this
connection's memory grow); its subscription's queue fills and the hub closes
it ("slow consumer"), which cancels this connection (``session.on_close``).
The daemon and the other subscribers never wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from .server import RpcServer, Session

__all__ = ["MAX_PENDING_ANSWERS", "serve_session"]

log = logging.getLogger("hotline.control")

MAX_PENDING_ANSWERS = 64

Receive = Callable[[], Awaitable[bytes | str | None]]
Send = Callable[[Sequence[str]], Awaitable[None]]


async def serve_session(server: RpcServer, session: Session, receive: Receive, send: Send) -> str:
    """Run one connection until the peer leaves or the server drops it; returns why it ended."""
    answers: list[str] = []
    ended = ["peer closed"]
    wake = [trio.Event()]
    taken = [trio.Event()]   # the writer took the pending answers
    idle = [trio.Event()]    # set while the writer has written everything and waits

    def kick() -> None:
        wake[0].set()

    session.wake = kick

    async def writer() -> None:
        while True:
            wake[0] = trio.Event()   # a kick from here on is seen by the wait below
            texts = answers[:]
            answers.clear()
            taken[0].set()
            texts += session.take_events()
            if texts:
                await send(texts)
                continue
            idle[0].set()
            await wake[0].wait()
            idle[0] = trio.Event()

    try:
        async with trio.open_nursery() as nursery:
            def drop(reason: str) -> None:
                ended[0] = reason
                nursery.cancel_scope.cancel()

            session.on_close = drop
            nursery.start_soon(writer)
            while True:
                message = await receive()
                if message is None:
                    break
                reply = await server.handle(session, message)
                if reply is not None:
                    answers.append(reply)
                    kick()
                    if len(answers) >= MAX_PENDING_ANSWERS:  # the peer is not reading: stop reading too
                        taken[0] = trio.Event()
                        await taken[0].wait()
            # the peer is done sending: let the writer finish what it has, then stop
            while answers or not idle[0].is_set():
                if wake[0].is_set():   # woken but not yet run: let it run
                    await trio.lowlevel.checkpoint()
                else:
                    await idle[0].wait()
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        ended[0] = "connection lost"
    finally:
        server.close_session(session)
    if ended[0] != "peer closed":
        log.info("control: %r ended: %s", session, ended[0])
    return ended[0]
