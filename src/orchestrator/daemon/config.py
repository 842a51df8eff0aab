"""The daemon's configuration: one TOML file, validated whole before anything starts.

``load_config(path)`` reads the file, checks every section and key, builds
each service's own configuration object through that service's validator
(``QueueConfig.from_dict``, ``RecordingConfig.from_mapping``,
``ControlConfig.from_toml``, the registrar's account and trunk loaders, the
IVR compiler...) and cross-checks what refers to what (dial-plan targets,
agents' queues, trunks). Any problem raises :class:`ConfigError`, whose text
names the file, the key and what is wrong::

    etc/x.toml: sip.listen[0]: not an address: '127.0.0.1:abc' (expected HOST:PORT, e.g. 127.0.0.1:5060)
    etc/x.toml: sip.listn: unknown key (did you mean 'listen'?)
    etc/x.toml: queue[1].ring_timeout: must be > 0, got 0

The sections (CONTRACT.md "Configuration"; every default is written out in
``etc/hotline.toml``): ``[daemon]``, ``[sip]``, ``[rtp]``, ``[control]``,
``[auth]``, ``[storage]``, ``[recording]``, ``[[trunk]]``, ``[[queue]]``,
``[[agent]]``, ``[[account]]``, ``[ivr]``, ``[dialplan]``.

Relative paths are relative to the daemon's working directory, as for
``hotline report --config`` and ``hotline recordings --config`` (the systemd
unit runs the daemon in its state directory).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import socket
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.acd import AgentConfig, QueueConfig
from orchestrator.calls import DialPlan, Prefix, Reject, RouteTarget, ToExtension, ToIvr, ToQueue, ToTrunk, ToUri
from orchestrator.calls import Trunk as CallTrunk
from orchestrator.control.plane import ControlConfig
from orchestrator.recording.config import RecordingConfig
from orchestrator.registrar import Account, Trunk, accounts_from_config, trunks_from_config
from orchestrator.registrar.credentials import CONFIG_KEYS
from orchestrator.sip import MediaPolicy
from orchestrator.store import parse_url

__all__ = [
    "ConfigError",
    "DaemonConfig",
    "DialPlanConfig",
    "IvrSettings",
    "RtpSettings",
    "SipSettings",
    "StorageSettings",
    "config_from_mapping",
    "load_config",
    "parse_target",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
TRANSPORTS = ("udp", "tcp", "tls")
CODECS = ("PCMU", "PCMA", "opus")

# keys each table may have (the services' own keys included: they are validated by the services)
_SECTIONS = {
    "daemon": {"node", "log_level", "drain_timeout", "purge_interval"},
    "sip": {"listen", "transports", "domain", "aliases", "advertised_host", "user_agent", "ring_timeout",
            "media_timeout", "max_calls", "max_cps", "codecs", "rate_limit", "min_expires", "max_expires",
            "default_expires", "max_loop_lag", "max_queue_delay", "tls"},
    "rtp": {"address", "ports", "advertised_address", "threads"},
    "control": {"socket", "http", "queue_stats_interval"},
    "auth": {"token_file", "token"},
    "storage": {"url", "bindings", "retention_days"},
    "recording": {"dir", "format", "stereo", "sample_rate", "opus_bitrate", "key_file", "retention_days", "policy",
                  "queues", "trunks", "sample_seed", "dtmf_start", "dtmf_stop", "dtmf_pause", "dtmf_resume",
                  "analytics", "vad_mode", "chunk_size", "enabled"},
    "ivr": {"flows", "prompts", "build_prompts", "recordings", "surveys", "crm_url", "crm_method", "crm_headers",
            "music", "barge_in_grace", "always_open"},
    "dialplan": {"dids", "extensions", "prefixes", "default"},
    "trunk": {"name", "allow", "username", "password", *CONFIG_KEYS.values(), "outbound", "uri", "caller_id",
              "max_calls", "route"},
    "queue": {f for f in QueueConfig.__dataclass_fields__},
    "agent": {"id", "skills", "queues", "wrapup", "devices", "login", "username", "password", "aors",
              "display_name", *CONFIG_KEYS.values()},
    "account": {"username", "password", "aors", "display_name", *CONFIG_KEYS.values()},
}
_ARRAYS = {"trunk", "queue", "agent", "account"}
_TLS_KEYS = {"listen", "certificate", "private_key", "ca_file", "require_client_certificate"}
_ACD_AGENT_KEYS = {"id", "skills", "queues", "wrapup", "devices"}
_ACCOUNT_KEYS = {"username", "password", "aors", "display_name", *CONFIG_KEYS.values()}
_ROUTING_TRUNK_KEYS = {"uri", "caller_id", "max_calls", "route"}
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):([0-9]{1,5})$")


class ConfigError(ValueError):
    """A configuration problem: ``str()`` is ``FILE: KEY: what is wrong``."""

    def __init__(self, key: str, message: str, *, file: str | None = None) -> None:
        self.key = key
        self.message = message
        self.file = file
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.key}: " if self.key else ""
        return f"{self.file}: {where}{self.message}" if self.file else f"{where}{self.message}"

    def in_file(self, file: str) -> ConfigError:
        return ConfigError(self.key, self.message, file=file)


def _suggest(word: str, choices: Sequence[str]) -> str:
    if not choices:
        return " (none is configured)"
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(choices))})"


def _check_keys(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key}", "unknown key" + _suggest(key, list(known)))


def _from_service(where: str, exc: Exception, *, sections: Sequence[str] = ()) -> ConfigError:
    """A service validator's ValueError ("field: why" or "section.field: why") under ``where``.

    ``sections``: other top-level tables the validator reads (``[control]``'s reads ``[auth]``),
    whose keys it already names in full."""
    text = str(exc)
    m = re.match(r"^([A-Za-z_][\w.\[\]'()-]*): (.*)$", text, re.DOTALL)
    if m is None:
        return ConfigError(where, text)
    key, why = m.group(1), m.group(2)
    for section in (where.split("[", 1)[0].split(".", 1)[0], *sections):
        if key == section or key.startswith((section + ".", section + "[")):
            return ConfigError(key, why)
    return ConfigError(f"{where}.{key}" if where else key, why)


# ---------------------------------------------------------------------------------------------- values

def _str(v: Any, where: str, *, empty: bool = False) -> str:
    if not isinstance(v, str) or (not empty and not v):
        raise ConfigError(where, f"must be a {'string' if empty else 'non-empty string'}, got {v!r}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(where, f"must be true or false, got {v!r}")
    return v


def _number(v: Any, where: str, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(where, f"must be a number, got {v!r}")
    if positive and v <= 0:
        raise ConfigError(where, f"must be > 0, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(where, f"must be >= {minimum:g}, got {v!r}")
    return float(v)


def _int(v: Any, where: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(where, f"must be an integer, got {v!r}")
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "" if minimum is None else str(minimum)
        hi = "" if maximum is None else str(maximum)
        raise ConfigError(where, f"must be in {lo}..{hi}, got {v!r}")
    return v


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise ConfigError(where, f"must be a list, got {v!r}")
    return v


def _table(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ConfigError(where, f"must be a table, got {v!r}")
    return v


def _host(v: Any, where: str) -> str:
    text = _str(v, where)
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", text):
            raise ConfigError(where, f"not an IP address or host name: {text!r}") from None
    return text.strip("[]")


def parse_host_port(v: Any, where: str) -> tuple[str, int]:
    """``"127.0.0.1:5060"`` / ``"[::1]:5060"`` -> (host, port); ConfigError otherwise."""
    if not isinstance(v, str):
        raise ConfigError(where, f"must be a string HOST:PORT, got {v!r}")
    m = _HOST_PORT.match(v)
    if m is None or not 0 <= int(m.group(2)) <= 65535:
        raise ConfigError(where, f"not an address: {v!r} (expected HOST:PORT, e.g. 127.0.0.1:5060)")
    host = m.group(1).strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(where, f"not an address: {v!r} (the host must be an IP address)") from None
    return host, int(m.group(2))


def _path(v: Any, where: str) -> Path:
    return Path(_str(v, where))


# ---------------------------------------------------------------------------------------------- targets

def parse_target(text: Any, where: str) -> RouteTarget:
    """A dial-plan target: ``ivr:FLOW``, ``queue:NAME``, ``extension:USER``, ``trunk:NAME:NUMBER``,
    ``uri:sip:...``, ``reject:CODE``."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(where, f"not a target: {text!r} (ivr:FLOW, queue:NAME, extension:USER, "
                                 "trunk:NAME:NUMBER, uri:SIP-URI or reject:CODE)")
    kind, _, rest = text.partition(":")
    try:
        if kind == "ivr" and rest:
            return ToIvr(rest)
        if kind == "queue" and rest:
            return ToQueue(rest)
        if kind == "extension" and rest:
            return ToExtension(rest)
        if kind == "trunk":
            name, _, number = rest.partition(":")
            if name and number:
                return ToTrunk(name, number)
        if kind == "uri" and rest:
            return ToUri(rest)
        if kind == "reject":
            code = int(rest) if rest.isdigit() else -1
            return Reject(code)
    except ValueError as exc:
        raise ConfigError(where, f"{text!r}: {exc}") from None
    raise ConfigError(where, f"not a target: {text!r} (ivr:FLOW, queue:NAME, extension:USER, "
                             "trunk:NAME:NUMBER, uri:SIP-URI or reject:CODE)")


# ---------------------------------------------------------------------------------------------- settings

@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    listen: tuple[str, int]
    certificate: Path
    private_key: Path
    ca_file: Path | None = None
    require_client_certificate: bool = False


@dataclass(frozen=True, kw_only=True)
class SipSettings:
    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 5060),)
    transports: tuple[str, ...] = ("udp", "tcp")
    domain: str = "127.0.0.1"
    aliases: tuple[str, ...] = ()
    advertised_host: str | None = None
    user_agent: str = "Hotline"
    ring_timeout: float = 60.0
    media_timeout: float = 60.0
    max_calls: int | None = None
    max_cps: float | None = None
    codecs: tuple[str, ...] = CODECS
    rate_limit: bool = True
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_loop_lag: float | None = 0.25
    max_queue_delay: float | None = 0.3
    tls: TlsSettings | None = None

    @property
    def domains(self) -> frozenset[str]:
        """Every host the registrar serves: the domain, its aliases and the listen addresses."""
        hosts = {self.domain, *self.aliases, *(h for h, _ in self.listen)}
        if self.advertised_host:
            hosts.add(self.advertised_host)
        return frozenset(hosts)


