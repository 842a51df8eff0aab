"""The Trio driver shared by the transports: one task reads requests, one sends events.

A transport supplies two coroutines: ``receive()`` returning the next
complete message (``None`` when the peer has gone) and ``send(texts)``
writing JSON texts in order. :func:`serve_session` answers each message in
turn and, beside it, drains the session's event subscription. Sends are
serialised by a lock so a response and a notification never interleave.

A peer that stops reading blocks only its own sender task; its
subscription's queue fills, and the hub closes it ("slow consumer"), which
cancels this connection (``session.on_close``). The daemon and the other
subscribers never wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio

from .server import RpcServer, Session

__all__ = ["serve_session"]

log = logging.getLogger("hotline.control")

Receive = Callable[[], Awaitable[bytes | str | None]]
Send = Callable[[Sequence[str]], Awaitable[None]]


async def serve_session(server: RpcServer, session: Session, receive: Receive, send: Send) -> str:
    """Run one connection until the peer leaves or the server drops it; returns why it ended."""
    lock = trio.Lock()
    ended = ["peer closed"]

    async def locked_send(texts: Sequence[str]) -> None:
        async with lock:
            await send(texts)

    async def pump() -> None:
        while True:
            texts = session.take_events()
            if texts:
                await locked_send(texts)
                continue
            ready = trio.Event()
            session.wake = ready.set
            if session.subscription is not None and len(session.subscription):
                continue
            await ready.wait()

    try:
        async with trio.open_nursery() as nursery:
            def drop(reason: str) -> None:
                ended[0] = reason
                nursery.cancel_scope.cancel()

            session.on_close = drop
            nursery.start_soon(pump)
            while True:
                message = await receive()
                if message is None:
                    break
                reply = await server.handle(session, message)
                if reply is not None:
                    await locked_send([reply])
            nursery.cancel_scope.cancel()
    except* (trio.BrokenResourceError, trio.ClosedResourceError):
        ended[0] = "connection lost"
    finally:
        server.close_session(session)
    if ended[0] != "peer closed":
        log.info("control: %r ended: %s", session, ended[0])
    return ended[0]
