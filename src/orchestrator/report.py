"""Reports from the event log: ``hotline report queues|agents|intervals``, and the API JSON-RPC calls.

The numbers are :mod:`orchestrator.metrics` (one definition everywhere),
computed over events read from the store; the store only decides which
events to read. For a window ``[start, end)`` (start inclusive, end
exclusive, as everywhere in Hotline) it reads:

* the ACD events dated in the window;
* each agent's last ``agent.state`` before ``start`` (the state it was in
  when the window opened);
* for calls that straddle ``start`` and have events in the window, their
  earlier ACD events (a wrap-up that ends in the window needs the talk time
  of a call that ended before it);
* for calls queued in the window that straddle ``end``, their later ACD
  events (a call queued at 09:59 and answered at 10:01 counts in the 09:45
  interval, with its answer).

The call records tell which calls straddle a boundary (their first and last
event times), so this is a few indexed queries, not a scan of the log. The
result is exactly ``metrics.X(all events, start=..., end=...)`` (tested),
with one deliberate difference: the agents listed are those with a state
before ``end``, not every agent the log ever saw.

Calls count in the window (and interval) in which they were queued; agent
state time is clipped to the window. Intervals are aligned on multiples of
15, 30 or 60 minutes of Unix time (local wall-clock quarters unless the
time zone is offset by a fraction of the interval).

Times on the command line: ISO 8601 (``2024-05-01``, ``2024-05-01T09:00``,
``2024-05-01T09:00:00+02:00``; without an offset: local time), ``now``,
``today``, ``yesterday`` (local midnight), relative ``-1h``, ``-30m``,
``-2d``, ``-1w``, or ``@1714550400`` (Unix seconds).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from orchestrator import metrics
from orchestrator.acd import AGENT_STATES
from orchestrator.acd.events import EVENT_TYPES
from orchestrator.store import EventLog, StoreError
from orchestrator.store.events import StoredEvent, to_acd_event

__all__ = [
    "DEFAULT_DB",
    "agent_report",
    "cdr_query",
    "format_csv",
    "format_table",
    "interval_report",
    "main",
    "parse_time",
    "queue_report",
    "report_agents",
    "report_intervals",
    "report_queues",
    "window_events",
]

DEFAULT_DB = "sqlite:///var/hotline.db"
INTERVALS = (15, 30, 60)
ACD_TYPES = tuple(sorted(EVENT_TYPES))
ACD_CALL_TYPES = tuple(t for t in ACD_TYPES if t.startswith("call."))
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw])$")


# -- time ----------------------------------------------------------------------------------------------------

def _local_midnight(now: float, days_back: int = 0) -> float:
    d = datetime.fromtimestamp(now).astimezone().date() - timedelta(days=days_back)
    return datetime(d.year, d.month, d.day).astimezone().timestamp()


def parse_time(value: str | float, *, now: float | None = None) -> float:
    """A report time (see the module docstring) as Unix seconds; ValueError if it is none of the forms."""
    if isinstance(value, bool):
        raise ValueError(f"time: expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"time: must be finite, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"time: expected a string or a number, got {type(value).__name__}")
    text = value.strip()
    now = time.time() if now is None else now
    low = text.lower()
    if low == "now":
        return now
    if low == "today":
        return _local_midnight(now)
    if low == "yesterday":
        return _local_midnight(now, 1)
    m = _RELATIVE.match(low)
    if m:
        amount = float(m.group(2)) * _UNITS[m.group(3)]
        return now + amount if m.group(1) == "+" else now - amount
    if text.startswith("@"):
        try:
            seconds = float(text[1:])
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return seconds
        raise ValueError(f"time: {value!r}: '@' must be followed by Unix seconds")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time: {value!r} is not ISO 8601, now, today, yesterday, -1h/-30m/-2d/-1w "
                         "or @UNIX_SECONDS") from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # naive: local time
    return parsed.timestamp()


def _window(start: Any, end: Any, now: float | None = None) -> tuple[float | None, float | None]:
    lo = None if start is None else parse_time(start, now=now)
    hi = None if end is None else parse_time(end, now=now)
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"end: must not be before start ({_iso(hi)} < {_iso(lo)})")
    return lo, hi


# -- reading the events a window needs ------------------------------------------------------------------------

def window_events(log: EventLog, start: float | None, end: float | None, *, align: float | None = None) -> list:
    """The ACD events (as :mod:`orchestrator.acd.events` records) that reports over [start, end) need.

    ``align`` (seconds): interval reports compute each interval's occupancy
    over the whole interval, also where it sticks out of the window, so agent
    states are read over the window widened to whole intervals.
    """
    state_from, state_to = start, end
    if align is not None:
        state_from = None if start is None else math.floor(start / align) * align
        state_to = None if end is None else math.ceil(end / align) * align
    # one pass in sequence order over the (widened) window: call events in [start, end), agent states in
    # [state_from, state_to)
    scanned: list[StoredEvent] = []
    in_window: set[str] = set()
    queued: set[str] = set()
    lo = -math.inf if start is None else start
    hi = math.inf if end is None else end
    for e in log.iter_events(since=state_from, until=state_to, types=ACD_TYPES):
        if e.type == "agent.state":
            scanned.append(e)
        elif lo <= e.at < hi:
            scanned.append(e)
            if e.call is not None:
                in_window.add(e.call)
                if e.type in ("call.queued", "call.rejected"):
                    queued.add(e.call)
    extra: dict[int, StoredEvent] = {}
    if state_from is not None:
        for e in log.agent_state_before_sync(state_from):
            extra[e.seq] = e
    if align is not None and state_to is not None:
        for e in log.agent_state_after_sync(state_to):  # closes the last span inside the last interval
            extra[e.seq] = e
    if start is not None:
        for call in sorted(set(log.boundary_calls_sync(start)) & in_window):
            for e in log.read_sync(call=call, types=ACD_CALL_TYPES, until=start):
                extra[e.seq] = e
    if end is not None:
        for call in sorted(set(log.boundary_calls_sync(end)) & queued):
            for e in log.read_sync(call=call, types=ACD_CALL_TYPES, since=end):
                extra[e.seq] = e
    if extra:
        have = {e.seq for e in scanned}
        scanned.extend(e for seq, e in extra.items() if seq not in have)
        scanned.sort(key=lambda e: e.seq)
    out = []
    for e in scanned:
        acd = to_acd_event(e)
        if acd is not None:
            out.append(acd)
    return out


def queue_report(log: EventLog, *, start: float | None, end: float | None, queue: str | None = None,
                 sl_threshold: float | Mapping[str, float] = 20.0,
                 short_abandon: float | Mapping[str, float] = 5.0) -> list[metrics.QueueMetrics]:
    """Per-queue metrics of the calls queued in [start, end) (one queue if ``queue`` is given)."""
    _check_name("queue", queue)
    result = metrics.queue_metrics(window_events(log, start, end), sl_threshold=sl_threshold,
                                   short_abandon=short_abandon, start=start, end=end)
    return [m for q, m in result.items() if queue is None or q == queue]


def agent_report(log: EventLog, *, start: float | None, end: float | None,
                 agent: str | None = None) -> list[metrics.AgentMetrics]:
    """Per-agent metrics over [start, end) (one agent if ``agent`` is given)."""
    _check_name("agent", agent)
    result = metrics.agent_metrics(window_events(log, start, end), start=start, end=end)
    return [m for a, m in result.items() if agent is None or a == agent]


def interval_report(log: EventLog, *, start: float | None, end: float | None, interval: int = 15,
                    queue: str | None = None, sl_threshold: float | Mapping[str, float] = 20.0,
                    short_abandon: float | Mapping[str, float] = 5.0) -> list[metrics.IntervalMetrics]:
    """Per (interval, queue) metrics; ``interval`` in minutes: 15, 30 or 60."""
    _check_name("queue", queue)
    if interval not in INTERVALS:
        raise ValueError(f"interval: must be one of {INTERVALS} minutes, got {interval!r}")
    events = window_events(log, start, end, align=interval * 60.0)
    rows = metrics.interval_metrics(events, interval=interval * 60.0, start=start, end=end,
                                    sl_threshold=sl_threshold, short_abandon=short_abandon)
    return [r for r in rows if queue is None or r.queue.queue == queue]


def _check_name(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name}: must be a non-empty string or None, got {value!r}")


# -- the API JSON-RPC methods call (report.queues, report.agents, report.intervals, cdr.query) -------------

def _jsonable(obj: Any) -> dict[str, Any]:
    d = asdict(obj)
    for k, v in list(d.items()):
        if isinstance(v, Mapping):
            d[k] = dict(v)
    return d


def _interval_json(r: metrics.IntervalMetrics) -> dict[str, Any]:
    return {"start": r.start, "length": r.length, "occupancy": r.occupancy, **_jsonable(r.queue)}


async def _in_thread(fn: Callable[[], Any]) -> Any:
    import trio

    return await trio.to_thread.run_sync(fn)


async def report_queues(log: EventLog, *, start: str | float | None = "today", end: str | float | None = "now",
                        queue: str | None = None, sl_threshold: float = 20.0,
                        short_abandon: float = 5.0) -> list[dict[str, Any]]:
    """``report.queues``: JSON-ready rows of :func:`queue_report` (times as in :func:`parse_time`)."""
    lo, hi = _window(start, end)
    rows = await _in_thread(partial(queue_report, log, start=lo, end=hi, queue=queue, sl_threshold=sl_threshold,
                                    short_abandon=short_abandon))
    return [_jsonable(r) for r in rows]


async def report_agents(log: EventLog, *, start: str | float | None = "today", end: str | float | None = "now",
                        agent: str | None = None) -> list[dict[str, Any]]:
    """``report.agents``: JSON-ready rows of :func:`agent_report`."""
    lo, hi = _window(start, end)
    rows = await _in_thread(partial(agent_report, log, start=lo, end=hi, agent=agent))
    return [_jsonable(r) for r in rows]


async def report_intervals(log: EventLog, *, start: str | float | None = "today",
                           end: str | float | None = "now", interval: int = 15, queue: str | None = None,
                           sl_threshold: float = 20.0, short_abandon: float = 5.0) -> list[dict[str, Any]]:
    """``report.intervals``: JSON-ready rows of :func:`interval_report`."""
    lo, hi = _window(start, end)
    rows = await _in_thread(partial(interval_report, log, start=lo, end=hi, interval=interval, queue=queue,
                                    sl_threshold=sl_threshold, short_abandon=short_abandon))
    return [_interval_json(r) for r in rows]


async def cdr_query(log: EventLog, *, start: str | float | None = None, end: str | float | None = None,
                    queue: str | None = None, agent: str | None = None, outcome: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """``cdr.query``: call records that arrived in [start, end), newest last, at most ``limit`` (<= 10,000)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise ValueError(f"limit: must be an int from 1 to 10000, got {limit!r}")
    lo, hi = _window(start, end)
    records = await log.call_records(since=lo, until=hi, queue=queue, agent=agent, outcome=outcome, limit=limit)
    return [r.to_json() for r in records]


