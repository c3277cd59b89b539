"""Passkeys: adding, listing, renaming and removing them, and signing in with one.

- Adding one takes the password (POST /api/passkeys/options), as removing one does: a stolen
  token alone must not plant a way back into the account. A wrong password is InvalidCredentials,
  counted in LOGIN_ACCOUNT_RATE and recorded (accounts.passwords.credentials.password_check).
- Challenges are random (32 bytes), single-use and live 5 minutes, in the shared cache (Redis, or
  the database's cache table), so that options from one node finish on another:
  - registration: the pending challenge is the user's one entry (new options replace it), taken
    by the first finish that reads it, whatever its outcome;
  - sign-in: the options write nothing (an anonymous caller cannot fill a table); the ceremony
    handed to the client is the challenge and its expiry sealed by core.vault, and a finish spends
    it with an atomic cache.add of its digest, before anything is verified.
- Every failed sign-in (any of the ways ceremony.CeremonyFailed lists, an unknown or removed
  credential, a reused or expired challenge, a counter that went backwards) answers InvalidPasskey,
  is recorded (PASSKEY_FAILED, with the reason) and counts in LOGIN_ADDRESS_RATE, and in
  LOGIN_ACCOUNT_RATE once the credential names an account.
- Counters: an authenticator that keeps one must send a larger one each time. One that did not
  (after a genuine signature) may have been cloned: the sign-in is refused and the passkey flagged
  (`cloned_at`) for staff. Synced passkeys send 0 each time, which is fine.
- A passkey sign-in then runs the account checks of a password sign-in, in the same order
  (unconfirmed, disabled; deactivated reactivates) and opens a session (accounts.signin.services).
  With user verification (always required) it is multi-factor by itself, `amr` ["hwk", "user",
  "mfa"], so the two-factor stage does not apply.
"""

import hashlib
import json
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.audit import services as audit
from accounts.notices import services as emails
from accounts.passkeys import ceremony
from accounts.passkeys.errors import InvalidPasskey
from accounts.passkeys.models import Passkey
from accounts.passwords.credentials import account_limit, password_check
from accounts.sessions.models import Session
from accounts.sessions.tokens import auth_token_issue
from accounts.signin import services as signin
from accounts.users.models import User, email_normalize
from accounts.webhooks.events import user_event_emit
from core import metrics, vault
from core.errors import AccountDisabled, AuthError, InvalidCredentials, NotFound, Throttled, UserConfirmationRequired
from core.ratelimit import address_limit

AMR = ["hwk", "user", "mfa"]
NAME_MAX = 64
_SIGNIN_PURPOSE = "passkey sign-in"
_DECOY_SALT = "accounts.passkeys.services.decoy"


@dataclass(frozen=True)
class SignInOptions:
    options: dict
    ceremony: str


def _registration_key(user: User) -> str:
    return f"passkeys:registration:{user.pk}"


def _spent_key(challenge: bytes) -> str:
    return f"passkeys:spent:{hashlib.sha256(challenge).hexdigest()}"


def _name_default(user: User) -> str:
    return f"Passkey {Passkey.objects.filter(user=user).count() + 1}"


def _name_clean(name: str) -> str:
    return " ".join(name.split())[:NAME_MAX]


# --- the user's passkeys -------------------------------------------------------------------------


def passkey_list(*, user: User) -> list[Passkey]:
    """Return the user's passkeys, newest first."""
    return list(Passkey.objects.filter(user=user).order_by("-created_at", "-pk"))


def passkey_get(*, user: User, passkey_id: int) -> Passkey:
    """Return the user's passkey of this id; NotFound if it is not one of theirs."""
    passkey = Passkey.objects.filter(user=user, pk=passkey_id).first()
    if passkey is None:
        raise NotFound
    return passkey


