"""Who may authenticate: accounts stored as digest HA1 values, never passwords.

RFC 3261 22.4 and RFC 7616 3.4.2: the server needs only
``HA1 = H(username ":" realm ":" password)`` to verify a digest response, so
that is all an :class:`Account` keeps. HA1 depends on the hash algorithm
(RFC 8760 adds SHA-256 and SHA-512/256 to MD5), so an account holds one HA1
per algorithm it can answer; an algorithm without an HA1 simply fails for that
account. HA1 also depends on the realm: changing the realm means computing the
HA1s again.

A configuration may give a ``password`` instead (convenient for a demo): it is
hashed into HA1s when the configuration is loaded (:func:`accounts_from_config`)
and the text is not kept anywhere in this module. Python strings cannot be
wiped from memory, so production configurations should carry HA1s made once
by the operator with :func:`make_ha1s` (``python -m orchestrator.registrar ha1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.sip import ALGORITHMS, compute_ha1

__all__ = [
    "CONFIG_KEYS",
    "HA1_ALGORITHMS",
    "Account",
    "Directory",
    "accounts_from_config",
    "canonical_algorithm",
    "make_ha1s",
]

#: The base algorithms an HA1 can be stored for (the ``-sess`` variants reuse the base HA1).
HA1_ALGORITHMS: tuple[str, ...] = tuple(a for a in ALGORITHMS if not a.upper().endswith("-SESS"))
_HEX_LENGTH = {"MD5": 32, "SHA-256": 64, "SHA-512-256": 64}
#: Configuration key of each algorithm's HA1 (TOML-friendly: no quotes needed).
CONFIG_KEYS: dict[str, str] = {"MD5": "ha1_md5", "SHA-256": "ha1_sha256", "SHA-512-256": "ha1_sha512_256"}
_HEX_RE = re.compile(r"[0-9a-f]+")
_USERNAME_RE = re.compile(r"[^\x00-\x1f\x7f\"\\:]+")  # no controls, quotes or colon (the A1 separator)


def canonical_algorithm(algorithm: str) -> str:
    """``md5`` -> ``MD5``, ``sha-256-sess`` -> ``SHA-256`` (the HA1 an algorithm needs)."""
    base = algorithm[:-5] if algorithm.upper().endswith("-SESS") else algorithm
    for name in HA1_ALGORITHMS:
        if name.upper() == base.upper():
            return name
    raise ValueError(f"algorithm: {algorithm!r} is not one of {', '.join(HA1_ALGORITHMS)}")


def make_ha1s(
    username: str, realm: str, password: str, algorithms: Iterable[str] = ("SHA-256", "MD5")
) -> dict[str, str]:
    """The HA1 of ``username`` in ``realm`` for each algorithm: what the configuration stores."""
    if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
        raise ValueError("username: must be non-empty, without control characters, quotes or ':'")
    if not isinstance(realm, str) or not realm or '"' in realm:
        raise ValueError("realm: must be non-empty and contain no '\"'")
    if not isinstance(password, str) or not password:
        raise ValueError("password: must be a non-empty string")
    out: dict[str, str] = {}
    for algorithm in algorithms:
        name = canonical_algorithm(algorithm)
        out[name] = compute_ha1(username, realm, password, name)
    if not out:
        raise ValueError("algorithms: need at least one")
    return out


@dataclass(frozen=True)
class Account:
    """A user (agent device, softphone) or a trunk that authenticates with digest.

    ``ha1`` maps a base algorithm name (``MD5``, ``SHA-256``, ``SHA-512-256``)
    to the lowercase hex HA1 for this account's realm. ``aors`` are the
    addresses-of-record (``sip:user@domain``) this account may register besides
    its own ``sip:<username>@<domain>``; ``kind`` says whether it is a user or
    a trunk's inbound credentials.
    """

    username: str
    ha1: Mapping[str, str]
    aors: tuple[str, ...] = ()
    kind: Literal["user", "trunk"] = "user"
    display_name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not _USERNAME_RE.fullmatch(self.username):
            raise ValueError("username: must be non-empty, without control characters, quotes or ':'")
        if not isinstance(self.ha1, Mapping) or not self.ha1:
            raise ValueError(f"ha1: account {self.username!r} needs at least one HA1")
        clean: dict[str, str] = {}
        for algorithm, value in self.ha1.items():
            name = canonical_algorithm(algorithm)
            if not isinstance(value, str):
                raise ValueError(f"ha1: {name} HA1 of {self.username!r} must be a hex string")
            text = value.strip().lower()
            if len(text) != _HEX_LENGTH[name] or not _HEX_RE.fullmatch(text):
                raise ValueError(
                    f"ha1: {name} HA1 of {self.username!r} must be {_HEX_LENGTH[name]} hex digits"
                )
            clean[name] = text
        object.__setattr__(self, "ha1", clean)
        if isinstance(self.aors, str):
            raise ValueError("aors: must be a list of URIs, not a string")
        object.__setattr__(self, "aors", tuple(self.aors))
        if self.kind not in ("user", "trunk"):
            raise ValueError(f"kind: must be 'user' or 'trunk', not {self.kind!r}")

    @classmethod
    def from_password(
        cls,
        username: str,
        realm: str,
        password: str,
        *,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        aors: Iterable[str] = (),
        kind: Literal["user", "trunk"] = "user",
    ) -> Account:
        """Hash ``password`` into HA1s now; the account keeps only the HA1s."""
        return cls(username, make_ha1s(username, realm, password, algorithms), tuple(aors), kind)

    def ha1_for(self, algorithm: str) -> str | None:
        try:
            return self.ha1.get(canonical_algorithm(algorithm))
        except ValueError:
            return None

    def __repr__(self) -> str:  # never print secrets, even hashed ones
        algorithms = sorted(self.ha1)
        return f"Account({self.username!r}, kind={self.kind!r}, algorithms={algorithms}, aors={self.aors!r})"


class Directory:
    """Accounts by username (users and trunks share one namespace: a username is unique)."""

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._accounts: dict[str, Account] = {}
        for account in accounts:
            self.add(account)

    def add(self, account: Account) -> None:
        if not isinstance(account, Account):
            raise ValueError("account: must be an Account")
        if account.username in self._accounts:
            raise ValueError(f"username: {account.username!r} is configured twice")
        self._accounts[account.username] = account

    def replace(self, account: Account) -> None:
        """Add or update (a configuration reload, a password change)."""
        if not isinstance(account, Account):
            raise ValueError("account: must be an Account")
        self._accounts[account.username] = account

    def remove(self, username: str) -> bool:
        return self._accounts.pop(username, None) is not None

    def get(self, username: str) -> Account | None:
        return self._accounts.get(username)

    def __contains__(self, username: object) -> bool:
        return username in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._accounts.values())


def accounts_from_config(
    entries: Iterable[Mapping[str, Any]],
    realm: str,
    *,
    algorithms: Iterable[str] = ("SHA-256", "MD5"),
    kind: Literal["user", "trunk"] = "user",
    where: str = "account",
    ignore_keys: Iterable[str] = (),
) -> list[Account]:
    """Accounts from configuration tables (TOML ``[[agent]]``-style dicts).

    Each entry has ``username`` and either HA1s (``ha1_sha256``, ``ha1_md5``,
    ``ha1_sha512_256``) or a ``password``, which is hashed here for
    ``algorithms`` and dropped. Optional ``aors``: extra AORs it may register.
    ``ignore_keys`` are keys other subsystems read from the same table (an
    ``[[agent]]`` also has the ACD's ``skills``...); any other unknown key is
    an error, so a typo is not silently ignored. Errors name the entry:
    ``account[3]: ha1: MD5 HA1 of '9001' must be 32 hex digits``.
    """
    algorithms = tuple(algorithms)
    known = {"username", "password", "aors", "display_name", *CONFIG_KEYS.values(), *ignore_keys}
    out = []
    for index, entry in enumerate(entries):
        label = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{label}: must be a table")
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"{label}: unknown keys {', '.join(sorted(unknown))}")
        username = entry.get("username")
        if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
            raise ValueError(f"{label}.username: must be a non-empty string without ':' or quotes")
        ha1 = {alg: entry[key] for alg, key in CONFIG_KEYS.items() if key in entry}
        password = entry.get("password")
        if password is not None and ha1:
            raise ValueError(f"{label}: give either password or HA1 values, not both")
        aors = entry.get("aors", ())
        if isinstance(aors, str) or not all(isinstance(a, str) for a in aors):
            raise ValueError(f"{label}.aors: must be a list of URI strings")
        try:
            if password is not None:
                if not isinstance(password, str) or not password:
                    raise ValueError("password: must be a non-empty string")
                account = Account.from_password(
                    username, realm, password, algorithms=algorithms, aors=aors, kind=kind
                )
            elif ha1:
                account = Account(username, ha1, tuple(aors), kind)
            else:
                raise ValueError(f"needs a password or at least one of {', '.join(CONFIG_KEYS.values())}")
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        display = entry.get("display_name")
        if display is not None:
            object.__setattr__(account, "display_name", str(display))
        out.append(account)
    return out