# -- output --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str            # CSV header
    title: str           # table header
    get: Callable[[Any], Any]
    kind: str            # "str", "int", "sec", "pct", "time"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def _q(name: str) -> Callable[[Any], Any]:
    return lambda m: getattr(m, name)


QUEUE_COLUMNS = [
    Column("queue", "queue", _q("queue"), "str"),
    Column("queued", "queued", _q("queued"), "int"),
    Column("answered", "answered", _q("answered"), "int"),
    Column("answered_within", "in SL", _q("answered_within"), "int"),
    Column("abandoned", "abandoned", _q("abandoned"), "int"),
    Column("short_abandoned", "short ab.", _q("short_abandoned"), "int"),
    Column("service_level", "SL", _q("service_level"), "pct"),
    Column("sl_threshold", "SL s", _q("sl_threshold"), "sec"),
    Column("asa", "ASA s", _q("asa"), "sec"),
    Column("aht", "AHT s", _q("aht"), "sec"),
    Column("abandon_rate", "aband. %", _q("abandon_rate"), "pct"),
    Column("max_wait", "max wait s", _q("max_wait"), "sec"),
    Column("callbacks_requested", "callbacks", _q("callbacks_requested"), "int"),
    Column("callbacks_answered", "cb answered", _q("callbacks_answered"), "int"),
    Column("overflowed", "overflowed", _q("overflowed"), "int"),
    Column("exited", "exited", _q("exited"), "int"),
    Column("rejected", "rejected", _q("rejected"), "int"),
    Column("handled", "handled", _q("handled"), "int"),
    Column("mean_talk", "talk s", _q("mean_talk"), "sec"),
    Column("mean_hold", "hold s", _q("mean_hold"), "sec"),
    Column("mean_wrapup", "wrap-up s", _q("mean_wrapup"), "sec"),
]