def passkey_registration_options(*, user: User, password: str) -> dict:
    """Start adding a passkey, with the password: return the creation options (JSON), whose
    challenge stays pending for 5 minutes (new options replace it)."""
    if not password_check(user=user, password=password, action="passkey registration"):
        raise InvalidCredentials
    existing = list(Passkey.objects.filter(user=user).values_list("credential_id", "transports", "user_handle"))
    # One handle per user, shared by their passkeys, so an authenticator keeps one passkey per account.
    handle = existing[0][2] if existing else ceremony.user_handle_new()
    challenge = ceremony.challenge_new()
    cache.set(
        _registration_key(user),
        {"challenge": ceremony.encode(challenge), "handle": handle},
        timeout=ceremony.TIMEOUT_SECONDS,
    )
    return ceremony.registration_options(
        challenge=challenge,
        user_handle=handle,
        user_name=user.email,
        display_name=user.name,
        exclude=[(credential_id, transports) for credential_id, transports, _ in existing],
    )


def passkey_add(*, user: User, credential: object, name: str = "") -> Passkey:
    """Finish adding a passkey: verify the browser's answer to the pending options; InvalidPasskey
    if it fails or no options are pending (never asked, expired, or already used)."""
    pending = cache.get(_registration_key(user))
    # Taken by the first finish that reads it, whatever comes next: a challenge works once.
    if not pending or not cache.delete(_registration_key(user)):
        _refused(user=user, reason="registration: no pending options (expired, used, or never asked)")
    try:
        registered = ceremony.registration_verify(
            credential=credential, challenge=ceremony.decode(pending["challenge"])
        )
    except ceremony.CeremonyFailed as exc:
        _refused(user=user, reason=f"registration: {exc}")
    try:
        with transaction.atomic():
            passkey = Passkey.objects.create(
                user=user,
                name=_name_clean(name) or _name_default(user),
                credential_id=registered.credential_id,
                user_handle=pending["handle"],
                public_key=registered.public_key,
                sign_count=registered.sign_count,
                transports=registered.transports,
                aaguid=registered.aaguid,
                backup_eligible=registered.backup_eligible,
                backed_up=registered.backed_up,
            )
            user_event_emit("passkey.added", user=user, passkey={"id": passkey.pk, "name": passkey.name})
    except IntegrityError:
        # The credential is registered already (excludeCredentials ignored by the client).
        _refused(user=user, reason="registration: this credential is registered already")
    audit.record(audit.Type.PASSKEY_ADDED, user=user, detail=passkey.name)
    emails.send_passkey_added(user=user, name=passkey.name)
    return passkey


def _refused(*, user: User, reason: str) -> None:
    """Record why adding a passkey failed and raise InvalidPasskey. Not counted in the sign-in
    limits: the caller's token already says who they are, there is nothing to guess."""
    audit.record(audit.Type.PASSKEY_FAILED, user=user, detail=_printable(reason)[:255])
    raise InvalidPasskey


def _printable(reason: str) -> str:
    """The reason with its control characters escaped: it may quote what the client sent (an
    origin, a type), and a NUL would keep the event out of PostgreSQL, which refuses it in text."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in reason)


def passkey_rename(*, user: User, passkey_id: int, name: str) -> Passkey:
    passkey = passkey_get(user=user, passkey_id=passkey_id)
    passkey.name = _name_clean(name) or passkey.name
    passkey.save(update_fields=["name"])
    return passkey


def passkey_remove(*, user: User, passkey_id: int, password: str) -> None:
    """Remove one of the user's passkeys, with the password; the user is emailed."""
    passkey = passkey_get(user=user, passkey_id=passkey_id)
    if not password_check(user=user, password=password, action="passkey removal"):
        raise InvalidCredentials
    _remove(passkey=passkey, how="with your password")


def passkey_remove_by_staff(*, passkey: Passkey, by: str) -> None:
    """Remove a passkey for staff or an operator (`by` says who, for the audit trail); who may is
    the caller's rule (accounts.staff). The user is emailed."""
    _remove(passkey=passkey, how="by our staff", by=by)


