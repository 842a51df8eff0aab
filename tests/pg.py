"""A private PostgreSQL server for the test session (pytest plugin).

The Debian ``postgresql`` package provides the binaries; this plugin runs
``initdb`` into a temporary directory, starts the server with ``pg_ctl`` on a
free loopback port (unix socket in the same temporary directory), creates a
database, and stops and deletes everything when the session ends. PostgreSQL
refuses to run as root, so as root the cluster belongs to the ``postgres``
system user and its commands run through ``runuser -u postgres --``.

Fixtures:

* ``postgres_server`` (session): a :class:`PostgresServer` (``url`` of the
  test database, ``admin_url``, ``port``...).
* ``postgres_url`` (function): the URL of a fresh, empty schema in that
  database (``search_path`` set through the URL), dropped after the test, so
  tests do not see each other's tables or notifications.

Environment:

* ``HOTLINE_TEST_POSTGRES_URL=postgresql://...``: use this existing database
  instead of starting a server.
* ``HOTLINE_SKIP_POSTGRES=1``: skip every PostgreSQL test (they are
  otherwise required: if the server cannot start, they FAIL with the reason).

Use it from another test tree with ``pytest_plugins = ["tests.pg"]`` in the
root conftest, or ``from tests.pg import postgres_server, postgres_url``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

SKIP_ENV = "HOTLINE_SKIP_POSTGRES"
URL_ENV = "HOTLINE_TEST_POSTGRES_URL"
DATABASE = "hotline_test"

__all__ = ["PostgresServer", "postgres_bindir", "postgres_server", "postgres_url", "schema_url"]


@dataclass(frozen=True)
class PostgresServer:
    """A running server: ``url`` is the test database, ``admin_url`` the ``postgres`` database."""

    url: str
    admin_url: str
    port: int | None
    datadir: Path | None


def postgres_bindir() -> Path:
    """The newest installed server's bin directory (Debian puts it under /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("PostgreSQL server binaries not found: install the Debian package 'postgresql' "
                       f"(or set {SKIP_ENV}=1 to skip the PostgreSQL tests)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runner() -> tuple[list[str], str | None]:
    """The prefix that runs a command as the cluster owner, and that owner (None: ourselves)."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no 'postgres' system user to own the test cluster "
                           "(the Debian package 'postgresql' creates it)") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root and 'runuser' (util-linux) is missing")
    return [runuser, "-u", "postgres", "--"], "postgres"


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def start_server(base: Path) -> tuple[PostgresServer, callable]:
    """initdb + pg_ctl start under ``base``; returns the server and a stop function."""
    bindir = postgres_bindir()
    prefix, owner = _runner()
    datadir = base / "data"
    sockdir = base / "sock"
    sockdir.mkdir()
    if owner is not None:
        entry = pwd.getpwnam(owner)
        for p in (base, sockdir):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    _run(prefix + [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
    port = _free_port()
    opts = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
    logfile = base / "server.log"
    try:
        _run(prefix + [str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(logfile), "-w", "-t", "60",
                       "start"])
    except RuntimeError as exc:
        log = logfile.read_text() if logfile.exists() else ""
        raise RuntimeError(f"{exc}\nserver log:\n{log}") from None

    def stop() -> None:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120, check=False)

    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    except Exception:
        stop()
        raise
    url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    return PostgresServer(url=url, admin_url=admin, port=port, datadir=datadir), stop


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (fails, not skips, when it cannot start)."""
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        pytest.skip(f"PostgreSQL tests disabled by {SKIP_ENV}={os.environ[SKIP_ENV]}")
    given = os.environ.get(URL_ENV)
    if given:
        yield PostgresServer(url=given, admin_url=given, port=None, datadir=None)
        return
    base = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
    try:
        try:
            server, stop = start_server(base)
        except Exception as exc:  # the reason goes into the failure, as the issue requires
            pytest.fail(f"could not start the test PostgreSQL server: {exc}", pytrace=False)
        try:
            yield server
        finally:
            stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


_schemas = itertools.count(1)


def schema_url(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set to ``schema`` (libpq ``options`` parameter)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty schema in the test database, as a URL whose search_path is that schema."""
    import psycopg

    schema = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(postgres_server.url, schema)
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