@dataclass(frozen=True, kw_only=True)
class RtpSettings:
    address: str = "127.0.0.1"
    ports: tuple[int, int] = (20000, 29999)
    advertised_address: str | None = None
    threads: int = 0


@dataclass(frozen=True, kw_only=True)
class StorageSettings:
    url: str = "sqlite:///var/hotline.db"
    bindings: Path | None = Path("var/bindings.db")
    retention_days: float = 0.0


@dataclass(frozen=True, kw_only=True)
class IvrSettings:
    flows: Path | None = Path("ivr")
    prompts: Path | None = None
    build_prompts: bool = False
    recordings: Path | None = Path("var/voicemail")
    surveys: Mapping[str, str] = field(default_factory=dict)
    crm_url: str | None = None
    crm_method: str = "GET"
    crm_headers: Mapping[str, str] = field(default_factory=dict)
    music: Mapping[str, str] = field(default_factory=dict)
    barge_in_grace: float = 1.0
    always_open: bool = False


@dataclass(frozen=True, kw_only=True)
class DialPlanConfig:
    dids: Mapping[str, RouteTarget] = field(default_factory=dict)
    extensions: str | None = r"[0-9]{3,6}"
    prefixes: tuple[Prefix, ...] = ()
    default: RouteTarget = Reject(404)
    trunk_defaults: Mapping[str, RouteTarget] = field(default_factory=dict)

    def build(self) -> DialPlan:
        return DialPlan(dids=self.dids, trunk_defaults=self.trunk_defaults, extensions=self.extensions,
                        prefixes=self.prefixes, default=self.default)


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """The whole configuration, validated. ``source`` is where it was read from."""

    source: str = "<config>"
    node: str
    log_level: str = "info"
    drain_timeout: float = 30.0
    purge_interval: float = 86400.0
    sip: SipSettings
    rtp: RtpSettings
    control: ControlConfig
    storage: StorageSettings
    recording: RecordingConfig | None
    trunks: tuple[Trunk, ...]
    call_trunks: tuple[CallTrunk, ...]
    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentConfig, ...]
    logins: Mapping[str, str]
    accounts: tuple[Account, ...]
    ivr: IvrSettings
    dialplan: DialPlanConfig
    flows: Any = None  # the compiled FlowSet (validated at load)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def realm(self) -> str:
        return self.sip.domain

    def media_policy(self) -> MediaPolicy:
        return MediaPolicy(codecs=self.sip.codecs, telephone_event=True)


