"""Real softphones register with digest authentication against our registrar
over UDP on 127.0.0.1 (RECIPES.md sections 2 and 3).

The SIP side is the project's own stack: ``orchestrator.transport``'s
SipEndpoint on a UdpTransport (ephemeral port, never 5060) with the
RegistrarService as its request handler. Each test checks what the peer did
through the location service and its events: the binding appears with the
peer's contact, it is refreshed (the registrar shortens the interval to a
few seconds so refreshes come quickly), and unregistering removes it.

What each peer supports, as these tests show:

* baresip 1.0.0 (libre 1.1.0): MD5 only. Offered SHA-256 at all, it gives
  up ("Function not implemented") instead of skipping that challenge, so the
  registrar offers MD5 alone to its User-Agent (DigestConfig's default
  ``user_agent_algorithms``); the test without that quirk proves the failure.
  It takes a new challenge for every refresh and unregisters when it quits.
* linphonec 5.1.65: SHA-256 (and MD5 when only MD5 is offered); it reuses a
  nonce with a rising nonce-count, answers ``stale=true`` with new
  credentials, honours a shortened interval, and unregisters on
  ``unregister``.

Every process is started by us and killed by its PID in a ``finally``;
every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from orchestrator.registrar import (
    Account,
    DigestAuth,
    DigestConfig,
    Directory,
    Registrar,
    RegistrarConfig,
    RegistrarService,
)

pytestmark = [pytest.mark.peers, pytest.mark.slow]

PEERS = Path(os.environ.get("PEERS", Path(__file__).resolve().parents[3].parent / "shared" / "peers"))
REALM = "hotline.test"
PASSWORD = "s3cret"


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    if not PEERS.is_dir():
        pytest.skip(f"peer configurations not found at {PEERS}")


def free_port(kind: int = socket.SOCK_DGRAM, *, also_next: bool = False) -> int:
    """A free port on 127.0.0.1 (UDP and TCP); with also_next, port + 1 is free too
    (baresip listens for SIP over TLS on its SIP port + 1)."""
    for _ in range(200):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, kind)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            for p in [port, port + 1] if also_next else [port]:
                for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    t = socket.socket(socket.AF_INET, k)
                    socks.append(t)
                    if (p, k) != (port, kind):
                        t.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


class Registry:
    """Our registrar on a UDP endpoint, with its events recorded."""

    def __init__(
        self,
        users: list[str],
        *,
        max_expires: int = 4,
        nonce_lifetime: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        quirks: bool = True,
    ) -> None:
        directory = Directory(Account.from_password(u, REALM, PASSWORD) for u in users)
        extra = {} if quirks else {"user_agent_algorithms": ()}
        self.auth = DigestAuth(
            directory,
            DigestConfig(
                realm=REALM,
                secret=os.urandom(32),
                algorithms=algorithms,
                nonce_lifetime=nonce_lifetime,
                **extra,
            ),
        )
        self.registrar = Registrar(
            RegistrarConfig(
                domains=frozenset({"127.0.0.1", REALM}),
                min_expires=2,
                max_expires=max_expires,
                default_expires=max_expires,
            ),
            self.auth,
        )
        self.events: list = []
        self.service = RegistrarService(self.registrar, sink=self.events.append)
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> None:
        from orchestrator.transport import EndpointConfig, SipEndpoint, UdpTransport

        endpoint = SipEndpoint([UdpTransport("127.0.0.1", 0)], config=EndpointConfig(rate_limit=None))
        await nursery.start(endpoint.run)
        await nursery.start(self.service.run)
        endpoint.handler = self.service.handler()
        self.port = endpoint.local_address("UDP").port
        assert self.port != 5060

    def of(self, kind: str, aor: str | None = None) -> list:
        return [e for e in self.events if e.type == kind and (aor is None or e.aor == aor)]

    async def wait_for(self, what: Callable[[], object], seconds: float, why: str) -> None:
        with trio.move_on_after(seconds):
            while not what():
                await trio.sleep(0.05)
            return
        pytest.fail(f"waited {seconds} s for {why}; events: {[(e.type, e.aor) for e in self.events]}")


async def exited(process: subprocess.Popen, seconds: float) -> bool:
    """Wait (without blocking Trio: the registrar keeps answering) for a process to exit."""
    with trio.move_on_after(seconds):
        while process.poll() is None:
            await trio.sleep(0.05)
    return process.poll() is not None


async def stop(process: subprocess.Popen) -> None:
    """Kill one process we started, by its PID: SIGTERM, then SIGKILL after 3 s."""
    if process.poll() is None:
        process.terminate()
        if not await exited(process, 3):
            process.kill()
            process.wait(timeout=5)


# -- baresip -----------------------------------------------------------------------------------------
def baresip_dir(tmp: Path, user: str, registrar_port: int) -> tuple[Path, int, int]:
    """Render $PEERS/baresip/mkcfg.sh's headless config for a registering account."""
    sip, ctrl = free_port(also_next=True), free_port(socket.SOCK_STREAM)
    rtp = free_port()
    cfg = tmp / f"baresip-{user}"
    subprocess.run(
        [
            "sh",
            str(PEERS / "baresip" / "mkcfg.sh"),
            str(cfg),
            user,
            str(sip),
            str(ctrl),
            str(rtp),
            str(rtp + 1),
            str(PEERS / "audio" / "welcome_30s.wav"),
        ],
        check=True,
        timeout=10,
    )
    (cfg / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass={PASSWORD};regint=4;audio_codecs=pcmu\n"
    )
    return cfg, sip, ctrl


