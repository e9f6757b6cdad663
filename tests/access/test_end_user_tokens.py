"""End-user tokens: a mobile app's JWT reads one customer's balance and their fleets, nothing else.

Anything else answers exactly as a customer or fleet that does not exist
would, so a token cannot be used to find out who exists.
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
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.access.end_user_tokens import EndUserTokens, TokenConfigurationError
from gateway.cli import main as cli_main
from gateway.config import Settings

ORG = 100737
DUAL_ORG = 100738
OTHER_ORG = 200001
TOM = 565039505
ANN = 565039506
DUAL_ME = 700001
DUAL_YOU = 700002
MY_FLEET = 9001
ANNS_FLEET = 9002
AUDIENCE = "loyalty-gateway"
ISSUER = "https://auth.example.com"
SECRET = b"an HS256 secret of at least 32 bytes, for tests"

LOOKUP = """
query ($identifiers: [IdentifierInput!]!, $entityType: EntityType! = CUSTOMER) {
  pointsBalance(identifiers: $identifiers, source: INSTORE, entityType: $entityType) {
    entityId entityType mainPoints warnings
  }
}
"""


def pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_keys() -> list[ec.EllipticCurvePrivateKey]:
    return [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]


@pytest.fixture
def key_files(tmp_path: Path, rsa_key: Any, ec_keys: list[Any]) -> dict[str, str]:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    public = tmp_path / "rsa.pem"
    public.write_bytes(pem(rsa_key))
    jwks = tmp_path / "jwks.json"
    keys = []
    for number, key in enumerate(ec_keys, start=1):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": f"ec-{number}", "use": "sig", "alg": "ES256"})
    jwks.write_text(json.dumps({"keys": keys}))
    return {"secret": str(secret), "rsa": str(public), "jwks": str(jwks)}


@pytest.fixture
def settings(database_url: str, key_files: dict[str, str]) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret_file=key_files["secret"],
        jwt_public_key_files=key_files["rsa"],
        jwt_jwks_file=key_files["jwks"],
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )


def claims(org: Any = ORG, sub: Any = str(TOM), **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"org": org, "sub": sub, "iat": now, "exp": now + 300, "aud": AUDIENCE, "iss": ISSUER}
    return {k: v for k, v in {**base, **extra}.items() if v is not None}


def hs256(**extra: Any) -> str:
    return jwt.encode(claims(**extra), SECRET, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWS made by hand: what PyJWT would refuse to make (alg none, a public key as HMAC secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture
async def key(gateway: Any) -> str:
    seed = gateway.seed
    await seed.org(ORG)
    await seed.program(ORG, 973, default=True)
    await seed.customer(ORG, TOM, ("INSTORE", None, "EMAIL", "tom@example.com"), ("INSTORE", None, "MOBILE", "111"))
    await seed.customer(ORG, ANN, ("INSTORE", None, "EMAIL", "ann@example.com"), ("INSTORE", None, "MOBILE", "222"))
    await seed.fleet(ORG, MY_FLEET, "FLEET-TOM", TOM)
    await seed.fleet(ORG, ANNS_FLEET, "FLEET-ANN", ANN)
    await seed.balance(ORG, TOM, 973, "100")
    await seed.balance(ORG, ANN, 973, "200")
    await seed.balance(ORG, MY_FLEET, 973, "1000", entity_type="FLEET")
    await seed.balance(ORG, ANNS_FLEET, 973, "2000", entity_type="FLEET")
    await seed.org(DUAL_ORG, dual_eligibility=True, primary="MOBILE")
    await seed.program(DUAL_ORG, 980, default=True)
    await seed.customer(
        DUAL_ORG, DUAL_ME, ("INSTORE", None, "MOBILE", "333"), ("INSTORE", None, "EMAIL", "shared@example.com")
    )
    await seed.customer(
        DUAL_ORG, DUAL_YOU, ("INSTORE", None, "MOBILE", "444"), ("INSTORE", None, "EMAIL", "shared@example.com")
    )
    await seed.org(OTHER_ORG)
    await seed.program(OTHER_ORG, 990, default=True)
    await seed.customer(OTHER_ORG, TOM)
    return await seed.api_key(ORG)


async def lookup(gateway: Any, token: str, *identifiers: tuple[str, str], entity_type: str = "CUSTOMER") -> Any:
    variables = {"identifiers": [{"type": t, "value": v} for t, v in identifiers], "entityType": entity_type}
    response = await gateway.query(LOOKUP, variables, key=token)
    assert response.status_code == 200, response.text
    return response.json()


def code(body: dict[str, Any]) -> tuple[str, int | None]:
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("errorCode")


# --- what a token may read ------------------------------------------------------------------------------------------


async def test_a_token_reads_its_customers_balance_by_any_identifier(gateway, key):
    token = hs256()
    for identifier in [("ID", str(TOM)), ("EMAIL", "TOM@example.com"), ("MOBILE", "+111")]:
        body = await lookup(gateway, token, identifier)
        assert body == {
            "data": {
                "pointsBalance": {
                    "entityId": str(TOM),
                    "entityType": "CUSTOMER",
                    "mainPoints": "100.000",
                    "warnings": [],
                }
            }
        }


@pytest.mark.parametrize(
    ("someone_else", "nobody"),
    [
        (("ID", str(ANN)), ("ID", "999999")),
        (("EMAIL", "ann@example.com"), ("EMAIL", "nobody@example.com")),
        (("MOBILE", "222"), ("MOBILE", "999")),
    ],
)
async def test_another_customer_answers_exactly_like_nobody(gateway, key, someone_else, nobody):
    token = hs256()
    answer = await lookup(gateway, token, someone_else)
    assert answer == await lookup(gateway, token, nobody)
    assert code(answer) == ("CUSTOMER_NOT_FOUND", 8015)
    assert answer["data"] == {"pointsBalance": None}
    # The same key-holder's view, for contrast: Ann exists.
    assert (await lookup(gateway, key, someone_else))["data"]["pointsBalance"]["entityId"] == str(ANN)


async def test_another_customers_identifier_beside_ones_own_is_not_a_conflict_but_a_miss(gateway, key):
    """With an API key this is IDENTIFIER_CONFLICT, which would tell the token holder the email is taken."""
    token = hs256()
    mixed = await lookup(gateway, token, ("ID", str(TOM)), ("EMAIL", "ann@example.com"))
    unknown = await lookup(gateway, token, ("ID", str(TOM)), ("EMAIL", "nobody@example.com"))
    assert mixed == unknown
    assert mixed["data"]["pointsBalance"]["warnings"] == ["identifier 2 (EMAIL) matches no customer"]
    reversed_mixed = await lookup(gateway, token, ("EMAIL", "ann@example.com"), ("ID", str(TOM)))
    reversed_unknown = await lookup(gateway, token, ("EMAIL", "nobody@example.com"), ("ID", str(TOM)))
    assert reversed_mixed == reversed_unknown
    assert reversed_mixed["data"]["pointsBalance"]["entityId"] == str(TOM)
    assert code(await lookup(gateway, key, ("ID", str(TOM)), ("EMAIL", "ann@example.com"))) == (
        "IDENTIFIER_CONFLICT",
        None,
    )


@pytest.mark.parametrize(
    "identifier", [("ID", str(MY_FLEET)), ("EXTERNAL_ID", "FLEET-TOM"), ("PRIMARY_USER_ID", str(TOM))]
)
async def test_a_token_reads_the_fleet_its_customer_heads(gateway, key, identifier):
    body = await lookup(gateway, hs256(), identifier, entity_type="FLEET")
    assert body["data"]["pointsBalance"]["entityId"] == str(MY_FLEET)
    assert body["data"]["pointsBalance"]["mainPoints"] == "1000.000"


@pytest.mark.parametrize(
    ("someone_elses", "nobodys"),
    [
        (("ID", str(ANNS_FLEET)), ("ID", "8888")),
        (("EXTERNAL_ID", "FLEET-ANN"), ("EXTERNAL_ID", "FLEET-NOBODY")),
        (("PRIMARY_USER_ID", str(ANN)), ("PRIMARY_USER_ID", "8888")),
    ],
)
async def test_another_fleet_answers_exactly_like_no_fleet(gateway, key, someone_elses, nobodys):
    token = hs256()
    answer = await lookup(gateway, token, someone_elses, entity_type="FLEET")
    assert answer == await lookup(gateway, token, nobodys, entity_type="FLEET")
    assert code(answer) == ("INVALID_GROUP_IDENTIFIER", 1632)


async def test_dual_eligibility_another_primary_identifier_is_not_found(gateway, key):
    token = hs256(org=DUAL_ORG, sub=str(DUAL_ME))
    assert (await lookup(gateway, token, ("MOBILE", "333")))["data"]["pointsBalance"]["entityId"] == str(DUAL_ME)
    answer = await lookup(gateway, token, ("MOBILE", "444"))
    assert answer == await lookup(gateway, token, ("MOBILE", "555"))
    assert code(answer) == ("CUSTOMER_NOT_FOUND", 8015)
    # A secondary identifier the customer shares with others still belongs to them.
    shared = await lookup(gateway, token, ("MOBILE", "333"), ("EMAIL", "shared@example.com"))
    assert shared["data"]["pointsBalance"]["warnings"] == []


async def test_aliased_lookups_in_one_request_are_each_confined(gateway, key):
    query = f"""{{
      mine: pointsBalance(identifiers: [{{type: ID, value: "{TOM}"}}], source: INSTORE) {{ entityId }}
      hers: pointsBalance(identifiers: [{{type: ID, value: "{ANN}"}}], source: INSTORE) {{ entityId }}
      fleet: pointsBalance(identifiers: [{{type: ID, value: "{ANNS_FLEET}"}}], source: INSTORE, entityType: FLEET) {{
        entityId
      }}
    }}"""
    body = (await gateway.query(query, key=hs256())).json()
    assert body["data"] == {"mine": {"entityId": str(TOM)}, "hers": None, "fleet": None}
    assert sorted(error["extensions"]["code"] for error in body["errors"]) == [
        "CUSTOMER_NOT_FOUND",
        "INVALID_GROUP_IDENTIFIER",
    ]


async def test_the_org_claim_decides_the_org(gateway, key):
    # Customer TOM exists in both orgs; a token for OTHER_ORG sees that org's TOM, with that org's programs.
    body = await lookup(gateway, hs256(org=OTHER_ORG), ("ID", str(TOM)))
    assert body["data"]["pointsBalance"] == {
        "entityId": str(TOM),
        "entityType": "CUSTOMER",
        "mainPoints": "0.000",
        "warnings": [],
    }


async def test_a_token_for_an_org_that_does_not_exist_finds_nothing(gateway, key):
    body = await lookup(gateway, hs256(org=424242), ("ID", str(TOM)))
    assert body["data"] == {"pointsBalance": None}
    assert code(body)[0] in {"CUSTOMER_NOT_FOUND", "PROGRAM_NOT_FOUND"}


async def test_rs256_with_a_pem_public_key(gateway, key, rsa_key):
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert (await lookup(gateway, token, ("ID", str(TOM))))["data"]["pointsBalance"]["entityId"] == str(TOM)


async def test_es256_with_a_jwks_picked_by_kid(gateway, key, ec_keys):
    for number, private in enumerate(ec_keys, start=1):
        token = jwt.encode(claims(), private, algorithm="ES256", headers={"kid": f"ec-{number}"})
        assert (await lookup(gateway, token, ("ID", str(TOM))))["data"]["pointsBalance"]["entityId"] == str(TOM)


async def test_a_token_within_the_leeway_is_accepted(gateway, key):
    now = int(time.time())
    token = hs256(exp=now - 10, iat=now - 100)
    assert (await lookup(gateway, token, ("ID", str(TOM))))["data"]["pointsBalance"]["entityId"] == str(TOM)


def test_a_backend_mints_a_token_with_the_cli(key_files, capsys):
    assert (
        cli_main(
            [
                "token",
                "mint",
                "--org",
                str(ORG),
                "--customer",
                str(TOM),
                "--ttl",
                "60",
                "--jwt-secret-file",
                key_files["secret"],
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert decoded["org"] == ORG and decoded["sub"] == str(TOM)
    assert decoded["exp"] - decoded["iat"] == 60


# --- what is refused ------------------------------------------------------------------------------------------------


def refused_tokens(rsa_key: Any, ec_keys: list[Any]) -> dict[str, str]:
    now = int(time.time())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid = hs256()
    header, payload, signature = valid.split(".")
    tampered_payload = b64(json.dumps(claims(sub=str(ANN))).encode())
    return {
        "expired": hs256(exp=now - 3600, iat=now - 7200),
        "not yet valid (nbf)": hs256(nbf=now + 3600),
        "issued in the future": hs256(iat=now + 3600),
        "wrong audience": hs256(aud="someone-else"),
        "no audience": hs256(aud=None),
        "wrong issuer": hs256(iss="https://evil.example.com"),
        "no expiry": hs256(exp=None),
        "no org": hs256(org=None),
        "org as a string": hs256(org=str(ORG)),
        "org zero": hs256(org=0),
        "sub not a customer id": hs256(sub="tom@example.com"),
        "sub out of range": hs256(sub="9" * 30),
        "sub as a number": forged({"alg": "HS256", "typ": "JWT"}, claims(sub=TOM), SECRET),
        "signed with another secret": jwt.encode(claims(), b"x" * 40, algorithm="HS256"),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "alg none": forged({"alg": "none", "typ": "JWT"}, claims(), None),
        "alg None": forged({"alg": "None", "typ": "JWT"}, claims(), None),
        "HS256 with the RSA public key as secret": forged({"alg": "HS256", "typ": "JWT"}, claims(), pem(rsa_key)),
        "HS384": jwt.encode(claims(), SECRET + b"-longer", algorithm="HS384"),
        "RS256 from an unknown key": jwt.encode(claims(), other_rsa, algorithm="RS256"),
        "ES256 from an unknown kid": jwt.encode(
            claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "ec-9"}
        ),
        "ES256 from a known kid's impostor": jwt.encode(
            claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "ec-1"}
        ),
        "RS256 claiming an EC kid": jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "ec-1"}),
        "three garbage parts": "abc.def.ghi",
        "header not JSON": f"{b64(b'not json')}.{payload}.{signature}",
    }


REFUSALS = [
    "expired",
    "not yet valid (nbf)",
    "issued in the future",
    "wrong audience",
    "no audience",
    "wrong issuer",
    "no expiry",
    "no org",
    "org as a string",
    "org zero",
    "sub not a customer id",
    "sub out of range",
    "sub as a number",
    "signed with another secret",
    "tampered payload",
    "alg none",
    "alg None",
    "HS256 with the RSA public key as secret",
    "HS384",
    "RS256 from an unknown key",
    "ES256 from an unknown kid",
    "ES256 from a known kid's impostor",
    "three garbage parts",
    "header not JSON",
]


@pytest.fixture(scope="module")
def refused(rsa_key: Any, ec_keys: list[Any]) -> dict[str, str]:
    return refused_tokens(rsa_key, ec_keys)


@pytest.mark.parametrize("case", REFUSALS)
async def test_a_bad_token_is_unauthenticated(gateway, key, refused, case):
    response = await gateway.query(LOOKUP, {"identifiers": [{"type": "ID", "value": str(TOM)}]}, key=refused[case])
    assert response.status_code == 401, (case, response.text)
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "data" not in body
    assert response.headers["www-authenticate"] == "Bearer"
    # The gateway's own words, not PyJWT's exception text.
    assert not re.search(r"Traceback|Error|segment|padding|Invalid|decod|\.py", body["errors"][0]["message"]), body


async def test_an_rs256_token_claiming_an_ec_kid_is_refused(gateway, key, refused):
    response = await gateway.query("{ __typename }", key=refused["RS256 claiming an EC kid"])
    assert response.status_code == 401


class TestShortLeeway:
    @pytest.fixture
    def settings(self, database_url: str, key_files: dict[str, str]) -> Settings:
        return Settings(database_url=database_url, jwt_secret_file=key_files["secret"], jwt_leeway=0)

    async def test_a_remembered_token_still_expires(self, gateway, key):
        # At least a second to live (`exp` is whole seconds): the first request is never the one that is late.
        expires = int(time.time()) + 2
        token = jwt.encode({"org": ORG, "sub": str(TOM), "exp": expires}, SECRET, algorithm="HS256")
        assert (await gateway.query("{ __typename }", key=token)).status_code == 200
        await asyncio.sleep(max(0.0, expires + 0.2 - time.time()))
        response = await gateway.query("{ __typename }", key=token)
        assert response.status_code == 401
        assert "expired" in response.json()["errors"][0]["message"]


class TestTokensOff:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url)

    async def test_a_token_is_refused_when_none_are_configured(self, gateway, key):
        response = await gateway.query("{ __typename }", key=hs256())
        assert response.status_code == 401
        assert "not enabled" in response.json()["errors"][0]["message"]

    async def test_api_keys_work_as_before(self, gateway, key):
        assert (await gateway.query("{ __typename }", key=key)).status_code == 200


class TestRsaOnly:
    @pytest.fixture
    def settings(self, database_url: str, key_files: dict[str, str]) -> Settings:
        return Settings(database_url=database_url, jwt_public_key_files=key_files["rsa"])

    async def test_hs256_signed_with_the_public_key_is_refused(self, gateway, key, rsa_key):
        token = forged({"alg": "HS256", "typ": "JWT"}, claims(aud=None, iss=None), pem(rsa_key))
        response = await gateway.query("{ __typename }", key=token)
        assert response.status_code == 401
        valid = jwt.encode(claims(aud=None, iss=None), rsa_key, algorithm="RS256")
        assert (await gateway.query("{ __typename }", key=valid)).status_code == 200


def test_a_short_secret_is_refused_at_startup(tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"too short")
    with pytest.raises(TokenConfigurationError):
        EndUserTokens.from_settings(Settings(jwt_secret_file=str(short)))


def test_a_file_that_is_not_a_key_is_refused_at_startup(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(TokenConfigurationError):
        EndUserTokens.from_settings(Settings(jwt_public_key_files=str(junk)))
    with pytest.raises(TokenConfigurationError):
        EndUserTokens.from_settings(Settings(jwt_jwks_file=str(junk)))
    with pytest.raises(TokenConfigurationError):
        EndUserTokens.from_settings(Settings(jwt_secret_file=str(tmp_path / "missing")))


def test_serve_refuses_to_start_with_an_unreadable_key(tmp_path, capsys):
    missing = str(tmp_path / "missing-secret")
    assert cli_main(["serve", "--database-url", "postgresql://unused/db", "--jwt-secret-file", missing]) == 2
    assert "cannot read" in capsys.readouterr().err