_STATE_COLUMNS = [s for s in AGENT_STATES if s != "offline"]
AGENT_COLUMNS = [
    Column("agent", "agent", _q("agent"), "str"),
    Column("handled", "handled", _q("handled"), "int"),
    Column("aht", "AHT s", _q("aht"), "sec"),
    Column("talk", "talk s", _q("talk"), "sec"),
    Column("hold", "hold s", _q("hold"), "sec"),
    Column("wrapup", "ACW s", _q("wrapup"), "sec"),  # after-call work; "wrap-up s" is time in that state
    Column("ring_no_answer", "RONA", _q("ring_no_answer"), "int"),
    Column("occupancy", "occupancy", _q("occupancy"), "pct"),
] + [Column(f"{s}_s", f"{s.replace('_', '-')} s", (lambda m, s=s: m.state_time.get(s, 0.0)), "sec")
     for s in _STATE_COLUMNS]

INTERVAL_COLUMNS = [
    Column("start", "interval", _q("start"), "time"),
    Column("queue", "queue", lambda r: r.queue.queue, "str"),
] + [Column(c.name, c.title, (lambda r, c=c: c.get(r.queue)), c.kind) for c in QUEUE_COLUMNS
     if c.name in ("queued", "answered", "abandoned", "service_level", "asa", "aht", "abandon_rate", "max_wait")] + [
    Column("occupancy", "occupancy", _q("occupancy"), "pct"),
]


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "sec":
        return f"{value:.1f}"
    if kind == "time":
        return datetime.fromtimestamp(value).astimezone().strftime("%Y-%m-%d %H:%M")
    return str(value)


