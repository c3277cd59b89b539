"""JSON Web Tokens and keys: the one module that calls PyJWT and `cryptography` for them.

Everything cryptographic about auth tokens is done by those libraries: key generation
(`cryptography`), signing and verification, JWK export and import (PyJWT). This module only
fixes the choices: ES256 (ECDSA on P-256) or RS256 (RSA 3072 bits), the algorithm always taken
from our key, never from the token.

One token has one string: PyJWT accepts `=` padding (and decodes leniently), and an ECDSA
signature (r, s) has a twin (r, n - s) that verifies as well. So every segment must be unpadded
base64url in its one canonical spelling, and an ES256 signature must have the low s (s <= n/2),
which is the one `encode()` writes (it signs again, with a fresh nonce, until the s is low).
"""

import base64
import binascii
import json
import re

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "RS256")
_JWK = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm}

# What a bad token raises here, whatever is wrong with it.
InvalidToken = jwt.InvalidTokenError

# The order of P-256's group: an ES256 signature is r || s, 32 bytes each.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _segment_bytes(segment: str) -> bytes:
    """Return what a segment encodes, or raise InvalidToken unless it is canonical base64url
    (its alphabet only, no padding, no stray bits in its last character)."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("a token segment is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("a token segment is not base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != segment:
        raise InvalidToken("a token segment is not in its canonical base64url form")
    return data


def _canonical(token: str) -> None:
    """Raise InvalidToken unless the token is three canonical segments and, for ES256, a low-s
    signature. (Called with our key's algorithm; the header's must match it, which PyJWT checks.)"""
    if not isinstance(token, str):
        raise InvalidToken("a token is a string")
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken("a token has three segments")
    for segment in segments:
        _segment_bytes(segment)


def _has_low_s(token: str) -> bool:
    return int.from_bytes(_segment_bytes(token.rpartition(".")[2])[32:], "big") <= _P256_ORDER // 2


def _refuse_high_s(token: str) -> None:
    raw = _segment_bytes(token.rpartition(".")[2])
    if len(raw) != 64:
        raise InvalidToken("an ES256 signature is 64 bytes")
    if int.from_bytes(raw[32:], "big") > _P256_ORDER // 2:
        raise InvalidToken("an ES256 signature must have the low s")


def private_key_generate(algorithm: str):
    """Return a new private key for the algorithm."""
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError(f"unsupported algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")


def private_key_to_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def public_jwk(private_key, *, kid: str, algorithm: str) -> dict:
    """Return the public JWK of a key pair: public members only, with `kid`, `alg` and `use`."""
    jwk = _JWK[algorithm].to_jwk(private_key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "alg": algorithm, "use": "sig"})
    return jwk


def public_key_from_jwk(jwk: dict, *, algorithm: str):
    """Return the public key of a JWK, refusing one that holds a private member."""
    if any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi")):
        raise ValueError("a published key must not hold private members")
    return _JWK[algorithm].from_jwk(json.dumps(jwk))


def encode(payload: dict, *, private_key, algorithm: str, kid: str, typ: str | None = None) -> str:
    """Return the signed compact JWS of the payload, with `kid` (and `typ`, when given: `at+jwt`
    for an OAuth access token, RFC 9068; `logout+jwt` for a logout token) in its header (ES256: low s)."""
    headers = {"kid": kid} if typ is None else {"kid": kid, "typ": typ}
    # ECDSA signs with a fresh random nonce, so half the signatures have the low s: sign again until
    # one has (the signature is never altered here). 64 draws all high: odds of 2^-64.
    for _ in range(64):
        token = jwt.encode(payload, private_key, algorithm=algorithm, headers=headers)
        if algorithm != "ES256" or _has_low_s(token):
            return token
    raise RuntimeError("no low-s ES256 signature in 64 draws")


def unverified_kid(token: str) -> str | None:
    """Return the `kid` of the token's header (not yet verified), or raise InvalidToken."""
    return unverified_header(token)[0]


def unverified_header(token: str) -> tuple[str | None, str | None]:
    """Return the `kid` and `typ` of the token's header (not yet verified), or raise InvalidToken."""
    _canonical(token)
    header = jwt.get_unverified_header(token)
    kid, typ = header.get("kid"), header.get("typ")
    return (kid if isinstance(kid, str) else None), (typ if isinstance(typ, str) else None)


def decode(
    token: str,
    *,
    public_key,
    algorithm: str,
    issuer: str,
    audience: list[str] | None,
    required: list[str],
    verify_exp: bool = True,
) -> dict:
    """Return the verified claims, or raise InvalidToken.

    The signature is checked with our key's own algorithm (the header's `alg` must name it),
    then `exp`, `iat`, `iss` and `aud` (audience None: any audience, which the caller checks),
    and the presence of the `required` claims. A token that is not in its one canonical form
    (module docs) is refused before.
    """
    _canonical(token)
    if algorithm == "ES256":
        _refuse_high_s(token)
    return jwt.decode(
        token,
        public_key,
        algorithms=[algorithm],
        issuer=issuer,
        audience=audience,
        options={"require": required, "verify_aud": audience is not None, "verify_exp": verify_exp},
    )