# ---------------------------------------------------------------------------------------------- sections

def _daemon(t: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"node": socket.gethostname() or "hotline"}
    if "node" in t:
        node = _str(t["node"], "daemon.node")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", node):
            raise ConfigError("daemon.node", f"must be 1-64 letters, digits, '_', '.' or '-', got {node!r}")
        out["node"] = node
    elif not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", out["node"]):
        out["node"] = "hotline"
    if "log_level" in t:
        level = _str(t["log_level"], "daemon.log_level").lower()
        if level not in LOG_LEVELS:
            raise ConfigError("daemon.log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {t['log_level']!r}")
        out["log_level"] = level
    if "drain_timeout" in t:
        out["drain_timeout"] = _number(t["drain_timeout"], "daemon.drain_timeout", minimum=0)
    if "purge_interval" in t:
        out["purge_interval"] = _number(t["purge_interval"], "daemon.purge_interval", positive=True)
    return out


def _sip(t: Mapping[str, Any]) -> SipSettings:
    kw: dict[str, Any] = {}
    if "listen" in t:
        listen = _list(t["listen"], "sip.listen")
        if not listen:
            raise ConfigError("sip.listen", "needs at least one HOST:PORT")
        kw["listen"] = tuple(parse_host_port(v, f"sip.listen[{i}]") for i, v in enumerate(listen))
        if len(set(kw["listen"])) != len(kw["listen"]):
            raise ConfigError("sip.listen", "an address is listed twice")
    if "transports" in t:
        names = []
        for i, v in enumerate(_list(t["transports"], "sip.transports")):
            name = _str(v, f"sip.transports[{i}]").lower()
            if name not in ("udp", "tcp"):
                hint = " (TLS has its own [sip.tls] table)" if name == "tls" else ""
                raise ConfigError(f"sip.transports[{i}]", f"must be udp or tcp, got {v!r}{hint}")
            names.append(name)
        if not names:
            raise ConfigError("sip.transports", "needs at least one of udp, tcp")
        kw["transports"] = tuple(dict.fromkeys(names))
    listen = kw.get("listen", SipSettings.listen)
    if "domain" in t:
        kw["domain"] = _host(t["domain"], "sip.domain")
    else:
        kw["domain"] = listen[0][0]
    if "aliases" in t:
        kw["aliases"] = tuple(_host(v, f"sip.aliases[{i}]") for i, v in enumerate(_list(t["aliases"], "sip.aliases")))
    if t.get("advertised_host"):
        kw["advertised_host"] = _host(t["advertised_host"], "sip.advertised_host")
    if "user_agent" in t:
        ua = _str(t["user_agent"], "sip.user_agent")
        if any(c in ua for c in "\r\n"):
            raise ConfigError("sip.user_agent", "must not contain line breaks")
        kw["user_agent"] = ua
    for key in ("ring_timeout",):
        if key in t:
            kw[key] = _number(t[key], f"sip.{key}", positive=True)
    if "media_timeout" in t:
        kw["media_timeout"] = _number(t["media_timeout"], "sip.media_timeout", minimum=0)
    if "max_calls" in t:
        kw["max_calls"] = _int(t["max_calls"], "sip.max_calls", minimum=1) if t["max_calls"] != 0 else None
    if "max_cps" in t:
        kw["max_cps"] = _number(t["max_cps"], "sip.max_cps", minimum=0) or None
    if "codecs" in t:
        codecs = []
        for i, v in enumerate(_list(t["codecs"], "sip.codecs")):
            name = next((c for c in CODECS if isinstance(v, str) and c.lower() == v.lower()), None)
            if name is None:
                raise ConfigError(f"sip.codecs[{i}]", f"must be one of {', '.join(CODECS)}, got {v!r}")
            codecs.append(name)
        if not codecs:
            raise ConfigError("sip.codecs", "needs at least one codec")
        kw["codecs"] = tuple(dict.fromkeys(codecs))
    if "rate_limit" in t:
        kw["rate_limit"] = _bool(t["rate_limit"], "sip.rate_limit")
    for key in ("max_loop_lag", "max_queue_delay"):
        if key in t:
            kw[key] = _number(t[key], f"sip.{key}", minimum=0) or None
    for key in ("min_expires", "max_expires", "default_expires"):
        if key in t:
            kw[key] = _int(t[key], f"sip.{key}", minimum=1, maximum=2**31 - 1)
    lo = kw.get("min_expires", SipSettings.min_expires)
    hi = kw.get("max_expires", SipSettings.max_expires)
    default = kw.get("default_expires", SipSettings.default_expires)
    if lo > hi:
        raise ConfigError("sip.min_expires", f"must not exceed sip.max_expires ({lo} > {hi})")
    if not lo <= default <= hi:
        raise ConfigError("sip.default_expires", f"must lie between min_expires and max_expires, got {default}")
    if "tls" in t:
        tls = _table(t["tls"], "sip.tls")
        _check_keys(tls, _TLS_KEYS, "sip.tls")
        for key in ("listen", "certificate", "private_key"):
            if key not in tls:
                raise ConfigError(f"sip.tls.{key}", "required when [sip.tls] is present")
        cert = _path(tls["certificate"], "sip.tls.certificate")
        key_path = _path(tls["private_key"], "sip.tls.private_key")
        for name, p in (("certificate", cert), ("private_key", key_path)):
            if not p.is_file():
                raise ConfigError(f"sip.tls.{name}", f"no such file: {str(p)!r}")
        ca = _path(tls["ca_file"], "sip.tls.ca_file") if "ca_file" in tls else None
        require = _bool(tls.get("require_client_certificate", False), "sip.tls.require_client_certificate")
        if require and ca is None:
            raise ConfigError("sip.tls.ca_file", "needed to verify client certificates")
        kw["tls"] = TlsSettings(listen=parse_host_port(tls["listen"], "sip.tls.listen"), certificate=cert,
                                private_key=key_path, ca_file=ca, require_client_certificate=require)
    return SipSettings(**kw)


