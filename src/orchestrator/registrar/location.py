"""The location service: bindings from addresses-of-record to contacts, with
the binding rules of RFC 3261 section 10.3 (steps 6 to 8).

Pure: time comes in as ``now`` (POSIX seconds, so bindings written to a store
keep their meaning across a restart) and every change comes back as a list of
:mod:`~orchestrator.registrar.events` records.

Rules implemented here (the SIP side - parsing, authentication, expiry
negotiation, 423 - is :mod:`~orchestrator.registrar.registrar`):

* a contact matches an existing binding when its URI is equivalent
  (RFC 3261 19.1.4) or when both carry the same ``+sip.instance`` (and
  ``reg-id``), as RFC 5626 section 6 and RFC 5627 do for a UA whose address
  changed; several Contact values of one request that match each other
  count once (the last wins);
* an existing binding with a different Call-ID is updated (or removed for
  expires 0); with the same Call-ID only if the CSeq is higher - otherwise the
  whole request fails (500) and nothing changes;
* ``Contact: *`` (expires 0) removes every binding, under the same Call-ID /
  CSeq rule;
* a request is atomic: its changes are committed to the store and to memory
  only when all of them succeed; a store failure is a 500 and changes nothing;
* at most ``max_contacts`` bindings per AOR: beyond that the request is
  refused (503, as Kamailio and OpenSIPS answer) or, with
  ``on_limit="evict-oldest"``, the least recently refreshed other bindings
  are removed;
* :meth:`LocationService.lookup` returns only unexpired bindings, by q-value
  (absent = 1.0), most recently refreshed first among equals;
  :meth:`LocationService.expire` removes what expired and emits the events.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from orchestrator.sip import Address, NameAddr, SipParseError, SipUri, Uri, parse_name_addr, parse_uri
from orchestrator.sip.fields import unquote

from .events import (
    BindingAdded,
    BindingRefreshed,
    BindingRemoved,
    DeviceRegistered,
    DeviceUnregistered,
    RegistrationEvent,
    RemovalReason,
)
from .store import BindingStore, MemoryBindingStore

__all__ = [
    "Binding",
    "LocationService",
    "LocationStatistics",
    "Locator",
    "RegistrationRejected",
    "aor_key",
]


def aor_key(aor: str | SipUri) -> str:
    """Canonical address-of-record: ``sip:user@host`` (RFC 3261 10.3 step 5).

    URI parameters are removed and escapes decoded (the RFC's canonical form);
    beyond the RFC, the scheme is folded to ``sip`` and the port dropped, so a
    softphone that registers ``sips:9001@example.com:5061`` is the same device
    (the same account) as ``sip:9001@example.com``, as Kamailio's
    ``user@domain`` index treats it. The host is case-insensitive; the user
    part is not. Raises ValueError for anything else.
    """
    if isinstance(aor, str):
        return _text_key(aor)
    return _uri_key(aor, aor)


@functools.lru_cache(maxsize=65536)
def _text_key(text: str) -> str:  # every REGISTER and lookup names its AOR as text: parse it once
    try:
        uri = parse_uri(text)
    except SipParseError as exc:
        raise ValueError(f"aor: {exc.reason}") from None
    return _uri_key(uri, text)


def _uri_key(uri: object, shown: object) -> str:
    if not isinstance(uri, SipUri):
        raise ValueError(f"aor: must be a sip: or sips: URI, not {str(shown)[:60]!r}")
    if uri.user is None:
        raise ValueError(f"aor: {str(shown)[:60]!r} has no user part")
    return SipUri(uri.host.lower(), user=uri.user).canonical()


@dataclass(frozen=True, kw_only=True, slots=True)
class Binding:
    """One contact of an AOR.

    ``contact`` is the Contact value as the UA sent it, minus its ``expires``
    parameter (so ``+sip.instance`` and other feature tags stay). ``source``
    is where the REGISTER came from (the address to reach the UA through a
    NAT, and its transport); ``expires_at`` is absolute, in the service's
    clock (POSIX seconds). ``path`` holds the REGISTER's Path values (RFC
    3327): the proxies between us and the UA, to put as Route headers on
    requests sent to this contact.
    """

    aor: str
    contact: NameAddr
    expires_at: float
    call_id: str
    cseq: int
    registered_at: float
    updated_at: float
    q: float | None = None
    source: Address | None = None
    user_agent: str | None = None
    username: str | None = None
    path: tuple[str, ...] = ()

    @property
    def uri(self) -> Uri:
        return self.contact.uri

    @property
    def transport(self) -> str | None:
        """Transport the registration arrived over (UDP, TCP, TLS), if known."""
        return self.source.transport if self.source is not None else None

    @property
    def instance(self) -> str | None:
        """The ``+sip.instance`` feature tag (RFC 5626), unquoted."""
        return _instance(self.contact)

    @property
    def reg_id(self) -> str | None:
        return self.contact.param("reg-id")

    def expires_in(self, now: float) -> int:
        """Whole seconds left (what the 200 OK's ``expires`` parameter says)."""
        return max(0, math.ceil(self.expires_at - now - 1e-6))

    def to_dict(self) -> dict[str, Any]:
        return {
            "aor": self.aor,
            "contact": str(self.contact),
            "expires_at": self.expires_at,
            "call_id": self.call_id,
            "cseq": self.cseq,
            "registered_at": self.registered_at,
            "updated_at": self.updated_at,
            "q": self.q,
            "source": None
            if self.source is None
            else {"host": self.source.host, "port": self.source.port, "transport": self.source.transport},
            "user_agent": self.user_agent,
            "username": self.username,
            "path": list(self.path),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Binding:
        """Inverse of :meth:`to_dict` (ValueError on a damaged record)."""
        try:
            source = data.get("source")
            return cls(
                aor=str(data["aor"]),
                contact=parse_name_addr(str(data["contact"]), "Contact"),
                expires_at=float(data["expires_at"]),
                call_id=str(data["call_id"]),
                cseq=int(data["cseq"]),
                registered_at=float(data["registered_at"]),
                updated_at=float(data["updated_at"]),
                q=None if data.get("q") is None else float(data["q"]),
                source=None
                if source is None
                else Address(str(source["host"]), int(source["port"]), str(source["transport"])),
                user_agent=data.get("user_agent"),
                username=data.get("username"),
                path=tuple(str(p) for p in data.get("path") or ()),
            )
        except (KeyError, TypeError, SipParseError) as exc:
            raise ValueError(f"binding record: {exc}") from None


def _instance(contact: NameAddr) -> str | None:
    value = contact.param("+sip.instance")
    if not value:
        return None
    try:
        return unquote(value)
    except SipParseError:
        return value


def _same_binding(contact: NameAddr, binding: Binding) -> bool:
    instance = _instance(contact)
    if instance is not None and instance == binding.instance and contact.param("reg-id") == binding.reg_id:
        return True
    return contact.uri.equivalent(binding.contact.uri)


class RegistrationRejected(Exception):
    """A request the location service refused as a whole (nothing changed)."""

    def __init__(self, status_code: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class LocationStatistics:
    aors: int
    bindings: int
    added: int
    refreshed: int
    removed: int
    expired: int
    evicted: int
    rejected_out_of_order: int
    rejected_over_limit: int
    store_errors: int
    pending_expiries: int


class Locator:
    """What call routing needs: the live contacts of an AOR (see :meth:`LocationService.lookup`)."""

    def lookup(self, aor: str | SipUri, now: float) -> list[Binding]:
        raise NotImplementedError


class LocationService(Locator):
    """Bindings per AOR, expiry, and the events of every change."""

    def __init__(
        self,
        *,
        store: BindingStore | None = None,
        max_contacts: int = 10,
        on_limit: Literal["reject", "evict-oldest"] = "reject",
    ) -> None:
        if not isinstance(max_contacts, int) or max_contacts < 1:
            raise ValueError("max_contacts: must be an int >= 1")
        if on_limit not in ("reject", "evict-oldest"):
            raise ValueError("on_limit: must be 'reject' or 'evict-oldest'")
        self.store: BindingStore = store if store is not None else MemoryBindingStore()
        self.max_contacts = max_contacts
        self.on_limit = on_limit
        self._aors: dict[str, tuple[Binding, ...]] = {}
        self._heap: list[tuple[float, int, str, Binding]] = []
        self._seq = itertools.count()
        self._count = 0
        self._stats = dict.fromkeys(
            (
                "added",
                "refreshed",
                "removed",
                "expired",
                "evicted",
                "out_of_order",
                "over_limit",
                "store_errors",
            ),
            0,
        )

    # -- reading ------------------------------------------------------------------------------
    def lookup(self, aor: str | SipUri, now: float) -> list[Binding]:
        """Live (unexpired) bindings of ``aor``: highest q first, then most recently refreshed."""
        key = aor_key(aor)
        live = [b for b in self._aors.get(key, ()) if b.expires_at > now]
        live.sort(key=lambda b: (-(1.0 if b.q is None else b.q), -b.updated_at))
        return live

    def is_registered(self, aor: str | SipUri, now: float) -> bool:
        return any(b.expires_at > now for b in self._aors.get(aor_key(aor), ()))

    def bindings(self, aor: str) -> tuple[Binding, ...]:
        """Every stored binding of a canonical AOR, expired or not (for inspection)."""
        return self._aors.get(aor, ())

    def aors(self) -> list[str]:
        return list(self._aors)

    def next_expiry(self) -> float | None:
        """When :meth:`expire` next has something to do (None: no binding)."""
        heap = self._heap
        while heap and not self._current(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def statistics(self) -> LocationStatistics:
        s = self._stats
        return LocationStatistics(
            aors=len(self._aors),
            bindings=self._count,
            added=s["added"],
            refreshed=s["refreshed"],
            removed=s["removed"],
            expired=s["expired"],
            evicted=s["evicted"],
            rejected_out_of_order=s["out_of_order"],
            rejected_over_limit=s["over_limit"],
            store_errors=s["store_errors"],
            pending_expiries=len(self._heap),
        )

    # -- changing -----------------------------------------------------------------------------
    def register(
        self,
        aor: str,
        contacts: Sequence[tuple[NameAddr, int]],
        *,
        call_id: str,
        cseq: int,
        now: float,
        source: Address | None = None,
        user_agent: str | None = None,
        username: str | None = None,
        path: Sequence[str] = (),
    ) -> tuple[tuple[Binding, ...], list[RegistrationEvent]]:
        """Apply one REGISTER's contacts (``expires`` already negotiated; 0 removes).

        Returns the AOR's bindings afterwards and the events; raises
        :class:`RegistrationRejected` (500 out of order or store failure, 503
        over the limit) with nothing changed.
        """
        key = aor_key(aor)
        path = tuple(path)
        unique: list[tuple[NameAddr, int]] = []
        for contact, expires in contacts:
            if not isinstance(expires, int) or expires < 0:
                raise ValueError("contacts: expires must be an int >= 0")
            contact = NameAddr(
                contact.uri,
                contact.display_name,
                tuple(p for p in contact.params if p[0].lower() != "expires"),
            )
            unique = [(c, e) for c, e in unique if not _contacts_match(c, contact)]
            unique.append((contact, expires))

        current = self._aors.get(key, ())
        live = [b for b in current if b.expires_at > now]
        expired = [b for b in current if b.expires_at <= now]
        # Slots of the AOR after this request, beside what each slot held before it (None: new).
        slots: list[Binding | None] = list(live)
        origin: list[Binding | None] = list(live)
        changes: list[tuple[str, Binding]] = []
        for contact, expires in unique:
            index = next(
                (i for i, b in enumerate(slots) if b is not None and _same_binding(contact, b)), None
            )
            old = origin[index] if index is not None else None
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                self._stats["out_of_order"] += 1
                raise RegistrationRejected(
                    500,
                    "Server Internal Error",
                    f"CSeq {cseq} is not above {old.cseq} for a binding of this Call-ID",
                )
            if index is None:
                if expires:
                    binding = Binding(
                        aor=key,
                        contact=contact,
                        expires_at=now + expires,
                        call_id=call_id,
                        cseq=cseq,
                        registered_at=now,
                        updated_at=now,
                        q=_q_value(contact),
                        source=source,
                        user_agent=user_agent,
                        username=username,
                        path=path,
                    )
                    slots.append(binding)
                    origin.append(None)
                    changes.append(("added", binding))
                continue
            held = slots[index]
            assert held is not None
            if expires == 0:
                slots[index] = None
                changes.append(("removed", held))
            else:
                binding = replace(
                    held,
                    contact=contact,
                    expires_at=now + expires,
                    call_id=call_id,
                    cseq=cseq,
                    updated_at=now,
                    q=_q_value(contact),
                    source=source,
                    user_agent=user_agent,
                    username=username,
                    path=path,
                )
                slots[index] = binding
                changes.append(("refreshed" if origin[index] is not None else "added", binding))
        # A slot changed twice in one request reports only its last change.
        last_change = {id(b): k for k, b in changes}
        changes = [(k, b) for k, b in changes if last_change.get(id(b)) == k]
        after = [b for b in slots if b is not None]
        changed = {id(b) for b in after if all(b is not o for o in origin)}

        evicted: list[Binding] = []
        if len(after) > self.max_contacts:
            spare = sorted((b for b in after if id(b) not in changed), key=lambda b: b.updated_at)
            excess = len(after) - self.max_contacts
            if self.on_limit == "reject" or excess > len(spare):
                self._stats["over_limit"] += 1
                raise RegistrationRejected(
                    503,
                    "Too Many Registered Contacts",
                    f"at most {self.max_contacts} contacts per address-of-record",
                )
            evicted = spare[:excess]
            after = [b for b in after if all(b is not e for e in evicted)]

        self._commit(key, tuple(after))
        events: list[RegistrationEvent] = []
        for b in expired:
            self._stats["expired"] += 1
            events.append(BindingRemoved(at=now, aor=key, binding=b, reason="expired"))
        for b in evicted:
            self._stats["evicted"] += 1
            events.append(BindingRemoved(at=now, aor=key, binding=b, reason="evicted"))
        for kind, b in changes:
            self._stats[kind] += 1
            if kind == "added":
                events.append(BindingAdded(at=now, aor=key, binding=b))
            elif kind == "refreshed":
                events.append(BindingRefreshed(at=now, aor=key, binding=b))
            else:
                events.append(BindingRemoved(at=now, aor=key, binding=b, reason="unregistered"))
        self._device_events(key, current, after, events, now, "unregistered" if live else "expired")
        return tuple(after), events

    def remove_all(
        self, aor: str, *, call_id: str, cseq: int, now: float
    ) -> tuple[tuple[Binding, ...], list[RegistrationEvent]]:
        """``Contact: *`` with Expires 0 (RFC 3261 10.3 step 6 and 7)."""
        key = aor_key(aor)
        current = self._aors.get(key, ())
        for b in current:
            if b.expires_at > now and b.call_id == call_id and cseq <= b.cseq:
                self._stats["out_of_order"] += 1
                raise RegistrationRejected(
                    500,
                    "Server Internal Error",
                    f"CSeq {cseq} is not above {b.cseq} for a binding of this Call-ID",
                )
        if not current:
            return (), []
        self._commit(key, ())
        events: list[RegistrationEvent] = []
        for b in current:
            reason: RemovalReason = "expired" if b.expires_at <= now else "unregistered"
            self._stats["expired" if reason == "expired" else "removed"] += 1
            events.append(BindingRemoved(at=now, aor=key, binding=b, reason=reason))
        self._device_events(key, current, [], events, now, "unregistered")
        return (), events

    def expire(self, now: float) -> list[RegistrationEvent]:
        """Remove every binding whose time has come; the events of that."""
        heap = self._heap
        due: dict[str, list[Binding]] = {}
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._current(entry):
                due.setdefault(entry[2], []).append(entry[3])
        events: list[RegistrationEvent] = []
        for key, gone in due.items():
            current = self._aors.get(key, ())
            after = tuple(b for b in current if all(b is not g for g in gone))
            try:
                self._commit(key, after)
            except RegistrationRejected:  # the store failed: forget them anyway, they are dead
                self._apply(key, after)
            for b in gone:
                self._stats["expired"] += 1
                events.append(BindingRemoved(at=now, aor=key, binding=b, reason="expired"))
            self._device_events(key, current, after, events, now, "expired")
        return events

    def restore(self, now: float) -> list[RegistrationEvent]:
        """Load the store's bindings (at start); emit DeviceRegistered(restored=True) per live AOR.

        Expired bindings are dropped from the store; damaged records are skipped and counted.
        """
        by_aor: dict[str, list[Binding]] = {}
        for binding in self.store.load():
            by_aor.setdefault(binding.aor, []).append(binding)
        events: list[RegistrationEvent] = []
        for key, bindings in by_aor.items():
            live = tuple(b for b in bindings if b.expires_at > now)
            if len(live) != len(bindings):
                try:
                    self.store.save(key, live)
                except Exception:  # noqa: BLE001 - any store error is counted, never fatal here
                    self._stats["store_errors"] += 1
            if live:
                self._apply(key, live)
                best = self.lookup(key, now)[0]
                events.append(DeviceRegistered(at=now, aor=key, binding=best, restored=True))
        return events

    # -- internals ----------------------------------------------------------------------------
    def _current(self, entry: tuple[float, int, str, Binding]) -> bool:
        at, _, key, binding = entry
        return binding.expires_at == at and any(b is binding for b in self._aors.get(key, ()))

    def _commit(self, key: str, after: tuple[Binding, ...]) -> None:
        try:
            self.store.save(key, after)
        except Exception as exc:
            self._stats["store_errors"] += 1
            raise RegistrationRejected(500, "Server Internal Error", f"binding store failed: {exc}") from exc
        self._apply(key, after)

    def _apply(self, key: str, after: tuple[Binding, ...]) -> None:
        before = self._aors.get(key, ())
        self._count += len(after) - len(before)
        if after:
            self._aors[key] = after
        else:
            self._aors.pop(key, None)
        old = {id(b) for b in before}
        for b in after:
            if id(b) not in old:
                heapq.heappush(self._heap, (b.expires_at, next(self._seq), key, b))
        if len(self._heap) > 2 * self._count + 1024:  # refreshes leave dead entries behind: compact
            self._heap = [e for e in self._heap if self._current(e)]
            heapq.heapify(self._heap)

    def _device_events(
        self,
        key: str,
        before: Iterable[Binding],
        after: Sequence[Binding],
        events: list[RegistrationEvent],
        now: float,
        reason: RemovalReason,
    ) -> None:
        before = tuple(before)
        if not before and after:
            best = min(after, key=lambda b: (-(1.0 if b.q is None else b.q), -b.updated_at))
            events.append(DeviceRegistered(at=now, aor=key, binding=best))
        elif before and not after:
            last = max(before, key=lambda b: b.updated_at)
            events.append(DeviceUnregistered(at=now, aor=key, binding=last, reason=reason))


def _contacts_match(a: NameAddr, b: NameAddr) -> bool:
    ia, ib = _instance(a), _instance(b)
    if ia is not None and ia == ib and a.param("reg-id") == b.param("reg-id"):
        return True
    return a.uri.equivalent(b.uri)


def _q_value(contact: NameAddr) -> float | None:
    value = contact.param("q")
    if value is None:
        return None
    return float(value)
