"""Keys bound to an org: a token is accepted only with a key of the org it names.

Where each org signs its own customers in, org A's backend holds a signing
key; with it, it must not be able to read org B's customers. A refusal says
nothing about org B: not whether it exists, nor whether it has keys.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from gateway.access.end_user_tokens import EndUser, EndUserTokens
from gateway.access.token_keys import org_keys_from_file
from gateway.cli import main as cli_main
from gateway.config import Settings
from gateway.db.token_keys import StoredTokenKey, insert_token_key, list_token_keys, revoke_token_key

ORG_A = 100737
ORG_B = 200001
ORG_C = 300001  # exists, has no keys
NOWHERE = 424242  # no such org
TOM = 565039505
SECRET_A = b"org A's HS256 secret, at least 32 bytes long"
DEPLOYMENT_SECRET = b"the deployment-wide secret, 32 bytes or more"
TTL = 0.3
QUERY = f'{{ pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ entityId mainPoints }} }}'
BAD_SIGNATURE = "the end-user token's signature does not verify"


@pytest.fixture(scope="module")
def rsa_a() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_b() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(private: Any) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def jwks(*members: tuple[Any, str]) -> str:
    keys = []
    for private, kid in members:
        public = private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            keys.append({**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)), "kid": kid, "alg": "RS256"})
        else:
            keys.append({**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public)), "kid": kid, "alg": "ES256"})
    return json.dumps({"keys": keys})


def write(tmp_path: Path, name: str, content: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def token(key: Any, org: Any, algorithm: str = "HS256", *, kid: str | None = None, **extra: Any) -> str:
    now = int(time.time())
    claims = {"org": org, "sub": str(TOM), "iat": now, "exp": now + 300, **extra}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """What PyJWT would refuse to make: alg none, a public key used as an HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


async def add_keys(connection: Any, org_id: int, kind: str, path: str, **options: Any) -> list[StoredTokenKey]:
    keys = org_keys_from_file(kind, path, **options)
    for key in keys:
        await insert_token_key(connection, org_id, key, "test")
    return keys


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, api_key_cache_ttl=TTL)


@pytest.fixture
async def orgs(gateway: Any, tmp_path: Path, rsa_a: Any, ec_b: Any) -> dict[str, list[StoredTokenKey]]:
    """Orgs A, B (each with Tom and keys of its own) and C (Tom, no keys)."""
    seed = gateway.seed
    for org_id, program, points in ((ORG_A, 973, "100"), (ORG_B, 990, "200"), (ORG_C, 995, "300")):
        await seed.org(org_id)
        await seed.program(org_id, program, default=True)
        await seed.customer(org_id, TOM)
        await seed.balance(org_id, TOM, program, points)
    connection = seed.connection
    return {
        "a secret": await add_keys(connection, ORG_A, "secret", write(tmp_path, "a.secret", SECRET_A)),
        "a rsa": await add_keys(connection, ORG_A, "pem", write(tmp_path, "a.pem", pem(rsa_a))),
        "b jwks": await add_keys(connection, ORG_B, "jwks", write(tmp_path, "b.json", jwks((ec_b, "b-1")))),
    }


async def refusal(gateway: Any, credential: str) -> tuple[int, dict[str, Any]]:
    response = await gateway.query(QUERY, key=credential)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    return response.status_code, response.json()


async def points(gateway: Any, credential: str) -> str:
    response = await gateway.query(QUERY, key=credential)
    assert response.status_code == 200, response.text
    return response.json()["data"]["pointsBalance"]["mainPoints"]


# --- one org's key speaks for that org alone ------------------------------------------------------------------------


async def test_an_orgs_key_reads_its_own_customers(gateway, orgs, rsa_a, ec_b):
    assert await points(gateway, token(SECRET_A, ORG_A)) == "100.000"
    assert await points(gateway, token(rsa_a, ORG_A, "RS256")) == "100.000"
    assert await points(gateway, token(ec_b, ORG_B, "ES256", kid="b-1")) == "200.000"
    assert await points(gateway, token(ec_b, ORG_B, "ES256")) == "200.000"  # no kid: any key of its algorithm