def _rtp(t: Mapping[str, Any]) -> RtpSettings:
    kw: dict[str, Any] = {}
    if "address" in t:
        address = _str(t["address"], "rtp.address")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError("rtp.address", f"not an IP address: {address!r}") from None
        kw["address"] = address
    if "ports" in t:
        ports = _list(t["ports"], "rtp.ports")
        if len(ports) != 2:
            raise ConfigError("rtp.ports", f"must be [FIRST, LAST], got {ports!r}")
        lo = _int(ports[0], "rtp.ports[0]", minimum=1024, maximum=65534)
        hi = _int(ports[1], "rtp.ports[1]", minimum=1025, maximum=65535)
        if hi - lo < 3:
            raise ConfigError("rtp.ports", f"the range {lo}..{hi} holds fewer than two RTP/RTCP pairs")
        kw["ports"] = (lo, hi)
    if t.get("advertised_address"):
        kw["advertised_address"] = _host(t["advertised_address"], "rtp.advertised_address")
    if "threads" in t:
        kw["threads"] = _int(t["threads"], "rtp.threads", minimum=0, maximum=256)
    return RtpSettings(**kw)


def _storage(t: Mapping[str, Any]) -> StorageSettings:
    kw: dict[str, Any] = {}
    if "url" in t:
        try:
            parse_url(t["url"])
        except ValueError as exc:
            raise _from_service("storage", exc) from None
        kw["url"] = t["url"]
    if "bindings" in t:
        value = _str(t["bindings"], "storage.bindings", empty=True)
        kw["bindings"] = Path(value) if value else None
    if "retention_days" in t:
        kw["retention_days"] = _number(t["retention_days"], "storage.retention_days", minimum=0)
    return StorageSettings(**kw)


