"""django-oauth-toolkit's validator, bridged to this server (OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]).

What changes from the toolkit's own:
- client secrets are checked against their SHA-256 digest (accounts.clients), not a password hash;
- a client asks only for the scopes (and RFC 8707 resources) it was registered with;
- a code is bound to the server session the user authorized in, and so are the tokens it brings;
  the session must still be open when the code is exchanged and at every refresh;
- a code works once: the first exchange claims it (one UPDATE), a second finds it claimed and
  revokes what the first issued (one statement per table), as a replayed refresh token does;
- a code exchange brings a refresh token only when `offline_access` was granted;
- ID tokens carry `sid`, `amr`, `auth_time` from the session and the user's public id as `sub`,
  and are signed by the keyring in the client's algorithm;
- a refresh reads its token, client, user, session and access token in one SELECT
  (`refresh_token_read`, by the token view before oauthlib runs) and rotates in one short
  transaction of four statements: the parent spent (one UPDATE, only if it is still live: the row
  lock it takes makes it the one point where concurrent refreshes of a token are decided), its
  access token deleted, the new pair inserted. A refresh that finds its token spent there lost to
  a concurrent one, and is answered as a retry: the winner's answer, within
  OIDC_REFRESH_REUSE_GRACE, which the child keeps sealed under the parent token; else a reuse.
"""

import base64
import hashlib
import json
import re
import uuid
from contextvars import ContextVar
from datetime import timedelta
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import refresh_token_expire_timedelta
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from accounts.audit import services as audit
from accounts.clients.services import secret_matches
from accounts.oidc import reads, tokens
from accounts.oidc.models import AccessToken, Grant, IDToken, RefreshToken
from accounts.sessions.tokens import session_check
from core import metrics, vault
from core.errors import AuthError

# The refresh token row the token view read for this request (refresh_token_read), with its
# client, user, session and access token: the validator is shared by every thread, the row is not.
refresh_token_preloaded: ContextVar = ContextVar("refresh_token_preloaded", default=None)


def checksum_of(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def refresh_token_read(raw: str):
    """The refresh token row of a raw token (the live one first, else the latest revoked), with
    its client, user, session and access token: one SELECT."""
    return reads.refresh_token_by_checksum(checksum_of(raw))


class GraceAnswer(Exception):
    """A retry of a refresh token just spent: answer `body`, the token answer its child came with."""

    def __init__(self, body: str):
        super().__init__("refresh token retried within the grace window")
        self.body = body


def _refresh_token_spend(pk: int, now) -> bool:
    """Mark a live refresh token spent, drop its pointer to its access token and the answer kept
    for its own parent's retry: one UPDATE, built once (the queryset's update() costs more CPU to
    compile than to run). False if it was not live."""
    meta, quote = RefreshToken._meta, connection.ops.quote_name
    column = {name: quote(meta.get_field(name).column) for name in ("revoked", "updated", "access_token", "grace_answer")}
    moment = meta.get_field("revoked").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {column['revoked']} = %s, {column['updated']} = %s, "
            f"{column['access_token']} = NULL, {column['grace_answer']} = '' "
            f"WHERE {quote(meta.pk.column)} = %s AND {column['revoked']} IS NULL",
            [moment, moment, pk],
        )
        return cursor.rowcount == 1


def _basic_client_id(credentials: str | None) -> str | None:
    """The client_id of HTTP Basic credentials (RFC 6749 §2.3.1), or None if they do not parse:
    only a hint for the read, which the toolkit checks against the client_id it authenticates."""
    try:
        client_id, _, _secret = base64.b64decode(credentials or "", validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return unquote_plus(client_id) or None


def _access_token_delete(pk: int) -> None:
    # One statement: the queryset's delete() would first SELECT the row and null the refresh
    # token's pointer, which the caller's UPDATE has already done (the only row that points here).
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(AccessToken._meta.db_table)} WHERE {quote(AccessToken._meta.pk.column)} = %s", [pk]
        )