def _remove(*, passkey: Passkey, how: str, by: str = "") -> None:
    user = passkey.user
    with transaction.atomic():
        Passkey.objects.filter(pk=passkey.pk).delete()
        user_event_emit(
            "passkey.removed", user=user, passkey={"id": passkey.pk, "name": passkey.name}, by="staff" if by else "user"
        )
    audit.record(audit.Type.PASSKEY_REMOVED, user=user, detail=f"{passkey.name} (by {by})" if by else passkey.name)
    emails.send_passkey_removed(user=user, name=passkey.name, how=how)


# --- signing in ----------------------------------------------------------------------------------


def passkey_signin_options(*, email: str = "") -> SignInOptions:
    """Return the request options and the sealed ceremony that finishes them.

    Without an email the options name no credential (the browser offers its discoverable ones);
    with one, the options name that account's passkeys. An email without any (unknown, or an
    account without passkeys) gets one made-up credential, the same at each ask, so that the
    answer does not tell who has an account or a passkey.
    """
    allow = []
    if email:
        # One query whether or not the email has an account: two (the user, then the passkeys)
        # made an account's answer measurably slower than an unknown email's.
        allow = list(
            Passkey.objects.filter(user__email_normalized=email_normalize(email)).values_list("credential_id", "transports")
        )
        if not allow:
            decoy = salted_hmac(_DECOY_SALT, email_normalize(email), algorithm="sha256").digest()[:16]
            allow = [(ceremony.encode(decoy), ["hybrid", "internal"])]
    challenge = ceremony.challenge_new()
    sealed = vault.encrypt(
        json.dumps(
            {
                "purpose": _SIGNIN_PURPOSE,
                "challenge": ceremony.encode(challenge),
                "expires": int(time.time()) + ceremony.TIMEOUT_SECONDS,
                # Options for an email allow that account's passkeys only (WebAuthn L3 §7.2 step 5):
                # the finish checks the passkey's owner against this digest.
                "account": _account_digest(email) if email else None,
            }
        ).encode()
    )
    return SignInOptions(options=ceremony.authentication_options(challenge=challenge, allow=allow), ceremony=sealed)


def _account_digest(email: str) -> str:
    return hashlib.sha256(email_normalize(email).encode()).hexdigest()


def _challenge_of(sealed: str) -> tuple[bytes, str | None]:
    """Return the challenge of a sealed ceremony and the digest of the email its options were for
    (None: a discoverable sign-in), spending it; CeremonyFailed if it is not one of ours, has
    expired, or was spent already."""
    try:
        opened = json.loads(vault.decrypt(sealed))
        if opened["purpose"] != _SIGNIN_PURPOSE:
            raise ValueError
        challenge, expires = ceremony.decode(opened["challenge"]), int(opened["expires"])
        account = opened.get("account")
    except (vault.SecretUnreadable, ValueError, KeyError, TypeError, AttributeError):
        raise ceremony.CeremonyFailed("the ceremony is not one of ours") from None
    left = expires - int(time.time())
    if left <= 0:
        raise ceremony.CeremonyFailed("the ceremony has expired")
    if not cache.add(_spent_key(challenge), True, timeout=left + 5):
        raise ceremony.CeremonyFailed("the ceremony was used already")
    return challenge, account if isinstance(account, str) else None