async def test_a_token_naming_another_org_is_refused_like_any_bad_signature(gateway, orgs, rsa_a, ec_b):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    like_any_bad_signature = await refusal(gateway, token(b"nobody's secret, 32 bytes or longer", ORG_A))
    assert like_any_bad_signature[1] == {
        "errors": [{"message": BAD_SIGNATURE, "extensions": {"code": "UNAUTHENTICATED"}}]
    }
    # Org A's keys, naming an org with keys of its own, one without, and one that does not exist.
    for org in (ORG_B, ORG_C, NOWHERE):
        assert await refusal(gateway, token(SECRET_A, org)) == like_any_bad_signature, org
        assert await refusal(gateway, token(rsa_a, org, "RS256")) == like_any_bad_signature, org
        assert await refusal(gateway, token(stranger, org, "RS256")) == like_any_bad_signature, org
    # Org B's JWK, naming org A, with its own kid or with none.
    assert await refusal(gateway, token(ec_b, ORG_A, "ES256", kid="b-1")) == like_any_bad_signature
    assert await refusal(gateway, token(ec_b, ORG_A, "ES256")) == like_any_bad_signature


async def test_a_kid_picks_among_the_named_orgs_keys_only(gateway, orgs, tmp_path, ec_b):
    # Org A's own key under the same kid as org B's: each kid is looked up in the org the token names.
    a_key = ec.generate_private_key(ec.SECP256R1())
    await add_keys(gateway.seed.connection, ORG_A, "jwks", write(tmp_path, "a.json", jwks((a_key, "b-1"))))
    assert await points(gateway, token(a_key, ORG_A, "ES256", kid="b-1")) == "100.000"
    await refusal(gateway, token(a_key, ORG_B, "ES256", kid="b-1"))
    await refusal(gateway, token(ec_b, ORG_A, "ES256", kid="b-1"))


async def test_the_algorithm_rules_hold_for_org_keys(gateway, orgs, rsa_a):
    now = int(time.time())
    claims = {"org": ORG_A, "sub": str(TOM), "exp": now + 300}
    # Org A's RSA public key used as an HMAC secret, and no signature at all.
    _, body = await refusal(gateway, forged({"alg": "HS256", "typ": "JWT"}, claims, pem(rsa_a)))
    assert body["errors"][0]["message"] == BAD_SIGNATURE
    for alg in ("none", "None", "HS384"):
        _, body = await refusal(gateway, forged({"alg": alg, "typ": "JWT"}, claims, None))
        assert body["errors"][0]["message"] == f"end-user tokens signed with {alg!r} are not accepted"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"org": str(ORG_A)}, "the end-user token's `org` claim must be a positive integer"),
        ({"org": True}, "the end-user token's `org` claim must be a positive integer"),
        ({"org": None}, "the end-user token has no 'org' claim"),
        ({"exp": None}, "the end-user token has no 'exp' claim"),
        ({"exp": 1}, "the end-user token has expired"),
        ({"sub": "tom"}, "the end-user token's `sub` claim must be a customer id (decimal digits)"),
        ({"aud": "loyalty-gateway"}, "the end-user token is not meant for this audience"),
    ],
)
async def test_claims_are_checked_as_with_deployment_keys(gateway, orgs, claims, message):
    now = int(time.time())
    payload = {"org": ORG_A, "sub": str(TOM), "iat": now, "exp": now + 300, **claims}
    _, body = await refusal(gateway, jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET_A))
    assert body["errors"][0]["message"] == message


async def test_a_revoked_key_stops_working_within_the_cache_lifetime(gateway, orgs, rsa_a):
    credential = token(rsa_a, ORG_A, "RS256")
    assert await points(gateway, credential) == "100.000"
    assert await revoke_token_key(gateway.seed.connection, orgs["a rsa"][0].key_id) is not None
    await asyncio.sleep(TTL + 0.1)
    _, body = await refusal(gateway, credential)  # remembered as verified, but not past its key's lifetime
    assert body["errors"][0]["message"] == BAD_SIGNATURE
    assert await points(gateway, token(SECRET_A, ORG_A)) == "100.000"  # the org's other key still works


