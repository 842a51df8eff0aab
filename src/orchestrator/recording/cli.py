"""``hotline recordings``: list, show, export, purge, legal hold, key rotation.

::

    hotline recordings [--config FILE | --dir DIR] [--key-file FILE] COMMAND ...

    list [--call ID] [--from T] [--to T] [--limit N] [--json]
    show ID [--json]                 the metadata record (and the container's key id)
    export ID -o FILE [--force]      decrypt for playback; a tampered file is refused (exit 1)
    verify [ID...]                   check stored recordings against their SHA-256 (all if none given)
    purge [--dry-run] [--now T] [--json]   retention; legal holds are kept
    hold ID [--release] [--reason TEXT]    set or clear a legal hold
    rotate-key [--key-id ID]         append a new key to the key file; new recordings use it

Settings come from the ``[recording]`` section of ``--config`` (and
``[storage] url``: purges and holds are then appended to the event log and
the audit log, as the daemon does), or from ``--dir``/``--key-file``.
Times: Unix seconds or ISO 8601 (UTC when no offset is given). Exit
status: 0 done, 1 an error (the message says which recording and why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import archive
from .config import RecordingConfig
from .crypto import CryptoError, KeyRing, add_key
from .storage import RecordingInfo, RecordingStore

__all__ = ["main"]


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither Unix seconds nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _iso(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotline recordings", description="Recordings: list, export, purge.")
    p.add_argument("--config", type=Path, help="the Hotline TOML config (its [recording] and [storage])")
    p.add_argument("--dir", type=Path, help="the recordings directory (overrides the config)")
    p.add_argument("--key-file", type=Path, help="the recording key file (overrides the config)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="recordings, newest first")
    ls.add_argument("--call")
    ls.add_argument("--from", dest="start", type=_time)
    ls.add_argument("--to", dest="end", type=_time)
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true", help="one JSON record a line")
    show = sub.add_parser("show", help="one recording's metadata")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    ex = sub.add_parser("export", help="decrypt a recording for playback")
    ex.add_argument("id")
    ex.add_argument("-o", "--output", type=Path, required=True)
    ex.add_argument("--force", action="store_true", help="overwrite the output file")
    ve = sub.add_parser("verify", help="check stored recordings against their SHA-256")
    ve.add_argument("ids", nargs="*")
    pu = sub.add_parser("purge", help="delete recordings past their retention (legal holds are kept)")
    pu.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    pu.add_argument("--now", type=_time, help="purge as of this time (default: now)")
    pu.add_argument("--json", action="store_true")
    ho = sub.add_parser("hold", help="set (or --release) a legal hold")
    ho.add_argument("id")
    ho.add_argument("--release", action="store_true")
    ho.add_argument("--reason")
    rk = sub.add_parser("rotate-key", help="add a new current key to the key file")
    rk.add_argument("--key-id")
    return p


class _Usage(Exception):
    pass


def _settings(args: argparse.Namespace) -> tuple[RecordingConfig, str | None]:
    section: dict[str, Any] = {}
    storage_url = None
    if args.config is not None:
        try:
            with open(args.config, "rb") as f:
                doc = tomllib.load(f)
        except OSError as exc:
            raise _Usage(f"{args.config}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise _Usage(f"{args.config}: {exc}") from None
        section = dict(doc.get("recording", {}))
        storage = doc.get("storage", {})
        storage_url = storage.get("url") if isinstance(storage, dict) else None
    if args.dir is not None:
        section["dir"] = str(args.dir)
    if args.key_file is not None:
        section["key_file"] = str(args.key_file)
    if "dir" not in section:
        raise _Usage("give --config FILE (with a [recording] dir) or --dir DIR")
    try:
        config = RecordingConfig.from_mapping(section)
    except ValueError as exc:
        where = f"{args.config}: " if args.config is not None else ""
        raise _Usage(f"{where}{exc}") from None
    return config, storage_url


def _keys(config: RecordingConfig, needed: bool) -> KeyRing | None:
    if config.key_file is None:
        return None
    if not config.key_file.exists() and not needed:
        return None
    return KeyRing.load(config.key_file)


def _find(store: RecordingStore, rid: str) -> RecordingInfo:
    info = store.find(rid)
    if info is None:
        raise LookupError(f"no recording {rid!r} in {store.root}")
    return info


def _row(info: RecordingInfo) -> str:
    dur = f"{info.duration:.1f}s" if info.duration is not None else "-"
    enc = info.key_id if info.encrypted else ("plain" if info.state == "ready" else "-")
    flags = ("hold " if info.legal_hold else "") + ("recovered" if info.recovered else "")
    return f"{info.recording:<44} {info.call:<24} {_iso(info.started_at)} {dur:>8} {info.state:<9} " \
           f"{info.format:<8} {enc:<12} {flags}".rstrip()


def _print_info(info: RecordingInfo, store: RecordingStore) -> None:
    d = info.to_dict()
    width = max(map(len, d))
    for key, value in d.items():
        if key in ("started_at", "ended_at", "legal_hold_at", "purged_at") and value is not None:
            value = f"{_iso(value)} ({value})"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        print(f"{key:<{width}}  {value}")
    print(f"{'path':<{width}}  {store.absolute(info)}")


async def _with_service(config: RecordingConfig, storage_url: str | None, keys: KeyRing | None, fn) -> Any:
    """Run ``fn(service)`` with the event log (when configured) so purges and holds are logged."""
    import trio

    from .service import RecordingService

    event_log = None
    if storage_url:
        from orchestrator.store import EventLog

        # recover=False: a running daemon's open calls are its own business.
        event_log = await trio.to_thread.run_sync(lambda: EventLog(storage_url, recover=False))
    try:
        service = RecordingService(config, keys=keys, log=event_log)
        return await fn(service)
    finally:
        if event_log is not None:
            await event_log.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return _run(args)
    except _Usage as exc:
        print(f"hotline recordings: {exc}", file=sys.stderr)
        return 2
    except (LookupError, CryptoError, ValueError, OSError) as exc:
        print(f"hotline recordings: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    import trio

    config, storage_url = _settings(args)
    store = RecordingStore(config.dir)
    by = f"cli:{getpass.getuser()}"
    cmd = args.command
    if cmd == "rotate-key":
        if config.key_file is None:
            raise _Usage("no key file: set [recording] key_file or give --key-file")
        kid = add_key(config.key_file, args.key_id)
        print(f"added key {kid} to {config.key_file}; new recordings use it")
        return 0
    if cmd == "list":
        if args.limit < 1:
            raise _Usage("--limit must be >= 1")
        infos = [*(i for i in store.in_progress() if (args.call is None or i.call == args.call)),
                 *store.newest(call=args.call, start=args.start, end=args.end, limit=args.limit)]
        for info in infos[:args.limit]:
            print(json.dumps(info.to_dict(), sort_keys=True) if args.json else _row(info))
        return 0
    if cmd == "show":
        info = _find(store, args.id)
        if args.json:
            print(json.dumps(info.to_dict(), indent=1, sort_keys=True))
        else:
            _print_info(info, store)
        return 0
    if cmd == "export":
        info = _find(store, args.id)
        if args.output.exists() and not args.force:
            raise _Usage(f"{args.output} exists (use --force to overwrite)")
        keys = _keys(config, info.encrypted)
        try:
            size = archive.export(store, info, args.output, keys)
        except CryptoError as exc:
            raise CryptoError(f"recording {info.recording}: refused: {exc}") from None
        print(f"{args.output}: {size} bytes, {info.format}, {info.duration}s, SHA-256 {info.sha256}")
        return 0
    if cmd == "verify":
        keys = _keys(config, True)
        infos = [_find(store, rid) for rid in args.ids] if args.ids else \
            [i for _, i in store.scan() if i.state == "ready"]
        bad = 0
        for info in infos:
            try:
                archive.verify(store, info, keys)
                print(f"ok      {info.recording}")
            except (CryptoError, ValueError, OSError) as exc:
                bad += 1
                print(f"FAILED  {info.recording}: {exc}")
        print(f"{len(infos) - bad} ok, {bad} failed")
        return 1 if bad else 0
    if cmd == "purge":
        async def purge(service):
            return await service.purge(now=args.now, dry_run=args.dry_run, by=by)

        report = trio.run(_with_service, config, storage_url, _keys(config, False), purge)
        if args.json:
            print(json.dumps(report.to_dict(), sort_keys=True))
            return 0
        verb = "would purge" if args.dry_run else "purged"
        for c in report.purged:
            print(f"{verb} {c.recording} (call {c.call}, {c.age_days:.1f} days old, retention "
                  f"{c.retention_days:g} days)")
        for c in report.held:
            print(f"kept   {c.recording} (legal hold; {c.age_days:.1f} days old)")
        print(f"{verb} {len(report.purged)} recording(s), {report.bytes_freed} bytes; "
              f"{len(report.held)} kept by legal hold")
        return 0
    if cmd == "hold":
        async def hold(service):
            return await service.set_legal_hold(args.id, not args.release, by=by, reason=args.reason)

        from .errors import RecordingConflict, RecordingNotFound

        try:
            info = trio.run(_with_service, config, storage_url, _keys(config, False), hold)
        except (RecordingNotFound, RecordingConflict) as exc:
            raise LookupError(str(exc)) from None
        state = "set" if info["legal_hold"] else "released"
        print(f"legal hold {state} on {info['recording']}")
        return 0
    raise _Usage(f"unknown command {cmd!r}")  # pragma: no cover - argparse refuses it first


if __name__ == "__main__":
    sys.exit(main())