def start_baresip(cfg: Path) -> subprocess.Popen:
    with (cfg / "log").open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            ["baresip", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )


async def baresip_ctrl(port: int, command: str) -> None:
    """One ctrl_tcp command (netstring JSON, as $PEERS/baresip/bctl.py sends it)."""
    import json

    body = json.dumps({"command": command, "params": "", "token": "t"}).encode()
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(str(len(body)).encode() + b":" + body + b",")
            await stream.receive_some(4096)


def test_baresip_registers_with_md5_refreshes_and_unregisters_on_quit(tmp_path):
    need("baresip")
    registry = Registry(["alice"])
    aor = "sip:alice@127.0.0.1"

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await registry.start(nursery)
            cfg, sip_port, ctrl = baresip_dir(tmp_path, "alice", registry.port)
            peer = start_baresip(cfg)
            try:
                await registry.wait_for(lambda: registry.service.is_registered(aor), 15, "baresip's binding")
                (b,) = registry.service.lookup(aor)
                assert (b.uri.host, b.uri.port, b.uri.user.startswith("alice")) == (
                    "127.0.0.1",
                    sip_port,
                    True,
                )
                assert (b.source.host, b.source.port, b.transport) == ("127.0.0.1", sip_port, "UDP")
                assert b.user_agent.startswith("baresip v1.0.0") and b.username == "alice"
                assert b.instance and b.instance.startswith("<urn:uuid:")
                first_cseq, first_expiry = b.cseq, b.expires_at
                await registry.wait_for(
                    lambda: len(registry.of("registration.refreshed")) >= 2, 15, "two refreshes"
                )
                (b,) = registry.service.lookup(aor)
                assert b.cseq > first_cseq and b.expires_at > first_expiry
                assert len(registry.of("device.registered")) == 1  # refreshes are not new devices
                await baresip_ctrl(ctrl, "quit")
                await registry.wait_for(lambda: registry.of("device.unregistered"), 10, "the unregistration")
                (gone,) = registry.of("device.unregistered")
                assert gone.reason == "unregistered" and gone.aor == aor
                assert not registry.service.is_registered(aor)
                assert await exited(peer, 10)
            finally:
                await stop(peer)
            digest = registry.auth.statistics(0)
            assert set(digest.accepted_by_algorithm) == {"MD5"} and digest.forbidden == 0
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_baresip_1_0_cannot_answer_when_sha256_is_offered(tmp_path):
    """Without the User-Agent quirk baresip 1.0.0 never registers (documents why the quirk exists)."""
    need("baresip")
    registry = Registry(["alice"], quirks=False)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await registry.start(nursery)
            cfg, _, _ = baresip_dir(tmp_path, "alice", registry.port)
            peer = start_baresip(cfg)
            try:
                await registry.wait_for(
                    lambda: "Function not implemented" in (cfg / "log").read_text(),
                    10,
                    "baresip to give up on the SHA-256 challenge",
                )
            finally:
                await stop(peer)
            digest = registry.auth.statistics(0)
            assert digest.challenges >= 1 and digest.accepted == 0
            assert registry.events == []
            nursery.cancel_scope.cancel()

    trio.run(main)