def _csv_cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "time":
        return _iso(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    """Rows as an aligned text table (text left, numbers right; '-' where there is no value)."""
    cells = [[_cell(c.get(r), c.kind) for c in columns] for r in rows]
    widths = [max([len(c.title)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if c.kind in ("str", "time") else v.rjust(w)
                 for v, w, c in zip(values, widths, columns)]
        return "  ".join(parts).rstrip()
    out = [line([c.title for c in columns]), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


def format_csv(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    """Rows as CSV (RFC 4180): a header line, exact values (floats as Python reprs), empty for none."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    for r in rows:
        writer.writerow([_csv_cell(c.get(r), c.kind) for c in columns])
    return buf.getvalue()


# -- the command ---------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hotline report",
        description="Contact-centre reports from the event log: per queue, per agent, or per interval. "
                    "The window is [--from, --to): start inclusive, end exclusive.",
        epilog="Times: ISO 8601 (2024-05-01, 2024-05-01T09:00, ...+02:00; local time without an offset), now, "
               "today, yesterday, -1h, -30m, -2d, -1w, @UNIX_SECONDS.")
    p.add_argument("what", choices=("queues", "agents", "intervals"), help="which report")
    p.add_argument("--from", dest="start", default="today", metavar="T", help="window start (default: today)")
    p.add_argument("--to", dest="end", default="now", metavar="T", help="window end, exclusive (default: now)")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")
    p.add_argument("--interval", type=int, choices=INTERVALS, default=15, help="interval minutes (intervals)")
    p.add_argument("--queue", metavar="Q", help="only this queue (queues, intervals)")
    p.add_argument("--agent", metavar="A", help="only this agent (agents)")
    p.add_argument("--sl-seconds", type=float, default=20.0, metavar="S",
                   help="service level threshold T in seconds (default 20)")
    p.add_argument("--short-abandon", type=float, default=5.0, metavar="S",
                   help="abandons shorter than this are left out of the service level (default 5)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="FILE", help="the daemon's TOML config ([storage] url)")
    src.add_argument("--db", metavar="URL", help=f"storage URL (default: {DEFAULT_DB})")
    return p


def storage_url(config: str | None, db: str | None) -> str:
    """The URL to read: ``--db``, else ``[storage] url`` of ``--config``, else the demo's default."""
    if db:
        return db
    if config:
        try:
            with open(config, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ValueError(f"--config: cannot read {config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"--config: {config}: {exc}") from None
        url = data.get("storage", {}).get("url") if isinstance(data.get("storage"), dict) else None
        if not isinstance(url, str) or not url:
            raise ValueError(f"--config: {config}: [storage] url is missing")
        return url
    return DEFAULT_DB


def _relative_values(argv: list[str]) -> list[str]:
    """``--from -1h`` as ``--from=-1h``: argparse would take "-1h" for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--from", "--to") and i + 1 < len(argv) and _RELATIVE.match(argv[i + 1].lower()):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _fail(message: str) -> int:
    print(f"hotline report: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``hotline report queues|agents|intervals``: print the report; exit 2 on bad arguments or no database."""
    args = _parser().parse_args(_relative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        start, end = _window(args.start, args.end)
        for name, value in (("--sl-seconds", args.sl_seconds), ("--short-abandon", args.short_abandon)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a number of seconds >= 0, got {value!r}")
        url = storage_url(args.config, args.db)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        log = EventLog(url, read_only=True, node=f"report-{os.getpid()}")
    except (StoreError, ValueError) as exc:
        return _fail(str(exc))
    with log:
        try:
            if args.what == "queues":
                rows: Iterable[Any] = queue_report(log, start=start, end=end, queue=args.queue,
                                                   sl_threshold=args.sl_seconds, short_abandon=args.short_abandon)
                columns = QUEUE_COLUMNS
            elif args.what == "agents":
                rows = agent_report(log, start=start, end=end, agent=args.agent)
                columns = AGENT_COLUMNS
            else:
                rows = interval_report(log, start=start, end=end, interval=args.interval, queue=args.queue,
                                       sl_threshold=args.sl_seconds, short_abandon=args.short_abandon)
                columns = INTERVAL_COLUMNS
        except (StoreError, ValueError) as exc:
            return _fail(str(exc))
    rows = list(rows)
    if args.csv:
        sys.stdout.write(format_csv(rows, columns))
    else:
        print(f"{args.what} from {_iso(start)} to {_iso(end)} (end excluded), {url_for_humans(url)}")
        sys.stdout.write(format_table(rows, columns) if rows else "(no calls in this window)\n")
    return 0


def url_for_humans(url: str) -> str:
    from orchestrator.store import parse_url

    return parse_url(url).redacted()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
