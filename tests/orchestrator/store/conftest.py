"""Store fixtures: every store test runs on SQLite (a temporary file) and on a real PostgreSQL server.

The PostgreSQL server comes from the :mod:`tests.pg` plugin (a private
cluster for the session; HOTLINE_SKIP_POSTGRES=1 skips those tests, and if
the server cannot start they fail with the reason).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import psycopg
import pytest

from orchestrator.store import EventLog
from tests.pg import postgres_server, postgres_url, schema_url  # noqa: F401  (fixtures re-exported)

BACKENDS = ("sqlite", "postgresql")
_fresh = itertools.count(1)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def url_factory(backend, tmp_path, request) -> Iterator[Callable[[], str]]:
    """A function returning the URL of a new, empty database of this test's backend at each call.

    (Hypothesis tests call it once per example; it is safe to reuse across examples.)
    """
    schemas: list[str] = []
    server = request.getfixturevalue("postgres_server") if backend == "postgresql" else None

    def fresh() -> str:
        n = next(_fresh)
        if backend == "sqlite":
            return f"sqlite:///{tmp_path}/hotline-{n}.db"
        schema = f"f{os.getpid()}_{n}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append(schema)
        return schema_url(server.url, schema)

    yield fresh
    if schemas:
        with psycopg.connect(server.url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store_url(url_factory) -> str:
    """One empty database of the parametrized backend."""
    return url_factory()


@pytest.fixture
def open_log(store_url) -> Iterator[Callable[..., EventLog]]:
    """``open_log(**kwargs)`` opens an EventLog on this test's database (closed at teardown)."""
    logs: list[EventLog] = []

    def opener(url: str | None = None, **kwargs) -> EventLog:
        kwargs.setdefault("node", "n1")
        log = EventLog(url or store_url, **kwargs)
        logs.append(log)
        return log

    yield opener
    for log in logs:
        log.close()