async def test_a_new_key_works_within_the_cache_lifetime(gateway, orgs, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    credential = token(key, ORG_C, "ES256")
    await refusal(gateway, credential)
    await add_keys(gateway.seed.connection, ORG_C, "pem", write(tmp_path, "c.pem", pem(key)))
    await asyncio.sleep(TTL + 0.1)
    assert await points(gateway, credential) == "300.000"


async def test_tokens_turn_on_with_the_first_org_key(gateway, tmp_path):
    await gateway.seed.org(ORG_A)
    credential = token(SECRET_A, ORG_A)
    _, body = await refusal(gateway, credential)
    assert body["errors"][0]["message"] == "end-user tokens are not enabled on this gateway"
    await add_keys(gateway.seed.connection, ORG_A, "secret", write(tmp_path, "a.secret", SECRET_A))
    await asyncio.sleep(TTL + 0.1)
    assert (await gateway.query("{ __typename }", key=credential)).status_code == 200


async def test_a_keys_own_issuer_and_audience_are_checked(gateway, orgs, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    issuer, audience = "https://login.org-c.example", "loyalty"
    path = write(tmp_path, "c.pem", pem(key))
    await add_keys(gateway.seed.connection, ORG_C, "pem", path, issuer=issuer, audience=audience)
    assert await points(gateway, token(key, ORG_C, "ES256", iss=issuer, aud=audience)) == "300.000"
    assert await points(gateway, token(key, ORG_C, "ES256", iss=issuer, aud=[audience, "other"])) == "300.000"
    for claims, message in [
        ({"iss": "https://login.org-a.example", "aud": audience}, "comes from an unknown issuer"),
        ({"aud": audience}, "has no 'iss' claim"),
        ({"iss": issuer, "aud": "someone-else"}, "is not meant for this audience"),
        ({"iss": issuer}, "has no 'aud' claim"),
    ]:
        _, body = await refusal(gateway, token(key, ORG_C, "ES256", **claims))
        assert body["errors"][0]["message"] == f"the end-user token {message}", claims
    # A key without them: any issuer, and no audience (as deployment-wide keys without --jwt-audience).
    assert await points(gateway, token(SECRET_A, ORG_A, iss="https://anyone.example")) == "100.000"


# --- the deployment-wide keys: the single-issuer choice -------------------------------------------------------------


class TestDeploymentWideKeys:
    @pytest.fixture
    def settings(self, database_url: str, tmp_path: Path) -> Settings:
        secret = write(tmp_path, "deployment.secret", DEPLOYMENT_SECRET)
        return Settings(database_url=database_url, api_key_cache_ttl=TTL, jwt_secret_file=secret)

    async def test_they_vouch_for_every_org(self, gateway, orgs):
        assert await points(gateway, token(DEPLOYMENT_SECRET, ORG_A)) == "100.000"
        assert await points(gateway, token(DEPLOYMENT_SECRET, ORG_B)) == "200.000"
        assert await points(gateway, token(DEPLOYMENT_SECRET, ORG_C)) == "300.000"

    async def test_org_keys_still_vouch_for_their_org_alone(self, gateway, orgs, rsa_a):
        assert await points(gateway, token(rsa_a, ORG_A, "RS256")) == "100.000"
        assert await points(gateway, token(SECRET_A, ORG_A)) == "100.000"
        _, body = await refusal(gateway, token(SECRET_A, ORG_B))
        assert body["errors"][0]["message"] == BAD_SIGNATURE

    async def test_they_work_without_any_org_key(self, gateway):
        await gateway.seed.org(ORG_B)
        assert (await gateway.query("{ __typename }", key=token(DEPLOYMENT_SECRET, ORG_B))).status_code == 200


class Unreachable:
    """An org key source standing for a database that is down."""

    async def keys_for(self, org_id: int) -> Any:
        raise AssertionError("the database was asked")

    async def any_keys(self) -> bool:
        raise AssertionError("the database was asked")


async def test_a_single_issuer_gateway_verifies_without_the_database():
    tokens = EndUserTokens(secret=DEPLOYMENT_SECRET, org_keys=Unreachable())
    assert await tokens.verify(token(DEPLOYMENT_SECRET, ORG_B)) == EndUser(ORG_B, TOM)


# --- token-key add, list, revoke ------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli_main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def test_the_cli_adds_lists_and_revokes_an_orgs_keys(gateway, database_url, tmp_path, capsys, rsa_a, ec_b):
    await gateway.seed.org(ORG_A)
    await gateway.seed.org(ORG_B)

    async def run(*args: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(cli, capsys, "token-key", *args, "--database-url", database_url)

    status, out, err = await run("add", "--org", str(ORG_A), "--public-key-file", write(tmp_path, "a.pem", pem(rsa_a)))
    assert status == 0, err
    [rsa_id] = re.findall(r"added token key (tk_[0-9a-f]{12}) \(RS256\) for org 100737", out)
    set_of_two = write(tmp_path, "b.json", jwks((ec_b, "b-1"), (rsa_a, "b-2")))
    status, out, err = await run("add", "--org", str(ORG_B), "--jwks-file", set_of_two, "--issuer", "https://b.example")
    assert status == 0, err
    assert re.findall(r"added token key tk_[0-9a-f]{12} \((\w+), kid '([\w-]+)'\)", out) == [
        ("ES256", "b-1"),
        ("RS256", "b-2"),
    ]
    # The same set again, with one key more: those already there are kept, the new one added.
    newer = ec.generate_private_key(ec.SECP256R1())
    grown = write(tmp_path, "b2.json", jwks((ec_b, "b-1"), (rsa_a, "b-2"), (newer, "b-3")))
    status, out, err = await run("add", "--org", str(ORG_B), "--jwks-file", grown, "--issuer", "https://b.example")
    assert status == 0, err
    assert len(re.findall("kept token key", out)) == 2 and len(re.findall("added token key", out)) == 1
    status, out, err = await run("add", "--org", str(ORG_A), "--secret-file", write(tmp_path, "a.secret", SECRET_A))
    assert status == 0, err
    assert "whoever can read the database" in err

    status, out, err = await run("list", "--org", str(ORG_B))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "ORG", "ALG", "FORMAT", "KID", "NAME", "ISSUER", "AUDIENCE", "CREATED", "REVOKED"]
    assert sorted(line.split()[4] for line in lines[1:]) == ["b-1", "b-2", "b-3"]
    assert all("https://b.example" in line for line in lines[1:])
    status, out, err = await run("list")
    assert len(out.splitlines()) == 1 + 5
    assert SECRET_A.decode() not in out and "BEGIN PUBLIC KEY" not in out

    assert await points_of(gateway, token(rsa_a, ORG_A, "RS256")) == 200
    status, out, err = await run("revoke", rsa_id)
    assert status == 0, err
    assert f"token key {rsa_id} of org {ORG_A} is revoked" in out
    await asyncio.sleep(TTL + 0.1)
    assert await points_of(gateway, token(rsa_a, ORG_A, "RS256")) == 401
    listed = {key.key_id: key for key in await list_token_keys(gateway.seed.connection, ORG_A)}
    assert listed[rsa_id].revoked_at is not None
    status, out, err = await run("revoke", "tk_000000000000")
    assert status == 1 and "there is no token key tk_000000000000" in err


async def points_of(gateway: Any, credential: str) -> int:
    return (await gateway.query("{ __typename }", key=credential)).status_code


def bad_materials(tmp_path: Path, rsa_a: Any) -> dict[str, tuple[str, str, str]]:
    """(flag, file, what the error says) for each kind of bad key file."""
    p384 = ec.generate_private_key(ec.SECP384R1())
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1())))
    public_jwk = json.loads(jwks((ec.generate_private_key(ec.SECP256R1()), "e")))["keys"][0]
    rsa_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_pem = rsa_a.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    secret_jwk = {"kty": "oct", "k": b64(SECRET_A), "kid": "s"}
    return {
        "short secret": ("--secret-file", write(tmp_path, "short", b"too short\n"), "at least 32 bytes"),
        "a public key as secret": ("--secret-file", write(tmp_path, "pub", pem(rsa_a)), "not an HS256 secret"),
        "missing file": ("--secret-file", str(tmp_path / "missing"), "cannot read"),
        "not a key": ("--public-key-file", write(tmp_path, "junk.pem", "not a key"), "not a PEM public key"),
        "a private key": ("--public-key-file", write(tmp_path, "private.pem", private_pem), "not a PEM public key"),
        "P-384": ("--public-key-file", write(tmp_path, "p384.pem", pem(p384)), "only RSA (RS256) and P-256"),
        "DSA": (
            "--public-key-file",
            write(tmp_path, "dsa.pem", pem(dsa.generate_private_key(key_size=2048))),
            "only RSA (RS256) and P-256",
        ),
        "RSA 1024": ("--public-key-file", write(tmp_path, "rsa1024.pem", pem(rsa_1024)), "use at least 2048"),
        "JWKS not JSON": ("--jwks-file", write(tmp_path, "junk.json", "{"), "is not JSON"),
        "JWKS without keys": ("--jwks-file", write(tmp_path, "empty.json", '{"keys": []}'), "non-empty"),
        "JWKS with a secret": ("--jwks-file", write(tmp_path, "oct.json", json.dumps({"keys": [secret_jwk]})), "HS256"),
        "JWKS with a private key": (
            "--jwks-file",
            write(tmp_path, "d.json", json.dumps({"keys": [private_jwk]})),
            "private key",
        ),
        "JWKS with a P-384 key": ("--jwks-file", write(tmp_path, "p384.json", jwks((p384, "x"))), "P-256"),
        "JWKS for encryption": (
            "--jwks-file",
            write(tmp_path, "enc.json", json.dumps({"keys": [{**public_jwk, "use": "enc"}]})),
            "not for signatures",
        ),
    }


