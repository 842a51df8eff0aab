"""Where bindings survive a restart: the location service's persistence hook.

A :class:`BindingStore` replaces the whole set of one AOR's bindings at a time
(``save(aor, bindings)``; an empty set deletes the AOR), which is what RFC 3261
10.3 needs: a REGISTER's changes are committed all together or not at all, and
``save`` raising means the REGISTER fails with a 500 and memory is unchanged.

* :class:`MemoryBindingStore` - the default; nothing survives the process.
* :class:`SqliteBindingStore` - one row per AOR in an SQLite file (stdlib
  ``sqlite3``, WAL journal), written before the 200 OK is sent. A single node
  uses it; a cluster would put the same two methods on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .location import Binding

__all__ = ["BindingStore", "MemoryBindingStore", "SqliteBindingStore"]


class BindingStore(Protocol):
    """Persistence for bindings; both methods may raise (the caller answers 500)."""

    def load(self) -> Iterable[Binding]: ...

    def save(self, aor: str, bindings: Sequence[Binding]) -> None: ...


class MemoryBindingStore:
    """Keeps the last saved set per AOR in a dict (tests, and the no-persistence default)."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[Binding, ...]] = {}
        self.writes = 0

    def load(self) -> Iterable[Binding]:
        return [b for bindings in self.saved.values() for b in bindings]

    def save(self, aor: str, bindings: Sequence[Binding]) -> None:
        self.writes += 1
        if bindings:
            self.saved[aor] = tuple(bindings)
        else:
            self.saved.pop(aor, None)


class SqliteBindingStore:
    """Bindings in an SQLite file: table ``registrar_bindings(aor PRIMARY KEY, bindings JSON)``.

    Damaged rows are skipped on load and counted in :attr:`damaged`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.damaged = 0
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS registrar_bindings (aor TEXT PRIMARY KEY, bindings TEXT NOT NULL)"
        )

    def load(self) -> list[Binding]:
        from .location import Binding

        out = []
        for aor, text in self._db.execute("SELECT aor, bindings FROM registrar_bindings ORDER BY aor"):
            try:
                records = json.loads(text)
                out.extend(Binding.from_dict(r) for r in records)
            except (ValueError, TypeError, AttributeError):
                self.damaged += 1
        return out

    def save(self, aor: str, bindings: Sequence[Binding]) -> None:
        if bindings:
            text = json.dumps([b.to_dict() for b in bindings], separators=(",", ":"))
            self._db.execute(
                "INSERT INTO registrar_bindings (aor, bindings) VALUES (?, ?) "
                "ON CONFLICT(aor) DO UPDATE SET bindings = excluded.bindings",
                (aor, text),
            )
        else:
            self._db.execute("DELETE FROM registrar_bindings WHERE aor = ?", (aor,))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteBindingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