def _ivr(t: Mapping[str, Any]) -> IvrSettings:
    kw: dict[str, Any] = {}
    for key in ("flows", "prompts", "recordings"):
        if key in t:
            value = _str(t[key], f"ivr.{key}", empty=True)
            kw[key] = Path(value) if value else None
    if kw.get("flows") is not None and not kw["flows"].is_dir():
        raise ConfigError("ivr.flows", f"no such directory: {str(kw['flows'])!r}")
    if "flows" not in t and not Path("ivr").is_dir():
        kw["flows"] = None
    for key in ("build_prompts", "always_open"):
        if key in t:
            kw[key] = _bool(t[key], f"ivr.{key}")
    if "barge_in_grace" in t:
        kw["barge_in_grace"] = _number(t["barge_in_grace"], "ivr.barge_in_grace", minimum=0)
    if "crm_url" in t:
        kw["crm_url"] = _str(t["crm_url"], "ivr.crm_url")
    if "crm_method" in t:
        method = _str(t["crm_method"], "ivr.crm_method").upper()
        if method not in ("GET", "POST"):
            raise ConfigError("ivr.crm_method", f"must be GET or POST, got {t['crm_method']!r}")
        kw["crm_method"] = method
    for key in ("surveys", "crm_headers", "music"):
        if key in t:
            table = _table(t[key], f"ivr.{key}")
            for name, value in table.items():
                _str(value, f"ivr.{key}.{name}")
            kw[key] = dict(table)
    for name, path in kw.get("music", {}).items():
        if not Path(path).is_file():
            raise ConfigError(f"ivr.music.{name}", f"no such file: {path!r}")
    return IvrSettings(**kw)