def test_bad_key_material_is_refused_and_nothing_is_added(database_url, tmp_path, capsys, rsa_a):
    for case, (flag, path, says) in bad_materials(tmp_path, rsa_a).items():
        status, out, err = cli(
            capsys, "token-key", "add", "--org", str(ORG_A), flag, path, "--database-url", database_url
        )
        assert status == 1, case
        assert err.startswith("error: ") and says in err and "nothing was added" in err, (case, err)
    status, out, err = cli(capsys, "token-key", "list", "--database-url", database_url)
    assert status == 0 and out.splitlines()[1:] == []


def test_the_cli_refuses_an_unknown_org_a_taken_kid_and_two_kinds_at_once(database_url, tmp_path, capsys, ec_b):
    pem_file = write(tmp_path, "b.pem", pem(ec_b))
    status, _, err = cli(
        capsys, "token-key", "add", "--org", "42", "--public-key-file", pem_file, "--database-url", database_url
    )
    assert status == 1 and "there is no org 42" in err

    async def seed_org() -> None:
        import asyncpg

        connection = await asyncpg.connect(database_url)
        try:
            await connection.execute("INSERT INTO orgs (org_id, name) VALUES ($1, 'B')", ORG_B)
        finally:
            await connection.close()

    asyncio.run(seed_org())
    args = ["token-key", "add", "--org", str(ORG_B), "--database-url", database_url]
    assert cli(capsys, *args, "--jwks-file", write(tmp_path, "1.json", jwks((ec_b, "k"))))[0] == 0
    other = ec.generate_private_key(ec.SECP256R1())
    status, _, err = cli(capsys, *args, "--jwks-file", write(tmp_path, "2.json", jwks((other, "new"), (other, "k"))))
    assert status == 1 and "already has another live key with kid 'k'" in err
    assert len(cli(capsys, "token-key", "list", "--database-url", database_url)[1].splitlines()) == 2  # none added
    with pytest.raises(SystemExit) as exit:
        cli_main([*args, "--public-key-file", pem_file, "--secret-file", pem_file])
    assert exit.value.code == 2
