"""Storage URLs: ``sqlite:///var/hotline.db`` or ``postgresql://user:pass@host/db``.

SQLite paths follow the convention SQLAlchemy made common: three slashes and
a relative path (``sqlite:///var/hotline.db`` is ``./var/hotline.db``, the
demo's state directory), four slashes for an absolute one
(``sqlite:////srv/hotline/hotline.db``). Query parameters for SQLite:
``synchronous=full`` (the default) or ``normal`` (see
:mod:`orchestrator.store.sqlite` for what each survives).

PostgreSQL URLs are libpq connection URIs, passed to psycopg as they are
(``postgres://`` is accepted too), so every libpq parameter works
(``?sslmode=require``, ``?host=/run/postgresql``, ``?options=-csearch_path%3Dhotline``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

__all__ = ["StorageUrl", "parse_url"]

_SQLITE_SYNC = ("full", "normal")


@dataclass(frozen=True)
class StorageUrl:
    """A parsed storage URL: ``backend`` is "sqlite" or "postgresql"."""

    backend: str
    url: str
    path: Path | None = None
    synchronous: str = "full"

    def redacted(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and statistics)."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def parse_url(url: str) -> StorageUrl:
    """Parse and check a storage URL (ValueError says what is wrong)."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"url: expected a storage URL like 'sqlite:///var/hotline.db', got {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"url: {url!r} has no scheme (use sqlite:///PATH or postgresql://...)")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise ValueError(f"url: a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path, got {url!r}")
        path_part, _, query = rest[1:].partition("?")
        if not path_part or path_part.endswith("/"):
            raise ValueError(f"url: {url!r} names no database file")
        if path_part in (":memory:", "") or path_part.startswith("file:"):
            raise ValueError("url: an in-memory SQLite database cannot be shared by the writer thread and "
                             "readers; use a file (a temporary one for tests)")
        params = parse_qs(query, keep_blank_values=True)
        unknown = set(params) - {"synchronous"}
        if unknown:
            raise ValueError(f"url: unknown SQLite parameter(s) {sorted(unknown)} (known: synchronous)")
        sync = params.get("synchronous", ["full"])[-1].lower()
        if sync not in _SQLITE_SYNC:
            raise ValueError(f"url: synchronous must be one of {_SQLITE_SYNC}, got {sync!r}")
        return StorageUrl("sqlite", url, Path(path_part), sync)
    if scheme in ("postgresql", "postgres"):
        return StorageUrl("postgresql", url)
    raise ValueError(f"url: unknown storage scheme {scheme!r} (use sqlite or postgresql)")