def _dialplan(t: Mapping[str, Any]) -> DialPlanConfig:
    kw: dict[str, Any] = {}
    if "dids" in t:
        dids = _table(t["dids"], "dialplan.dids")
        kw["dids"] = {str(k): parse_target(v, f"dialplan.dids.{k}") for k, v in dids.items()}
    if "extensions" in t:
        pattern = _str(t["extensions"], "dialplan.extensions", empty=True)
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError("dialplan.extensions", f"not a regular expression: {exc}") from None
        kw["extensions"] = pattern or None
    if "prefixes" in t:
        rules = []
        for i, rule in enumerate(_list(t["prefixes"], "dialplan.prefixes")):
            where = f"dialplan.prefixes[{i}]"
            rule = _table(rule, where)
            _check_keys(rule, {"prefix", "trunk", "strip", "min_length"}, where)
            for key in ("prefix", "trunk"):
                if key not in rule:
                    raise ConfigError(f"{where}.{key}", "required")
            prefix = _str(rule["prefix"], f"{where}.prefix", empty=True)
            try:
                rules.append(Prefix(prefix, _str(rule["trunk"], f"{where}.trunk"),
                                    strip=_int(rule.get("strip", 0), f"{where}.strip", minimum=0),
                                    min_length=_int(rule.get("min_length", 1), f"{where}.min_length", minimum=0)))
            except ValueError as exc:
                if isinstance(exc, ConfigError):
                    raise
                raise _from_service(where, exc) from None
        kw["prefixes"] = tuple(rules)
    if "default" in t:
        kw["default"] = parse_target(t["default"], "dialplan.default")
    return DialPlanConfig(**kw)


def _queues(entries: list) -> tuple[QueueConfig, ...]:
    out = []
    for i, entry in enumerate(entries):
        where = f"queue[{i}]"
        entry = _table(entry, where)
        _check_keys(entry, _SECTIONS["queue"], where)
        try:
            out.append(QueueConfig.from_dict(entry))
        except ValueError as exc:
            raise _from_service(where, exc) from None
    names = [q.name for q in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"queue[{i}].name", f"queue {name!r} is configured twice")
    return tuple(out)


def _agents(entries: list, realm: str) -> tuple[tuple[AgentConfig, ...], dict[str, str], list[Account]]:
    agents, logins, accounts = [], {}, []
    for i, entry in enumerate(entries):
        where = f"agent[{i}]"
        entry = _table(entry, where)
        _check_keys(entry, _SECTIONS["agent"], where)
        try:
            agent = AgentConfig.from_dict({k: v for k, v in entry.items() if k in _ACD_AGENT_KEYS})
        except ValueError as exc:
            raise _from_service(where, exc) from None
        agents.append(agent)
        if "login" in entry:
            device = _str(entry["login"], f"{where}.login")
            if agent.devices is not None and device not in agent.devices:
                raise ConfigError(f"{where}.login", f"device {device!r} is not in devices {list(agent.devices)}")
            logins[agent.id] = device
        creds = {k: v for k, v in entry.items() if k in _ACCOUNT_KEYS}
        if creds:
            creds.setdefault("username", agent.devices[0] if agent.devices else agent.id)
            try:
                accounts += accounts_from_config([creds], realm, where=where)
            except ValueError as exc:
                raise _from_service(where, exc) from None
    ids = [a.id for a in agents]
    for i, agent_id in enumerate(ids):
        if agent_id in ids[:i]:
            raise ConfigError(f"agent[{i}].id", f"agent {agent_id!r} is configured twice")
    return tuple(agents), logins, accounts


