"""TLS settings for SIPS (RFC 3261 26.2, RFC 5630): certificate and key from
the configuration, TLS 1.2 or later, and the contexts both sides need.

Contexts are built once, when the transport is created (reading the files is
start-up work, never done on a call's path).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsConfig"]


@dataclass(frozen=True, kw_only=True)
class TlsConfig:
    """``certificate`` and ``private_key`` (PEM) identify us as a server.

    ``ca_file`` lists the authorities whose certificates we accept when *we*
    connect out (None: the system store). ``verify_peer`` False disables that
    check (never do this outside a test). ``require_client_certificate``
    asks connecting clients for a certificate signed by ``ca_file`` (mutual TLS
    with trunks).
    """

    certificate: Path
    private_key: Path
    ca_file: Path | None = None
    verify_peer: bool = True
    require_client_certificate: bool = False

    def __post_init__(self) -> None:
        for name in ("certificate", "private_key"):
            value = getattr(self, name)
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{name}: must be a path to a PEM file")
            object.__setattr__(self, name, Path(value))
        if self.ca_file is not None:
            object.__setattr__(self, "ca_file", Path(self.ca_file))
        if self.require_client_certificate and self.ca_file is None:
            raise ValueError("ca_file: needed to verify client certificates")

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.certificate, self.private_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"certificate/private_key: cannot load {self.certificate}: {exc}") from None
        if self.require_client_certificate:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca_file)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file is not None:
            try:
                ctx.load_verify_locations(self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"ca_file: cannot load {self.ca_file}: {exc}") from None
        if not self.verify_peer:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        # Present our certificate too, for peers that ask (mutual TLS).
        ctx.load_cert_chain(self.certificate, self.private_key)
        return ctx
