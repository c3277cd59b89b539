"""Time one offline verification of a token by the resource server example's verifier.

    python -m bench.verify --jwks-url http://127.0.0.1:8000/.well-known/jwks.json \
        --issuer http://localhost:8000 --audience authserver --token <auth token> \
        [--access-token <OAuth access token>] [--json]

In-process, with timeit: examples/resource_server/resource_server/tokens.py's TokenVerifier,
whose key set is fetched once and then kept, as in a running service, so that each call is the
offline work alone: the header read, the key lookup in the kept set, the signature (ECDSA P-256
for ES256 keys), the claims. bench/run.py calls it against its server with an auth token and an
OAuth access token (RFC 9068, `typ: at+jwt`, from the OpenID provider); for each it prints µs per
verify (the best of --repeat timings), beside PyJWT's jwt.decode alone and the signature check
alone, or why the verifier refused the token.
"""

import argparse
import json
import sys
import timeit
from pathlib import Path

import jwt

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resource_server"


def best_us(call, repeat: int) -> float:
    """Return the fastest of `repeat` timings of `call`, in µs per call."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def measure(*, jwks_url: str, issuer: str, audience: str, token: str, repeat: int = 5) -> dict:
    """Time the verifier on one token; if it refuses the token, say why (`refused`)."""
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    from resource_server.tokens import InvalidToken, TokenVerifier

    verifier = TokenVerifier(issuer=issuer, audience=audience, jwks_url=jwks_url)
    try:
        user = verifier.verify(token)  # fetches the key set, once
    except InvalidToken as exc:
        header = jwt.get_unverified_header(token)
        return {"refused": str(exc), "typ": header.get("typ"), "algorithm": header.get("alg")}
    key = verifier.jwks.get_signing_key_from_jwt(token)
    signing_input, _, signature = token.rpartition(".")
    signing_input, signature = signing_input.encode(), jwt.utils.base64url_decode(signature)
    assert key.Algorithm.verify(signing_input, key.key, signature)
    return {
        "algorithm": key.algorithm_name,
        "sub": user.sub,
        "verify_us": best_us(lambda: verifier.verify(token), repeat),
        "jwt_decode_us": best_us(
            lambda: jwt.decode(token, key, algorithms=[key.algorithm_name], issuer=issuer, audience=audience),
            repeat,
        ),
        # PyJWT's algorithm on `cryptography`: what no verifier can skip.
        "signature_us": best_us(lambda: key.Algorithm.verify(signing_input, key.key, signature), repeat),
    }


KINDS = {"auth_token": "an auth token", "access_token": "an OAuth access token (at+jwt)"}


def describe(results: dict) -> str:
    """One line per token: its timings, or why the verifier refused it."""
    lines = []
    for kind, result in results.items():
        what = f"offline verification of {KINDS[kind]} (examples/resource_server's TokenVerifier, {result['algorithm']}"
        if "refused" in result:
            lines.append(f"{what}, typ {result['typ']}): REFUSED: {result['refused']}")
            continue
        lines.append(
            f"{what}, in-process, key set kept): {result['verify_us']:.0f} µs per verify; PyJWT's jwt.decode "
            f"alone {result['jwt_decode_us']:.0f} µs, the signature check alone {result['signature_us']:.0f} µs"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", default="authserver")
    parser.add_argument("--token", required=True, help="an auth token (as /api/authenticate makes them)")
    parser.add_argument("--access-token", help="an access token of the OpenID provider, timed beside it")
    parser.add_argument("--repeat", type=int, default=5, help="timings, the best counts (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a sentence")
    args = parser.parse_args(argv)
    tokens = {"auth_token": args.token, "access_token": args.access_token}
    results = {
        kind: measure(jwks_url=args.jwks_url, issuer=args.issuer, audience=args.audience, token=token, repeat=args.repeat)
        for kind, token in tokens.items()
        if token
    }
    print(json.dumps(results) if args.json else describe(results))
    return results


if __name__ == "__main__":
    main()
