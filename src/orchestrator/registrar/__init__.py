"""orchestrator.registrar: the SIP registrar, the location service, digest
authentication of users and trunks.

Pure cores (time passed in as ``now``), as the SIP core is:

* :class:`LocationService` - bindings per address-of-record with the rules of
  RFC 3261 10.3, expiry, a persistence hook (:class:`SqliteBindingStore`), and
  :mod:`~orchestrator.registrar.events` (``device.registered`` /
  ``device.unregistered`` for the ACD) for every change;
* :class:`Registrar` - REGISTER processing (RFC 3261 10.3) with digest
  authentication (RFC 8760: SHA-256 and MD5 challenges, expiring nonces,
  ``stale=true``, replay protection) against HA1s only
  (:class:`Account`, :class:`Directory`, :func:`make_ha1s`);
* :class:`Authenticator` - who sent an INVITE: a trunk by source address, a
  user or trunk by digest (407), with uniform answers and per-source failure
  counting;
* :class:`Trunk`, :class:`TrunkTable`, :func:`authorize_retry` - trunk
  allowlists and answering a trunk's 401/407 on outbound requests.

And the Trio driver, :class:`RegistrarService`, that plugs into the SIP
endpoint and expires bindings on time.

A minimal set-up::

    directory = Directory(accounts_from_config(config["agent"], realm="hotline.example"))
    auth = DigestAuth(directory, DigestConfig(realm="hotline.example", secret=os.urandom(32)))
    registrar = Registrar(RegistrarConfig(domains={"hotline.example", "127.0.0.1"}), auth,
                          LocationService(store=SqliteBindingStore("var/bindings.db")))
    service = RegistrarService(registrar, sink=acd_events)
    await nursery.start(service.run)
    endpoint.handler = service.handler(b2bua.handle)
    authenticator = Authenticator(auth, TrunkTable(trunks))
"""

from .auth import AuthDecision, Authenticator, Identity
from .credentials import CONFIG_KEYS, HA1_ALGORITHMS, Account, Directory, accounts_from_config, make_ha1s
from .digestauth import DigestAuth, DigestConfig, DigestStatistics, Verdict
from .events import (
    BindingAdded,
    BindingRefreshed,
    BindingRemoved,
    DeviceRegistered,
    DeviceUnregistered,
    RegistrationEvent,
)
from .guards import FailureTracker, NonceCounts
from .location import Binding, LocationService, LocationStatistics, Locator, RegistrationRejected, aor_key
from .registrar import RegisterOutcome, Registrar, RegistrarConfig, RegistrarStatistics
from .service import ChannelSink, EventSink, RegistrarService, ServiceStatistics
from .store import BindingStore, MemoryBindingStore, SqliteBindingStore
from .trunks import (
    OutboundCredentials,
    Trunk,
    TrunkTable,
    authorize_retry,
    best_challenge,
    trunks_from_config,
)

__all__ = [
    "CONFIG_KEYS",
    "HA1_ALGORITHMS",
    "Account",
    "AuthDecision",
    "Authenticator",
    "Binding",
    "BindingAdded",
    "BindingRefreshed",
    "BindingRemoved",
    "BindingStore",
    "ChannelSink",
    "DeviceRegistered",
    "DeviceUnregistered",
    "DigestAuth",
    "DigestConfig",
    "DigestStatistics",
    "Directory",
    "EventSink",
    "FailureTracker",
    "Identity",
    "LocationService",
    "LocationStatistics",
    "Locator",
    "MemoryBindingStore",
    "NonceCounts",
    "OutboundCredentials",
    "RegisterOutcome",
    "Registrar",
    "RegistrarConfig",
    "RegistrarService",
    "RegistrarStatistics",
    "RegistrationEvent",
    "RegistrationRejected",
    "ServiceStatistics",
    "SqliteBindingStore",
    "Trunk",
    "TrunkTable",
    "Verdict",
    "accounts_from_config",
    "aor_key",
    "authorize_retry",
    "best_challenge",
    "make_ha1s",
    "trunks_from_config",
]