def passkey_check(
    *, ceremony_sealed: str, credential: object, client_address: str, where: str = ""
) -> tuple[User, list[str]]:
    """Verify a passkey sign-in and the account's state; return the user and the session's `amr`.

    Raise Throttled, InvalidPasskey, UserConfirmationRequired or AccountDisabled; `where` names
    the entry point ("" for the API, "sign-in page", "admin site").
    """
    entry = signin.entry_of(where)
    limits = [address_limit("login_address", client_address)]
    user = None
    try:
        for limit in limits:
            limit.check()
        try:
            challenge, account = _challenge_of(ceremony_sealed)
            assertion = ceremony.assertion_read(credential)
            passkey = Passkey.objects.select_related("user").filter(credential_id=assertion.credential_id).first()
            if passkey is None:
                raise ceremony.CeremonyFailed("unknown credential")
            user = passkey.user
            limits.append(account_limit(user=user))
            limits[-1].check()
            if account is not None and account != _account_digest(user.email):
                raise ceremony.CeremonyFailed("the options were for another account's passkeys")
            if assertion.user_handle is None and account is None:
                # A discoverable credential returns its user handle (WebAuthn L3 §7.2 step 6).
                raise ceremony.CeremonyFailed("no user handle in a discoverable sign-in")
            if assertion.user_handle is not None and assertion.user_handle != passkey.user_handle:
                raise ceremony.CeremonyFailed("the user handle is not the passkey's")
            if passkey.cloned_at is not None:
                raise ceremony.CeremonyFailed("the passkey is flagged: its counter went backwards once (cloned?)")
            asserted = ceremony.authentication_verify(
                credential=credential, challenge=challenge, public_key=bytes(passkey.public_key)
            )
            _counter_advance(passkey=passkey, asserted=asserted)
        except ceremony.CeremonyFailed as exc:
            for limit in limits:
                limit.hit()
            raise InvalidPasskey from _Reason(str(exc))
        if not user.is_confirmed:
            raise UserConfirmationRequired
        if not user.is_active:
            raise AccountDisabled
    except Throttled as exc:
        metrics.login_counted(entry=entry, exc=exc)
        raise
    except AuthError as exc:
        reason = exc.__cause__ if isinstance(exc.__cause__, _Reason) else None
        if reason is not None:
            audit.record(audit.Type.PASSKEY_FAILED, user=user, email=user.email if user else "", detail=_printable(str(reason))[:255])
        else:
            audit.record(audit.Type.LOGIN_FAILED, user=user, detail=", ".join(filter(None, [exc.message, "passkey", where])))
        metrics.login_counted(entry=entry, exc=exc)
        raise
    return user, list(AMR) if asserted.user_verified else ["hwk"]


class _Reason(Exception):
    """Why a passkey was refused: recorded, never shown."""


def _counter_advance(*, passkey: Passkey, asserted: ceremony.Asserted) -> None:
    """Store the new counter and the use, or raise CeremonyFailed for a counter that did not move
    forward (flagging the passkey: it may have been cloned). A compare-and-set UPDATE, so two
    sign-ins with one counter value cannot both pass."""
    now = timezone.now()
    new, known = asserted.sign_count, passkey.sign_count
    if new == 0 and known == 0:
        advanced = Passkey.objects.filter(pk=passkey.pk, sign_count=0)
    elif new > known:
        advanced = Passkey.objects.filter(pk=passkey.pk, sign_count__lt=new)
    else:
        advanced = Passkey.objects.none()
    if not advanced.update(sign_count=new, last_used_at=now, backed_up=asserted.backed_up):
        Passkey.objects.filter(pk=passkey.pk).update(cloned_at=now)
        audit.record(
            audit.Type.PASSKEY_CLONED, user=passkey.user, detail=f"{passkey.name}: counter {new} after {known}"[:255]
        )
        raise ceremony.CeremonyFailed(f"the counter went backwards ({new} after {known}): cloned authenticator?")


def passkey_sign_in(
    *, ceremony: str, credential: object, remember: bool = False, client_address: str, user_agent: str = "", where: str = ""
) -> Session:
    """Check a passkey sign-in and open a session, as a password login does."""
    user, amr = passkey_check(ceremony_sealed=ceremony, credential=credential, client_address=client_address, where=where)
    return signin.sign_in(
        user=user,
        remember=remember,
        amr=amr,
        client_address=client_address,
        user_agent=user_agent,
        where=", ".join(filter(None, ["passkey", where])),
    )


def passkey_login(*, ceremony: str, credential: object, remember: bool = False, client_address: str, user_agent: str = "") -> str:
    """Sign in with a passkey through the API: return the session's first auth token, as a password login does."""
    session = passkey_sign_in(
        ceremony=ceremony, credential=credential, remember=remember, client_address=client_address, user_agent=user_agent
    )
    return auth_token_issue(session=session, user=session.user, now=session.created_at)