def _trunks(entries: list, realm: str) -> tuple[tuple[Trunk, ...], tuple[CallTrunk, ...], dict[str, RouteTarget]]:
    for i, entry in enumerate(entries):
        _check_keys(_table(entry, f"trunk[{i}]"), _SECTIONS["trunk"], f"trunk[{i}]")
    try:
        trunks = trunks_from_config(entries, realm, ignore_keys=_ROUTING_TRUNK_KEYS)
    except ValueError as exc:
        text = str(exc)
        m = re.match(r"^trunk\[(\d+)\](?: \([^)]*\))?(\.\S+)?: (.*)$", text, re.DOTALL)
        if m:
            key, why = f"trunk[{m.group(1)}]{m.group(2) or ''}", m.group(3)
            field_ = re.match(r"^([a-z_]+): (.*)$", why, re.DOTALL)  # the trunk's own "allow: ..." names its key
            if m.group(2) is None and field_ is not None and field_.group(1) in _SECTIONS["trunk"]:
                key, why = f"{key}.{field_.group(1)}", field_.group(2)
            raise ConfigError(key, why) from None
        raise ConfigError("trunk", text) from None
    calls, routes = [], {}
    for i, (entry, trunk) in enumerate(zip(entries, trunks, strict=True)):
        where = f"trunk[{i}]"
        if "route" in entry:
            routes[trunk.name] = parse_target(entry["route"], f"{where}.route")
        if "uri" not in entry:
            continue
        out = entry.get("outbound") or {}
        username = out.get("username") if isinstance(out, Mapping) else None
        password = out.get("password") if isinstance(out, Mapping) else None
        sources = frozenset(str(net).split("/", 1)[0] for net in trunk.networks if net.num_addresses == 1)
        try:
            calls.append(CallTrunk(name=trunk.name, uri=_str(entry["uri"], f"{where}.uri"), sources=sources,
                                   username=username if password else None, password=password,
                                   caller_id=_str(entry["caller_id"], f"{where}.caller_id")
                                   if "caller_id" in entry else None,
                                   max_calls=_int(entry["max_calls"], f"{where}.max_calls", minimum=1)
                                   if "max_calls" in entry else None))
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise _from_service(where, exc) from None
    return tuple(trunks), tuple(calls), routes


def _recording(t: Mapping[str, Any] | None) -> RecordingConfig | None:
    if t is None:
        return None
    section = dict(t)
    if not _bool(section.pop("enabled", True), "recording.enabled"):
        return None
    try:
        config = RecordingConfig.from_mapping(section)
    except ValueError as exc:
        raise _from_service("recording", exc) from None
    if config.key_file is not None and not config.key_file.exists():
        raise ConfigError("recording.key_file", f"no such file: {str(config.key_file)!r} (make one with: "
                                                f"hotline recordings --key-file {config.key_file} rotate-key)")
    return config


# ---------------------------------------------------------------------------------------------- the whole

def config_from_mapping(doc: Mapping[str, Any], *, source: str = "<config>",
                        load_flows: Callable[[Path], Any] | None = None) -> DaemonConfig:
    """Validate a parsed TOML document (see the module docstring); ConfigError names the key."""
    try:
        return _build(doc, source, load_flows)
    except ConfigError as exc:
        raise exc.in_file(source) from None