# -- linphone ----------------------------------------------------------------------------------------
def linphone_home(tmp: Path, user: str) -> tuple[Path, int, dict[str, str]]:
    """$PEERS/linphone/linphonerc.pristine with our ports, in a private HOME (RECIPES.md 3, fixes 1-3)."""
    home = tmp / f"linphone-{user}"
    (home / ".local" / "share" / "linphone").mkdir(parents=True)
    sip = free_port()
    rtp = free_port()
    rc = (PEERS / "linphone" / "linphonerc.pristine").read_text()
    rc = (
        rc.replace("sip_port=5066", f"sip_port={sip}")
        .replace("contact=sip:carol@127.0.0.1:5066", f"contact=sip:{user}@127.0.0.1:{sip}")
        .replace("audio_rtp_port=10040-10059", f"audio_rtp_port={rtp}-{rtp + 1}")
    )
    assert f"sip_port={sip}" in rc
    (home / "linphonerc").write_text(rc)
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CONFIG_HOME=str(home / ".config"),
    )
    return home, sip, env


class Linphonec:
    """linphonec driven through its stdin (no linphonecsh daemon: that one is per Unix user)."""

    def __init__(self, tmp: Path, user: str) -> None:
        self.home, self.sip_port, env = linphone_home(tmp, user)
        with (self.home / "log").open("w") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                ["linphonec", "-c", str(self.home / "linphonerc")],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
            )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    async def aclose(self, *, graceful: bool = True) -> None:
        """``quit`` (which unregisters) then SIGTERM; after a refused registration linphonec
        does not act on ``quit`` for seconds, so such tests skip it (graceful=False)."""
        if graceful and self.process.poll() is None:
            try:
                self.send("quit")
            except OSError:
                pass
            await exited(self.process, 5)
        await stop(self.process)
        if self.process.stdin is not None:
            self.process.stdin.close()


@pytest.mark.parametrize("algorithms, expected", [(("SHA-256", "MD5"), "SHA-256"), (("MD5",), "MD5")])
def test_linphone_registers_refreshes_through_stale_nonces_and_unregisters(tmp_path, algorithms, expected):
    need("linphonec")
    # A 3 s nonce lifetime: linphone's nonce reuse runs into stale=true between refreshes.
    registry = Registry(["carol"], algorithms=algorithms, nonce_lifetime=3)
    aor = "sip:carol@127.0.0.1"

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await registry.start(nursery)
            phone = Linphonec(tmp_path, "carol")
            try:
                await trio.sleep(1.5)  # the core starts its listening point
                phone.send(f"register sip:carol@127.0.0.1 sip:127.0.0.1:{registry.port} {PASSWORD}")
                await registry.wait_for(lambda: registry.service.is_registered(aor), 15, "linphone's binding")
                (b,) = registry.service.lookup(aor)
                assert (str(b.uri), b.transport) == (
                    f"sip:carol@127.0.0.1:{phone.sip_port};transport=udp",
                    "UDP",
                )
                assert b.user_agent.startswith("Linphonec/") and b.username == "carol"
                assert b.expires_at - registry.service.clock() <= 4  # 3600 asked, 4 granted
                await registry.wait_for(
                    lambda: (
                        registry.auth.statistics(0).stale >= 1
                        and len(registry.of("registration.refreshed")) >= 2
                    ),
                    20,
                    "a stale nonce answered and two refreshes",
                )
                assert registry.of("device.unregistered") == []  # reachable throughout
                phone.send("unregister")
                await registry.wait_for(lambda: registry.of("device.unregistered"), 10, "the unregistration")
                assert registry.of("device.unregistered")[0].reason == "unregistered"
                assert not registry.service.is_registered(aor)
            finally:
                await phone.aclose()
            digest = registry.auth.statistics(0)
            assert set(digest.accepted_by_algorithm) == {expected} and digest.forbidden == 0
            assert digest.nonces.accepted > digest.challenges - digest.stale  # some nonces were reused
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_linphone_with_a_wrong_password_is_refused_and_counted(tmp_path):
    need("linphonec")
    registry = Registry(["carol"])

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await registry.start(nursery)
            phone = Linphonec(tmp_path, "carol")
            try:
                await trio.sleep(1.5)
                phone.send(f"register sip:carol@127.0.0.1 sip:127.0.0.1:{registry.port} wrong-password")
                await registry.wait_for(lambda: registry.auth.statistics(0).forbidden >= 1, 10, "a 403")
                await trio.sleep(1)
            finally:
                await phone.aclose(graceful=False)
            assert registry.events == [] and registry.registrar.statistics(0).responses.get(200) is None
            assert registry.auth.failures.failures("127.0.0.1") >= 1
            nursery.cancel_scope.cancel()

    trio.run(main)
