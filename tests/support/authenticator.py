"""A software WebAuthn authenticator for in-process tests: what a browser and a passkey would send.

It answers the server's options (JSON, as the API gives them) with what `credential.toJSON()`
gives: a packed-free "none" attestation for a new P-256 key, and assertions signed with it, with
the flags and counter a test asks for. The browser tests (tests/passkeys/test_browser.py) use
Chromium's virtual authenticator instead; this one lets the rules be tested without a browser.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
ORIGIN = "http://localhost:3000"
RP_ID = "localhost"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftPasskey:
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    user_handle: bytes = b""
    sign_count: int = 0
    rp_id: str = RP_ID

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _auth_data(self, flags: int, *, attested: bool = False, rp_id: str | None = None) -> bytes:
        data = hashlib.sha256((rp_id or self.rp_id).encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count)
        if attested:
            data += bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        return data

    def create(
        self,
        options: dict,
        *,
        origin: str = ORIGIN,
        verified: bool = True,
        backed_up: bool = False,
        challenge: str | None = None,
        type_: str = "webauthn.create",
        rp_id: str | None = None,
    ) -> dict:
        """Answer creation options; return the credential's JSON."""
        self.user_handle = unb64url(options["user"]["id"])
        client_data = json.dumps(
            {"type": type_, "challenge": challenge or options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()
        flags = UP | AT | (UV if verified else 0) | ((BE | BS) if backed_up else 0)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": self._auth_data(flags, attested=True, rp_id=rp_id)})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict,
        *,
        origin: str = ORIGIN,
        verified: bool = True,
        counter: int | None = None,
        challenge: str | None = None,
        type_: str = "webauthn.get",
        rp_id: str | None = None,
        user_handle: bytes | None = None,
    ) -> dict:
        """Answer request options; return the assertion's JSON. The counter moves on by one,
        unless `counter` sets it (0 for a synced passkey, lower for a clone)."""
        self.sign_count = self.sign_count + 1 if counter is None else counter
        client_data = json.dumps(
            {"type": type_, "challenge": challenge or options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = self._auth_data(UP | (UV if verified else 0), rp_id=rp_id)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        handle = self.user_handle if user_handle is None else user_handle
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle) if handle else None,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
