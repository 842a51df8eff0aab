"""The control socket: JSON-RPC 2.0 over a Unix stream socket, one JSON text per line.

``hotline ctl --socket PATH`` and local scripts use it. The socket file is
created with mode 0600 (the daemon's user only; every connection must still
``auth.login``), a stale file left by a killed daemon is replaced, and a
live one (another daemon answers on it) is refused. The peer's uid and pid
(SO_PEERCRED) are the session's ``peer`` in the audit log.

A line longer than ``max_line`` bytes gets one -32600 error (id null) and
the connection is closed: a stream cannot resynchronise after it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket as stdsocket
import stat
import struct
from pathlib import Path

import trio

from .connection import serve_session
from .errors import InvalidRequest
from .protocol import LineFramer, MessageTooLarge, dumps, error_response
from .server import RpcServer

__all__ = ["UnixControlServer"]

log = logging.getLogger("hotline.control")


def _peer(sock: trio.socket.SocketType) -> str:
    try:
        creds = sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        return f"unix:uid={uid},pid={pid}"
    except (OSError, AttributeError):
        return "unix"


class UnixControlServer:
    """Serves ``server`` on the Unix socket ``path``; run :meth:`serve` in a nursery (``nursery.start``)."""

    def __init__(self, server: RpcServer, path: str | os.PathLike, *, max_line: int = 1 << 20,
                 max_connections: int = 256, mode: int = 0o600) -> None:
        if not isinstance(server, RpcServer):
            raise ValueError("server: expected an RpcServer")
        self.server = server
        self.path = Path(path)
        if len(os.fsencode(self.path)) >= 108:
            raise ValueError(f"path: a Unix socket path must be under 108 bytes, got {self.path}")
        self.max_line = max_line
        self.max_connections = max_connections
        self.mode = mode
        self.connections = 0
        self.refused = 0

    async def _bind(self) -> trio.socket.SocketType:
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise ValueError(f"path: {self.path} exists and is not a socket")
            probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
            try:
                probe.connect(os.fspath(self.path))
            except OSError as exc:
                if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                    raise
                self.path.unlink(missing_ok=True)  # stale: its daemon is gone
            else:
                raise ValueError(f"path: another process is serving {self.path}")
            finally:
                probe.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        # Connecting needs write permission on the file: under the usual umask (022) nobody else has
        # it between bind and chmod. The process umask is not touched (other threads create files).
        await sock.bind(os.fspath(self.path))
        os.chmod(self.path, self.mode)
        sock.listen(128)
        return sock

    async def serve(self, *, task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``task_status.started(path)`` once connections are accepted."""
        sock = await self._bind()
        listener = trio.SocketListener(sock)
        try:
            await trio.serve_listeners(self._handle, [listener], handler_nursery=None,
                                       task_status=_Started(task_status, self.path))
        finally:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass

    async def _handle(self, stream: trio.SocketStream) -> None:
        if self.connections >= self.max_connections:
            self.refused += 1
            await stream.aclose()
            return
        self.connections += 1
        try:
            await self._serve_stream(stream)
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except* Exception:  # one connection's bug must never take the control socket down
            log.exception("control: a connection on %s failed", self.path)
        finally:
            self.connections -= 1
            await stream.aclose()

    async def _serve_stream(self, stream: trio.SocketStream) -> None:
        session = self.server.new_session(transport="unix", peer=_peer(stream.socket))
        framer = LineFramer(self.max_line)
        pending: list[bytes] = []

        async def receive() -> bytes | None:
            while not pending:
                data = await stream.receive_some(65536)
                if not data:
                    return None
                try:
                    pending.extend(framer.feed(data))
                except MessageTooLarge as exc:
                    error = InvalidRequest(f"Invalid Request: message too large ({exc}); closing")
                    await stream.send_all(dumps(error_response(None, error)).encode() + b"\n")
                    return None
            return pending.pop(0)

        async def send(texts) -> None:
            await stream.send_all("".join(t + "\n" for t in texts).encode("utf-8"))

        await serve_session(self.server, session, receive, send)


class _Started:
    """Adapts serve_listeners' ``started(listeners)`` to ``started(path)``."""

    def __init__(self, status: trio.TaskStatus, path: Path) -> None:
        self._status = status
        self._path = path

    def started(self, value: object = None) -> None:
        self._status.started(self._path)
