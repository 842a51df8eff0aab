"""The `hotline` command: one entry point, each subcommand owned by its subsystem.

Each subcommand is a module with a ``main(argv) -> int``; this file only
dispatches, so a subsystem's options live next to its code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("orchestrator.daemon.serve", "run the daemon in the foreground (--config FILE)"),
    "demo": ("orchestrator.daemon.demo", "the embedded call centre: demo IVR, simulated agents and callers (--duration S)"),
    "plan": ("orchestrator.plan", "agents (Erlang C) and trunks (Erlang B) for a target"),
    "ivr": ("orchestrator.ivr.cli", "lint and draw IVR flows"),
    "ctl": ("orchestrator.control.ctl", "call the daemon's JSON-RPC API (one call, or --watch)"),
    "recordings": ("orchestrator.recording.cli", "list, export, purge recordings; legal holds; key rotation"),
    "report": ("orchestrator.report", "queue, agent and interval reports from the event log"),
    "registrar": ("orchestrator.registrar.cli", "make HA1 values for account and trunk configuration"),
    "bench": ("orchestrator.benchrun.cli", "benchmarks with progress; JSON results and PNG plots"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: hotline COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "hotline COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from orchestrator import __version__

        print(f"hotline {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"hotline: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
