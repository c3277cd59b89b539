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
  and are signed by the keyring in the client's algorithm.
"""

import hashlib
import json
import re
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from accounts.audit import services as audit
from accounts.clients.services import secret_matches
from accounts.oidc import tokens
from accounts.oidc.models import AccessToken, Grant, IDToken, RefreshToken
from accounts.sessions.tokens import session_check
from core import metrics
from core.errors import AuthError


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

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
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
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def save_bearer_token(self, token, request, *args, **kwargs):
        # offline_access brings a refresh token, and nothing else does (oauthlib makes one with
        # every code). Only at the code's exchange: a refresh always rotates, whatever its scope.
        if request.grant_type == "authorization_code" and "offline_access" not in (request.scopes or []):
            token.pop("refresh_token", None)
        return super().save_bearer_token(token, request, *args, **kwargs)

    def rotate_refresh_token(self, request):
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        checksum = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest() if isinstance(refresh_token, str) else ""
        # Whichever client presents it: a spent token out in the open leaked (the toolkit revokes
        # its family, and this records it).
        spent = RefreshToken.objects.filter(token_checksum=checksum, revoked__isnull=False).select_related("user", "application").first()
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            if spent is not None:
                # A refresh token used again: the toolkit revoked its family (reuse protection).
                by = "" if spent.application_id == client.pk else f", presented by {client.name}"
                audit.record(audit.Type.REFRESH_REUSED, user=spent.user, detail=f"{spent.application.name}: its family revoked{by}")
                metrics.oidc_counted("refresh_reused")
            return False
        rt = request.refresh_token_instance
        session = rt.session
        if not _session_usable(session, rt.user):
            return False
        request.server_session = session
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        rt = request.refresh_token_instance
        if not rt.access_token_id:
            return []
        return AccessToken.objects.filter(pk=rt.access_token_id).values_list("scope", flat=True).first().split()

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
