"""Registration changes the location service emits (the facts the event log
and the ACD consume).

Two levels, so each consumer reads only what it needs:

* per binding (one contact of an AOR): :class:`BindingAdded`,
  :class:`BindingRefreshed`, :class:`BindingRemoved` (``reason``:
  ``unregistered`` - Expires 0 or ``Contact: *``; ``expired``; ``evicted`` -
  pushed out by the per-AOR contact limit);
* per device (the AOR as a whole): :class:`DeviceRegistered` when an AOR goes
  from no binding to one, :class:`DeviceUnregistered` when its last binding
  goes. These map one to one onto the ACD's ``device_registered(device, now)``
  and ``device_unregistered(device, now)``; an agent's device is reachable
  exactly between the two.

Every event carries the :class:`~orchestrator.registrar.location.Binding`
involved - AOR, contact, transport, source address, user agent, expiry - and
``at``, the location service's ``now``. ``to_dict()`` gives the plain form an
event log stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from .location import Binding

__all__ = [
    "BindingAdded",
    "BindingRefreshed",
    "BindingRemoved",
    "DeviceRegistered",
    "DeviceUnregistered",
    "RegistrationEvent",
    "RemovalReason",
]

RemovalReason = Literal["unregistered", "expired", "evicted"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistrationEvent:
    """Base: ``aor`` is the canonical address-of-record (``sip:user@domain``)."""

    type: ClassVar[str] = ""
    at: float
    aor: str
    binding: Binding

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "at": self.at,
            "aor": self.aor,
            "binding": self.binding.to_dict(),
        }
        for name in ("reason", "restored"):
            if hasattr(self, name):
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class BindingAdded(RegistrationEvent):
    """A new contact for the AOR."""

    type: ClassVar[str] = "registration.added"


@dataclass(frozen=True, kw_only=True, slots=True)
class BindingRefreshed(RegistrationEvent):
    """An existing contact re-registered (new expiry; perhaps a new Call-ID after a reboot)."""

    type: ClassVar[str] = "registration.refreshed"


@dataclass(frozen=True, kw_only=True, slots=True)
class BindingRemoved(RegistrationEvent):
    """A contact went away; ``binding`` is its last state."""

    type: ClassVar[str] = "registration.removed"
    reason: RemovalReason


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceRegistered(RegistrationEvent):
    """The AOR became reachable; ``binding`` is the contact that made it so.
    ``restored``: reloaded from the store at start, not a new REGISTER."""

    type: ClassVar[str] = "device.registered"
    restored: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceUnregistered(RegistrationEvent):
    """The AOR's last binding went away; ``binding`` is that last binding."""

    type: ClassVar[str] = "device.unregistered"
    reason: RemovalReason
