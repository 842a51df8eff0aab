"""Schema migrations, versioned in code, for both backends.

Each :class:`Migration` is a numbered list of statements per backend. At
open, the store creates ``schema_version`` if missing, then applies every
migration newer than the highest recorded version, each in its own
transaction (PostgreSQL: under an advisory lock, so several nodes starting at
once migrate once). A database whose version is newer than this code knows
is refused (an older Hotline must not write to a newer schema).

Tables (both backends, same names and columns):

* ``events``: the log (see :mod:`orchestrator.store.events`); append-only: a
  trigger refuses UPDATE (DELETE is left to the retention purge).
* ``log_head``: one row, the last sequence number. An append takes it with
  ``UPDATE ... RETURNING`` first in its transaction: sequence numbers are
  allocated in commit order and have no gaps, even across PostgreSQL nodes.
* ``call_records``: the CDR projection (:mod:`orchestrator.store.cdr`),
  maintained in the appending transaction; ``record`` holds the whole record
  as JSON, the other columns are indexed copies for queries.
* ``agent_states``: each agent's last ``agent.state`` (who is logged in where,
  used by crash recovery and the wallboard).
* ``audit``: who did what over JSON-RPC; triggers refuse UPDATE and DELETE.
* ``store_meta``: key/value facts (retention horizon).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "VERSION_TABLE", "Migration"]

VERSION_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
              "description TEXT NOT NULL, applied_at REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                  "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


_V1_SQLITE = (
    "CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)",
    "INSERT INTO log_head (id, last_seq) VALUES (1, 0)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        node TEXT NOT NULL,
        at REAL NOT NULL,
        type TEXT NOT NULL,
        call_id TEXT,
        agent TEXT,
        queue TEXT,
        data TEXT NOT NULL)""",
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX events_type_at ON events (type, at)",
    "CREATE INDEX events_call ON events (call_id, seq) WHERE call_id IS NOT NULL",
    "CREATE INDEX events_agent ON events (agent, type, at) WHERE agent IS NOT NULL",
    "CREATE INDEX events_queue ON events (queue, at) WHERE queue IS NOT NULL",
    "CREATE INDEX events_node ON events (node, seq)",
    """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TABLE call_records (
        call_id TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        arrived_at REAL NOT NULL,
        ended_at REAL,
        last_at REAL NOT NULL,
        queue TEXT,
        agent TEXT,
        queues TEXT NOT NULL,
        agents TEXT NOT NULL,
        outcome TEXT,
        is_open INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        record TEXT NOT NULL)""",
    "CREATE INDEX call_records_arrived ON call_records (arrived_at)",
    "CREATE INDEX call_records_last ON call_records (last_at)",
    "CREATE INDEX call_records_open ON call_records (node) WHERE is_open = 1",
    """CREATE TABLE agent_states (
        agent TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        node TEXT NOT NULL,
        at REAL NOT NULL,
        seq INTEGER NOT NULL)""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        node TEXT NOT NULL,
        principal TEXT NOT NULL,
        role TEXT,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        result TEXT NOT NULL,
        error TEXT)""",
    "CREATE INDEX audit_at ON audit (at)",
    "CREATE INDEX audit_principal ON audit (principal, at)",
    "CREATE INDEX audit_method ON audit (method, at)",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

_V1_POSTGRESQL = (
    "CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq BIGINT NOT NULL)",
    "INSERT INTO log_head (id, last_seq) VALUES (1, 0)",
    """CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        node TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        type TEXT NOT NULL,
        call_id TEXT,
        agent TEXT,
        queue TEXT,
        data JSON NOT NULL)""",
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX events_type_at ON events (type, at)",
    "CREATE INDEX events_call ON events (call_id, seq) WHERE call_id IS NOT NULL",
    "CREATE INDEX events_agent ON events (agent, type, at) WHERE agent IS NOT NULL",
    "CREATE INDEX events_queue ON events (queue, at) WHERE queue IS NOT NULL",
    "CREATE INDEX events_node ON events (node, seq)",
    """CREATE FUNCTION hotline_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER events_append_only BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION hotline_refuse_change()""",
    """CREATE TABLE call_records (
        call_id TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        arrived_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION,
        last_at DOUBLE PRECISION NOT NULL,
        queue TEXT,
        agent TEXT,
        queues TEXT NOT NULL,
        agents TEXT NOT NULL,
        outcome TEXT,
        is_open INTEGER NOT NULL,
        last_seq BIGINT NOT NULL,
        record JSON NOT NULL)""",
    "CREATE INDEX call_records_arrived ON call_records (arrived_at)",
    "CREATE INDEX call_records_last ON call_records (last_at)",
    "CREATE INDEX call_records_open ON call_records (node) WHERE is_open = 1",
    """CREATE TABLE agent_states (
        agent TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        node TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        seq BIGINT NOT NULL)""",
    """CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        node TEXT NOT NULL,
        principal TEXT NOT NULL,
        role TEXT,
        method TEXT NOT NULL,
        params JSON NOT NULL,
        result TEXT NOT NULL,
        error TEXT)""",
    "CREATE INDEX audit_at ON audit (at)",
    "CREATE INDEX audit_principal ON audit (principal, at)",
    "CREATE INDEX audit_method ON audit (method, at)",
    """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION hotline_refuse_change()""",
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event log, call records, agent states, audit log", _V1_SQLITE, _V1_POSTGRESQL),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
