"""Registrar throughput in the pure core, each compared side by side in one run.

The baseline of each group is what any UAS does with the same datagrams
without a registrar: parse, build the response (RFC 3261 8.2.6) and
serialize it. The ratio is therefore the registrar's own cost on top of the
SIP core's.

* ``registrar-register``: a batch of 500 authenticated REGISTERs (500
  different users, each answering its own challenge, the shape linphone
  sends) through ``Registrar.handle_register``: digest verification (SHA-256
  or MD5), the replay table, the location service, events, the 200 with
  Contact/Expires/Date. The baseline answers the same datagrams with a bare
  200 echoing their Contact.
* ``registrar-challenge``: unauthenticated REGISTERs answered 401 with two
  fresh challenges (what a scanner flood costs us) against a bare 401.
"""

from __future__ import annotations

import pytest

from orchestrator.registrar import (
    Account,
    DigestAuth,
    DigestConfig,
    Directory,
    Registrar,
    RegistrarConfig,
)
from orchestrator.sip import Address, DigestServer, authorization_for, make_response, parse_datagram

REALM = "hotline.example"
SECRET = b"benchmark-secret-0123456789abcdef"
T0 = 1_700_000_000.0
USERS = [f"{9000 + i}" for i in range(500)]
SOURCE = Address("192.0.2.10", 5062, "UDP")
_DIRECTORY = Directory(Account.from_password(u, REALM, f"pw-{u}") for u in USERS)


def register_bytes(user: str, *, cseq: int, auth: str | None = None) -> bytes:
    lines = [
        f"REGISTER sip:{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK.{user}x{cseq};rport",
        f"From: <sip:{user}@{REALM}>;tag=t{user}",
        f"To: sip:{user}@{REALM}",
        f"CSeq: {cseq} REGISTER",
        f"Call-ID: reg-{user}",
        "Max-Forwards: 70",
        "Supported: replaces, outbound, gruu",
        f'Contact: <sip:{user}@192.0.2.10:5062;transport=udp>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-{int(user):012d}>"',
        "Expires: 3600",
        "User-Agent: Linphonec/5.1.65",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


def signed_batch(algorithm: str) -> list[bytes]:
    server = DigestServer(realm=REALM, secret=SECRET)
    out = []
    for user in USERS:
        challenge = next(c for c in server.challenges(T0) if c.get("algorithm") == algorithm)
        creds = authorization_for(
            challenge,
            method="REGISTER",
            uri=f"sip:{REALM}",
            username=user,
            password=f"pw-{user}",
            cnonce=f"cn{user}",
        )
        out.append(register_bytes(user, cseq=2, auth=str(creds)))
    return out


def fresh_registrar() -> Registrar:
    auth = DigestAuth(_DIRECTORY, DigestConfig(realm=REALM, secret=SECRET))
    return Registrar(RegistrarConfig(domains=frozenset({REALM})), auth)


def registrar_pass(registrar: Registrar, batch: list[bytes]) -> list[int]:
    codes = []
    for data in batch:
        outcome = registrar.handle_register(parse_datagram(data), SOURCE, T0 + 1)
        outcome.response.serialize()
        codes.append(outcome.status_code)
    return codes


def baseline_pass(batch: list[bytes], status: int) -> list[int]:
    codes = []
    for data in batch:
        request = parse_datagram(data)
        headers = [("Contact", v) for v in request.headers.get_all("Contact")] if status == 200 else []
        response = make_response(request, status, to_tag="benchtag", headers=headers)
        response.serialize()
        codes.append(response.status_code)
    return codes


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_register_batch_registrar(benchmark, algorithm):
    benchmark.group = "registrar-register"
    benchmark.extra_info["messages"] = len(USERS)
    benchmark.extra_info["algorithm"] = algorithm
    batch = signed_batch(algorithm)
    registrars = []

    def setup():
        registrars.append(fresh_registrar())  # empty location and replay table each round
        return (registrars[-1], batch), {}

    codes = benchmark.pedantic(registrar_pass, setup=setup, rounds=15, iterations=1, warmup_rounds=1)
    assert codes == [200] * len(USERS)
    registrar = registrars[-1]
    assert registrar.location.statistics().bindings == len(USERS)
    assert registrar.auth.statistics(T0).accepted_by_algorithm == {algorithm: len(USERS)}


def test_register_batch_parse_and_200(benchmark):
    benchmark.group = "registrar-register"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["note"] = (
        "parse + make_response(200, Contact echoed) + serialize of the same 500 datagrams"
    )
    batch = signed_batch("SHA-256")
    codes = benchmark.pedantic(baseline_pass, args=(batch, 200), rounds=15, iterations=1, warmup_rounds=1)
    assert codes == [200] * len(USERS)


UNAUTHENTICATED = [register_bytes(u, cseq=1) for u in USERS]


def test_challenge_batch_registrar(benchmark):
    benchmark.group = "registrar-challenge"
    benchmark.extra_info["messages"] = len(USERS)
    registrar = fresh_registrar()
    codes = benchmark.pedantic(
        registrar_pass, args=(registrar, UNAUTHENTICATED), rounds=15, iterations=1, warmup_rounds=1
    )
    assert codes == [401] * len(USERS)
    assert registrar.location.statistics().bindings == 0


def test_challenge_batch_parse_and_401(benchmark):
    benchmark.group = "registrar-challenge"
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["note"] = "parse + make_response(401, no challenge) + serialize"
    codes = benchmark.pedantic(
        baseline_pass, args=(UNAUTHENTICATED, 401), rounds=15, iterations=1, warmup_rounds=1
    )
    assert codes == [401] * len(USERS)
