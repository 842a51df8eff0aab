"""``hotline registrar ha1``: make the HA1 values an account's configuration stores.

The operator runs it once per account (and again if the realm changes); the
password is read from the terminal without echo (twice, to confirm) or, when
stdin is not a terminal, from its first line - never from the command line,
where it would land in the shell history and the process list. It prints TOML
keys to paste into the account's table::

    $ hotline registrar ha1 --realm hotline.example 9001
    Password for 9001@hotline.example:
    Again:
    username = "9001"
    ha1_sha256 = "..."
    ha1_md5 = "..."
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from .credentials import CONFIG_KEYS, HA1_ALGORITHMS, make_ha1s

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline registrar", description="Registrar tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    ha1 = sub.add_parser(
        "ha1", help="print the HA1 values of an account (password read from stdin or the tty)"
    )
    ha1.add_argument("username")
    ha1.add_argument("--realm", required=True, help="the registrar's digest realm")
    ha1.add_argument(
        "--algorithm",
        action="append",
        choices=HA1_ALGORITHMS,
        dest="algorithms",
        help="repeat for several; default: SHA-256 and MD5",
    )
    return parser


def _read_password(username: str, realm: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {username}@{realm}: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("password: the two entries differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    algorithms = args.algorithms or ["SHA-256", "MD5"]
    try:
        password = _read_password(args.username, args.realm)
        ha1s = make_ha1s(args.username, args.realm, password, algorithms)
    except ValueError as exc:
        print(f"hotline registrar: {exc}", file=sys.stderr)
        return 1
    print(f'username = "{args.username}"')
    for algorithm, value in ha1s.items():
        print(f'{CONFIG_KEYS[algorithm]} = "{value}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
