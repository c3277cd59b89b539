"""WebAuthn ceremonies: the one module that calls the WebAuthn library (py_webauthn).

The choices are fixed here, the arithmetic is the library's: discoverable credentials (a resident
key), user verification required, attestation `none`, the algorithms the library supports
(EdDSA, ES256, RS256 and their kin), a 5-minute timeout. The JSON on the wire is WebAuthn Level 3's
(`PublicKeyCredentialCreationOptionsJSON`, `...RequestOptionsJSON`, and what
`PublicKeyCredential.toJSON()` gives), so a browser hands it straight to
`PublicKeyCredential.parseCreationOptionsFromJSON()` / `parseRequestOptionsFromJSON()`.

Every way a response can fail (malformed, another ceremony's type or challenge, an origin or RP ID
not ours, no user presence or verification, a bad signature) raises CeremonyFailed with the
library's reason, which the caller records and never shows: the client gets `Invalid passkey`.
The signature counter is checked by the caller (accounts.passkeys.services), after the signature:
a counter that went backwards means a cloned authenticator only if the assertion is genuine.
"""

import secrets
from dataclasses import dataclass

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.options_to_json_dict import options_to_json_dict
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

# How long a ceremony's options are good for: the browser's timeout, and the challenge's life.
TIMEOUT_SECONDS = 300
CHALLENGE_BYTES = 32
USER_HANDLE_BYTES = 32
# WebAuthn Level 3, §7.1 step 24: a longer credential id fails the registration (and would not fit
# Passkey.credential_id, 1,366 base64url characters).
CREDENTIAL_ID_MAX_BYTES = 1023
_TRANSPORTS = {transport.value for transport in AuthenticatorTransport}


class CeremonyFailed(Exception):
    """The response is not a valid one for this ceremony; the message says why (for the audit trail)."""


@dataclass(frozen=True)
class Registered:
    credential_id: str
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    transports: list[str]


@dataclass(frozen=True)
class Asserted:
    sign_count: int
    user_verified: bool
    backed_up: bool


@dataclass(frozen=True)
class Assertion:
    """What an assertion names before it is verified: its credential, and the user handle the
    authenticator returned with it (None if it sent none)."""

    credential_id: str
    user_handle: str | None


def challenge_new() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def user_handle_new() -> str:
    """Return a new user handle (`user.id` of the options): random, never the database id or email."""
    return bytes_to_base64url(secrets.token_bytes(USER_HANDLE_BYTES))


def encode(value: bytes) -> str:
    return bytes_to_base64url(value)


def decode(value: str) -> bytes:
    return base64url_to_bytes(value)


def _descriptors(credentials: list[tuple[str, list[str]]]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(credential_id),
            transports=[AuthenticatorTransport(transport) for transport in transports if transport in _TRANSPORTS],
        )
        for credential_id, transports in credentials
    ]


def registration_options(
    *, challenge: bytes, user_handle: str, user_name: str, display_name: str, exclude: list[tuple[str, list[str]]]
) -> dict:
    """Return PublicKeyCredentialCreationOptionsJSON for a new passkey of the user; `exclude` holds
    the user's passkeys (credential id, transports), which the authenticator must not make again."""
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=base64url_to_bytes(user_handle),
        user_name=user_name,
        user_display_name=display_name or user_name,
        challenge=challenge,
        timeout=TIMEOUT_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude),
    )
    return options_to_json_dict(options)


def registration_verify(*, credential: object, challenge: bytes) -> Registered:
    """Verify the browser's answer to the registration options; raise CeremonyFailed."""
    if not isinstance(credential, dict):
        raise CeremonyFailed("the credential is not a JSON object")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise CeremonyFailed(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Malformed input the library did not wrap (a number where text belongs, say).
        raise CeremonyFailed(f"malformed credential ({type(exc).__name__})") from None
    if len(verified.credential_id) > CREDENTIAL_ID_MAX_BYTES:
        raise CeremonyFailed(
            f"the credential id is {len(verified.credential_id)} bytes long, more than {CREDENTIAL_ID_MAX_BYTES}"
        )
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    return Registered(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=str(verified.aaguid),
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=bool(verified.credential_backed_up),
        transports=sorted({t for t in transports if isinstance(t, str) and t in _TRANSPORTS}) if isinstance(transports, list) else [],
    )


def authentication_options(*, challenge: bytes, allow: list[tuple[str, list[str]]]) -> dict:
    """Return PublicKeyCredentialRequestOptionsJSON; with `allow` empty the browser offers the
    discoverable credentials it holds for the RP ID."""
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        challenge=challenge,
        timeout=TIMEOUT_SECONDS * 1000,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options)


def assertion_read(credential: object) -> Assertion:
    """Return the credential and user handle an assertion names (not yet verified); raise CeremonyFailed."""
    if not isinstance(credential, dict):
        raise CeremonyFailed("the credential is not a JSON object")
    try:
        parsed = parse_authentication_credential_json(credential)
    except WebAuthnException as exc:
        raise CeremonyFailed(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CeremonyFailed(f"malformed credential ({type(exc).__name__})") from None
    handle = parsed.response.user_handle
    return Assertion(
        credential_id=bytes_to_base64url(parsed.raw_id),
        user_handle=bytes_to_base64url(handle) if handle else None,
    )


def authentication_verify(*, credential: dict, challenge: bytes, public_key: bytes) -> Asserted:
    """Verify an assertion with the passkey's public key; raise CeremonyFailed.

    The counter is left to the caller: the library is given 0 as the known count, so that it
    checks everything else and returns the counter the authenticator sent.
    """
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=list(settings.WEBAUTHN_ORIGINS),
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise CeremonyFailed(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CeremonyFailed(f"malformed credential ({type(exc).__name__})") from None
    return Asserted(
        sign_count=verified.new_sign_count,
        user_verified=bool(verified.user_verified),
        backed_up=bool(verified.credential_backed_up),
    )