def load_config(path: str | Path, *, load_flows: Callable[[Path], Any] | None = None) -> DaemonConfig:
    """Read and validate ``path``; ConfigError (``FILE: KEY: why``) on any problem."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("", "no such file", file=source) from None
    except OSError as exc:
        raise ConfigError("", f"cannot read: {exc.strerror}", file=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}", file=source) from None
    return config_from_mapping(doc, source=source, load_flows=load_flows)


def _build(doc: Mapping[str, Any], source: str, load_flows: Callable[[Path], Any] | None) -> DaemonConfig:
    for key, value in doc.items():
        if key not in _SECTIONS:
            raise ConfigError(key, "unknown section" + _suggest(key, list(_SECTIONS)))
        if key in _ARRAYS:
            if not isinstance(value, list):
                raise ConfigError(key, f"must be an array of tables ([[{key}]]), not a single table")
            for i, entry in enumerate(value):
                _table(entry, f"{key}[{i}]")
        else:
            _check_keys(_table(value, key), _SECTIONS[key], key)

    def section(name: str) -> Mapping[str, Any]:
        return doc.get(name, {})

    daemon = _daemon(section("daemon"))
    sip = _sip(section("sip"))
    rtp = _rtp(section("rtp"))
    try:
        control = ControlConfig.from_toml(section("control"), section("auth"))
    except ValueError as exc:
        raise _from_service("control", exc, sections=("auth",)) from None
    storage = _storage(section("storage"))
    recording = _recording(doc.get("recording"))
    trunks, call_trunks, trunk_routes = _trunks(list(doc.get("trunk", [])), sip.domain)
    queues = _queues(list(doc.get("queue", [])))
    agents, logins, agent_accounts = _agents(list(doc.get("agent", [])), sip.domain)
    extra_accounts: list[Account] = []
    for i, entry in enumerate(doc.get("account", [])):
        _check_keys(entry, _SECTIONS["account"], f"account[{i}]")
        try:
            extra_accounts += accounts_from_config([entry], sip.domain, where=f"account[{i}]")
        except ValueError as exc:
            raise _from_service(f"account[{i}]", exc) from None
    accounts = agent_accounts + extra_accounts + [t.inbound for t in trunks if t.inbound is not None]
    seen: dict[str, int] = {}
    for i, account in enumerate(accounts):
        if account.username in seen:
            raise ConfigError("account", f"username {account.username!r} is configured twice "
                                         "(agents, accounts and trunks share one namespace)")
        seen[account.username] = i
    ivr = _ivr(section("ivr"))
    dialplan = _dialplan(section("dialplan"))
    dialplan = DialPlanConfig(dids=dialplan.dids, extensions=dialplan.extensions, prefixes=dialplan.prefixes,
                              default=dialplan.default, trunk_defaults=trunk_routes)

    # cross references
    queue_names = [q.name for q in queues]
    trunk_names = [t.name for t in trunks]
    for i, q in enumerate(queues):
        dests = [("on_timeout", q.on_timeout), ("on_full", q.on_full), ("on_empty", q.on_empty),
                 *((f"escalation[{n}]", s.destination) for n, s in enumerate(q.escalation) if s.destination)]
        for key, dest in dests:
            if dest.kind == "queue" and dest.target not in queue_names:
                raise ConfigError(f"queue[{i}].{key}", f"sends calls to queue {dest.target!r}, which is not configured"
                                  + _suggest(dest.target or "", queue_names))
    for i, agent in enumerate(agents):
        for name in agent.queues:
            if name not in queue_names:
                raise ConfigError(f"agent[{i}].queues", f"no queue named {name!r}" + _suggest(name, queue_names))
    flows = None
    if ivr.flows is not None:
        loader = load_flows or _load_flows
        try:
            flows = loader(ivr.flows)
        except ValueError as exc:
            raise ConfigError("ivr.flows", str(exc)) from None
    flow_names = sorted(flows) if flows is not None else []

    def check_target(target: RouteTarget, where: str) -> None:
        if isinstance(target, ToQueue) and target.queue not in queue_names:
            raise ConfigError(where, f"no queue named {target.queue!r}" + _suggest(target.queue, queue_names))
        if isinstance(target, ToIvr) and target.flow not in flow_names:
            raise ConfigError(where, f"no IVR flow named {target.flow!r}" + (
                _suggest(target.flow, flow_names) if flow_names else " (no [ivr] flows directory)"))
        if isinstance(target, ToTrunk) and target.trunk not in trunk_names:
            raise ConfigError(where, f"no trunk named {target.trunk!r}" + _suggest(target.trunk, trunk_names))

    for did, target in dialplan.dids.items():
        check_target(target, f"dialplan.dids.{did}")
    check_target(dialplan.default, "dialplan.default")
    for i, rule in enumerate(dialplan.prefixes):
        if rule.trunk not in {t.name for t in call_trunks}:
            raise ConfigError(f"dialplan.prefixes[{i}].trunk",
                              f"no trunk named {rule.trunk!r} with a uri to call out to"
                              + _suggest(rule.trunk, [t.name for t in call_trunks]))
    for name, target in trunk_routes.items():
        check_target(target, f"trunk[{trunk_names.index(name)}].route")
    for queue, flow in ivr.surveys.items():
        if flow not in flow_names:
            raise ConfigError(f"ivr.surveys.{queue}", f"no IVR flow named {flow!r}")
    return DaemonConfig(source=source, **daemon, sip=sip, rtp=rtp, control=control, storage=storage,
                        recording=recording, trunks=trunks, call_trunks=call_trunks, queues=queues, agents=agents,
                        logins=logins, accounts=tuple(accounts), ivr=ivr, dialplan=dialplan, flows=flows,
                        raw=doc)


def _load_flows(directory: Path) -> Any:
    from orchestrator.ivr.compiler import FlowError, load_flows

    try:
        return load_flows(directory)
    except FlowError as exc:
        problems = [str(p) for p in exc.problems]
        raise ValueError(f"{len(problems)} problem(s) in the flows: " + "; ".join(problems[:5])) from None
