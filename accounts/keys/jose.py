"""JSON Web Tokens and keys: the one module that calls PyJWT and `cryptography` for them.

Everything cryptographic about auth tokens is done by those libraries: key generation
(`cryptography`), signing and verification, JWK export and import (PyJWT). This module only
fixes the choices: ES256 (ECDSA on P-256) or RS256 (RSA 3072 bits), the algorithm always taken
from our key, never from the token.
"""

import json

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ALGORITHMS = ("ES256", "RS256")
_JWK = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm}

# What a bad token raises here, whatever is wrong with it.
InvalidToken = jwt.InvalidTokenError


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


def encode(payload: dict, *, private_key, algorithm: str, kid: str) -> str:
    """Return the signed compact JWS of the payload, with `kid` in its header."""
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})


def unverified_kid(token: str) -> str | None:
    """Return the `kid` of the token's header (not yet verified), or raise InvalidToken."""
    kid = jwt.get_unverified_header(token).get("kid")
    return kid if isinstance(kid, str) else None


def decode(token: str, *, public_key, algorithm: str, issuer: str, audience: list[str], required: list[str]) -> dict:
    """Return the verified claims, or raise InvalidToken.

    The signature is checked with our key's own algorithm (the header's `alg` must name it),
    then `exp`, `iat`, `iss` and `aud`, and the presence of the `required` claims.
    """
    return jwt.decode(
        token,
        public_key,
        algorithms=[algorithm],
        issuer=issuer,
        audience=audience,
        options={"require": required},
    )