# RFC 7636, 4.2: what a code challenge may be (S256's is 43 characters). Checked before a code
# is stored: PostgreSQL refuses what does not fit its column (a 500).
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def authorization_request_problem(*, code_challenge, nonce) -> str | None:
    """What is wrong with an authorization request's PKCE challenge or nonce, or None."""
    if not isinstance(code_challenge, str) or not CODE_CHALLENGE.fullmatch(code_challenge):
        return "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~' (RFC 7636)."
    if nonce and len(nonce) > Grant._meta.get_field("nonce").max_length:
        return f"nonce must be {Grant._meta.get_field('nonce').max_length} characters at most."
    return None


def _session_usable(session, user) -> bool:
    try:
        session_check(user=user, session=session)
    except AuthError:
        return False
    return True


def family_revoke(token_family) -> None:
    """Revoke a family: its refresh tokens (one UPDATE) and access tokens (one DELETE each way)."""
    with transaction.atomic():
        RefreshToken.revoke_family(token_family)
        AccessToken.objects.filter(token_family=token_family).delete()


class Validator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "name": "profile",
        "email": "email",
        "email_verified": "email",
        "groups": "groups",
    }

    # --- clients ---------------------------------------------------------------------------

    def _check_secret(self, provided_secret, stored_secret):
        return secret_matches(stored_secret, provided_secret or "")

    def _client_preload(self, request) -> None:
        # The client read in one prepared SELECT (accounts.oidc.reads) rather than the toolkit's
        # queryset; for a refresh it came with the token's row. The toolkit takes request.client
        # only if its client_id is the one that authenticates (else it reads the client itself),
        # and checks the secret and whether the client is usable as ever.
        if request.client is not None:
            return
        rt = refresh_token_preloaded.get()
        if rt is not None and request.grant_type == "refresh_token":
            request.client = rt.application
            return
        client_id = request.client_id or _basic_client_id(self._extract_basic_auth(request))
        if client_id:
            request.client = reads.client_by_id(client_id)

    def client_authentication_required(self, request, *args, **kwargs):
        self._client_preload(request)
        return super().client_authentication_required(request, *args, **kwargs)

    def authenticate_client(self, request, *args, **kwargs):
        self._client_preload(request)
        return super().authenticate_client(request, *args, **kwargs)

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        self._client_preload(request)
        return super().authenticate_client_id(client_id, request, *args, **kwargs)

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        allowed = set(client.scope_list()) & set(oauth2_settings._SCOPES)
        return set(scopes) <= allowed

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        # Only the code flow: the implicit and hybrid ones are not "unauthorized" for this client
        # (the toolkit's answer) but not offered at all.
        if response_type != "code":
            raise errors.UnsupportedResponseTypeError(request=request)
        return super().validate_response_type(client_id, response_type, client, request, *args, **kwargs)

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        client = request.client
        if client is not None and client.is_service:
            return client.scope_list()
        return ["openid"]

    def validate_user(self, username, password, client, request, *args, **kwargs):
        # The password grant is not offered (OIDCTokenView refuses it first); never a password
        # check here, which would skip the sign-in's limits, audit trail and two-factor.
        return False

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        if not super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs):
            return False
        # RFC 8707: the resources asked for must be the client's.
        resources = [value for key, value in request.decoded_body or () if key == "resource"] if request.decoded_body else []
        if resources:
            allowed = set(client.resource_list())
            if not set(resources) <= allowed:
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description="The resource asked for is not one this client may have.",
                    status_code=400,
                    request=request,
                )
            request.oidc_resources = resources
        return True

    # --- codes -----------------------------------------------------------------------------

    def _create_authorization_code(self, request, code, expires=None):
        if request.code_challenge_method != "S256":
            raise errors.InvalidRequestError(description='PKCE is required, with code_challenge_method "S256".', request=request)
        problem = authorization_request_problem(code_challenge=request.code_challenge, nonce=request.nonce)
        if problem:
            raise errors.InvalidRequestError(description=problem, request=request)
        session = request.server_session
        expires = expires or timezone.now() + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS)
        grant = Grant.objects.create(
            application=request.client,
            user=request.user,
            session=session,
            code=code["code"],
            expires=expires,
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "",
            claims=json.dumps(request.claims or {}),
            resource=getattr(request, "resource", []),
        )
        audit.record(audit.Type.AUTHORIZED, user=request.user, detail=f"{request.client.name}: {grant.scope}")
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        grant = (
            Grant.objects.select_related("session", "user").filter(code=code, application=client).first()
            if isinstance(code, str)
            else None
        )
        if grant is None:
            return False
        now = timezone.now()
        # The first exchange claims the code; a second finds it claimed.
        claimed = Grant.objects.filter(pk=grant.pk, used_at__isnull=True).update(used_at=now)
        if not claimed:
            family_revoke(grant.token_family)
            audit.record(audit.Type.CODE_REUSED, user=grant.user, detail=f"{client.name}: its tokens revoked")
            metrics.oidc_counted("code_reused")
            return False
        if grant.is_expired() or not _session_usable(grant.session, grant.user):
            return False
        request.scopes = grant.scope.split()
        request.user = grant.user
        request.server_session = grant.session
        request.token_family = grant.token_family
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        # RFC 6749, 5.2: a code sent with another redirect URI than its own is invalid_grant
        # (oauthlib would answer invalid_request).
        if not super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs):
            raise errors.InvalidGrantError(description="The redirect_uri is not the one the code was issued for.", request=request)
        return True

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # Claimed by validate_code; the row stays, so that a second use is recognised.
        pass

    def get_code_challenge(self, code, request):
        grant = Grant.objects.filter(code=code, application=request.client).first()
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = Grant.objects.filter(code=code, application=request.client).first()
        return (grant.code_challenge_method or None) if grant is not None else None

    # --- tokens ----------------------------------------------------------------------------

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        session = getattr(request, "server_session", None) if request.grant_type != "client_credentials" else None
        family = getattr(request, "token_family", None)
        if source_refresh_token is not None:
            family = source_refresh_token.token_family
        access_token = AccessToken(
            user=request.user if request.grant_type != "client_credentials" else None,
            scope=token["scope"],
            expires=expires,
            id_token=getattr(request, "id_token", None) if token.get("id_token") else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            session=session,
            token_family=family,
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        metrics.oidc_counted(f"token_{request.grant_type}")
        return access_token

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token, grace_answer=""):
        if previous_refresh_token:
            family = previous_refresh_token.token_family
        else:
            family = getattr(request, "token_family", None) or uuid.uuid4()
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=family,
            resource=getattr(request, "resource", []),
            session=request.server_session,
            grace_answer=grace_answer,
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def save_bearer_token(self, token, request, *args, **kwargs):
        # offline_access brings a refresh token, and nothing else does (oauthlib makes one with
        # every code). Only at the code's exchange: a refresh always rotates, whatever its scope.
        if request.grant_type == "authorization_code" and "offline_access" not in (request.scopes or []):
            token.pop("refresh_token", None)
        if request.grant_type in ("client_credentials", "refresh_token"):
            # One INSERT, or a rotation that makes its own transaction (_save_bearer_token).
            return self._save_bearer_token(token, request, *args, **kwargs)
        return super().save_bearer_token(token, request, *args, **kwargs)

    def _save_bearer_token(self, token, request, *args, **kwargs):
        parent = getattr(request, "refresh_token_instance", None)
        if request.grant_type != "refresh_token" or not token.get("refresh_token") or parent is None:
            return super()._save_bearer_token(token, request, *args, **kwargs)
        # Rotation: spend the parent (only if it is still live), delete its access token, insert
        # the new pair, in one transaction that holds the database's write lock only that long.
        self._check_and_set_request_resource(request)
        now = timezone.now()
        expires = now + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        answer = ""
        if settings.OIDC_REFRESH_REUSE_GRACE:
            answer = vault.seal(json.dumps(token).encode(), secret=request.refresh_token)
        with transaction.atomic(savepoint=False):
            spent = _refresh_token_spend(parent.pk, now)
            if spent:
                if parent.access_token_id:
                    _access_token_delete(parent.access_token_id)
                access_token = self._create_access_token(expires, request, token, source_refresh_token=parent)
                self._create_refresh_token(request, token["refresh_token"], access_token, parent, grace_answer=answer)
        if not spent:
            # A concurrent refresh of the same token spent it first (its UPDATE held the row):
            # answered as a retry of it, the winner's answer within the grace window, else a reuse.
            current = refresh_token_read(request.refresh_token)
            if current is not None and current.revoked is not None:
                self._refresh_reused(current, request.client, request.refresh_token)
            raise errors.InvalidGrantError(request=request)

    def rotate_refresh_token(self, request):
        return True

    def _refresh_reused(self, rt, client, raw: str) -> bool:
        """A spent refresh token presented again: its child's answer again if it is the immediate
        parent retried within the grace window (GraceAnswer), else its family revoked (one
        statement per table), audited."""
        grace = settings.OIDC_REFRESH_REUSE_GRACE
        if (
            grace
            and rt.application_id == client.pk
            and rt.revoked > timezone.now() - timedelta(seconds=grace)
            and _session_usable(rt.session, rt.user)
        ):
            kept = (
                RefreshToken.objects.filter(access_token__source_refresh_token_id=rt.pk, revoked__isnull=True)
                .values_list("grace_answer", flat=True)
                .first()
            )
            try:
                body = vault.unseal(kept, secret=raw).decode() if kept else None
            except vault.SecretUnreadable:
                body = None
            if body is not None:
                raise GraceAnswer(body)
        if rt.token_family:
            RefreshToken.revoke_family(rt.token_family)
        # Whichever client presents it: a spent token out in the open has leaked.
        by = "" if rt.application_id == client.pk else f", presented by {client.name}"
        audit.record(audit.Type.REFRESH_REUSED, user=rt.user, detail=f"{rt.application.name}: its family revoked{by}")
        metrics.oidc_counted("refresh_reused")
        return False

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not isinstance(refresh_token, str):
            return False
        rt = refresh_token_preloaded.get()
        if rt is None or rt.token_checksum != checksum_of(refresh_token):
            rt = (
                RefreshToken.objects.select_related("application", "user", "session", "access_token")
                .filter(token_checksum=checksum_of(refresh_token))
                .order_by(F("revoked").desc(nulls_first=True))
                .first()
            )
        if rt is None:
            return False
        if rt.revoked is not None:
            return self._refresh_reused(rt, client, refresh_token)
        # A live token always has its access token (rotation makes the pair together); its
        # lifetime slides with it (REFRESH_TOKEN_EXPIRE_SECONDS after the access token expires).
        if rt.access_token is None:
            return False
        lifetime = refresh_token_expire_timedelta()
        if lifetime and rt.access_token.expires + lifetime <= timezone.now():
            return False
        if rt.application_id != client.pk or not _session_usable(rt.session, rt.user):
            return False
        request.user = rt.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        request.server_session = rt.session
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return request.refresh_token_instance.access_token.scope.split()

    # --- prompt=none ------------------------------------------------------------------------

    # oauthlib asks these of every prompt=none request (and raises NotImplementedError without
    # them): AuthorizeView answers login_required and consent_required itself, from the browser's
    # session and the user's consents, which the validator does not see.
    def validate_silent_login(self, request):
        return True

    def validate_silent_authorization(self, request):
        return True

    # --- ID tokens -------------------------------------------------------------------------

    def get_additional_claims(self, request):
        user = request.user
        claims = {
            "name": user.name or "",
            "email": user.email,
            "email_verified": user.is_email_verified,
        }
        if "groups" in request.scopes:
            claims["groups"] = sorted(user.groups.values_list("name", flat=True))
        return claims

    def get_claim_dict(self, request):
        return {"sub": str(request.user.public_id), **self.get_additional_claims(request)}

    def finalize_id_token(self, id_token, token, token_handler, request):
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        session = request.server_session
        id_token["auth_time"] = int(session.created_at.timestamp())
        id_token["sid"] = session.public_id
        id_token["amr"] = list(session.amr)
        id_token["iat"] = int(timezone.now().timestamp())
        algorithm = request.client.algorithm or "RS256"
        signed = tokens.sign(id_token, algorithm=algorithm)
        if request.grant_type == "refresh_token":
            # The code exchange's row already records that this session signed in to this client
            # (what back-channel logout and the sessions list read); a row per refresh adds nothing.
            return signed
        request.id_token = IDToken.objects.create(
            user=request.user,
            scope=request.scope or " ".join(request.scopes),
            expires=expiration_time,
            jti=id_token["jti"],
            application=request.client,
            session=session,
        )
        request.access_token = request.id_token
        return signed

    def _load_id_token(self, token):
        raise NotImplementedError("ID tokens are found by the request that made them (request.id_token)")
