"""The one registry of clients: the apps that sign users in through this server (OpenID Connect,
authorization code + PKCE) and the services that call it with their own credentials (resource
servers introspecting tokens, client_credentials). It is django-oauth-toolkit's Application,
swapped for this model (OAUTH2_PROVIDER_APPLICATION_MODEL).

A confidential client's secret is random (256 bits) and kept as a SHA-256 digest, never in clear
and never through a password hasher: a fast digest is safe for a secret nobody chose, and a
password hash would cost every token request and introspection call ~20 ms.
"""

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from oauth2_provider.models import AbstractApplication

# What a digest looks like in `client_secret` (the only form the column ever holds).
SECRET_DIGEST_PREFIX = "sha256$"
SCOPES = ("openid", "profile", "email", "groups", "offline_access")
DEFAULT_SCOPES = "openid profile email"


def client_id_new() -> str:
    return secrets.token_urlsafe(16)



LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


def uri_problem(uri: str, what: str) -> str | None:
    """What is wrong with a client's URI (None: nothing). Absolute http(s) URIs without a fragment;
    https, except on the loopback (RFC 8252's native apps, a developer's machine) or with DEBUG on."""
    from oauth2_provider.validators import AllowedURIValidator

    try:
        AllowedURIValidator(["https", "http"], name=what, allow_path=True, allow_query=True)(uri)
    except ValidationError as exc:
        return f"{what} {uri!r} is not valid: {'; '.join(exc.messages)}"
    if "#" in uri:
        return f"{what} {uri!r} must not have a fragment."
    parts = urlsplit(uri)
    if parts.scheme == "http" and not settings.DEBUG and parts.netloc.rsplit(":", 1)[0].lower() not in LOOPBACK_HOSTS:
        return f"{what} {uri!r} must use https (http only on 127.0.0.1, [::1] or localhost)."
    return None

class Client(AbstractApplication):
    """A registered client (an OpenID Connect relying party, or a service)."""

    ID_TOKEN_ALGORITHMS = [("RS256", "RS256 (OpenID's default)"), ("ES256", "ES256")]

    client_id = models.CharField(max_length=100, unique=True, default=client_id_new, db_index=True)
    authorization_grant_type = models.CharField(
        "grant type",
        max_length=44,
        choices=[
            (AbstractApplication.GRANT_AUTHORIZATION_CODE, "Authorization code (an app that signs users in)"),
            (AbstractApplication.GRANT_CLIENT_CREDENTIALS, "Client credentials (a service, a resource server)"),
        ],
        default=AbstractApplication.GRANT_AUTHORIZATION_CODE,
    )
    client_secret = models.CharField(max_length=255, blank=True, editable=False)
    # The digest is computed by accounts.clients.services, never by a password hasher.
    hash_client_secret = models.BooleanField(default=False, editable=False)
    name = models.CharField(max_length=100, unique=True)
    skip_authorization = models.BooleanField(
        "first-party", default=False, help_text="A first-party app: its users are not asked for consent."
    )
    algorithm = models.CharField(
        "ID token algorithm", max_length=5, choices=ID_TOKEN_ALGORITHMS, default="RS256", blank=True
    )
    is_active = models.BooleanField("active", default=True, help_text="Unselect to refuse its requests.")
    allowed_scopes = models.CharField(
        max_length=255, default=DEFAULT_SCOPES, blank=True,
        help_text="The scopes it may ask for, space-separated: " + ", ".join(SCOPES) + ".",
    )
    resources = models.TextField(
        blank=True,
        help_text="Audiences it may ask access tokens for (RFC 8707 `resource`), space-separated URIs.",
    )
    backchannel_logout_uri = models.URLField(
        "back-channel logout URI", blank=True, max_length=500,
        help_text="Where a logout token is posted when a session it was authorized in ends.",
    )

    class Meta(AbstractApplication.Meta):
        ordering = ["name"]
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def __str__(self):
        return self.name

    def is_usable(self, request):
        return self.is_active

    def scope_list(self) -> list[str]:
        return self.allowed_scopes.split()

    def resource_list(self) -> list[str]:
        return self.resources.split()

    # Exact string matching (OpenID Connect Core 3.1.2.1, RFC 9700 2.1): the toolkit's own check
    # compares parsed parts and takes the host in any letter case.
    def redirect_uri_allowed(self, uri: str) -> bool:
        return isinstance(uri, str) and uri in self.redirect_uris.split()

    def post_logout_redirect_uri_allowed(self, uri: str) -> bool:
        return isinstance(uri, str) and uri in self.post_logout_redirect_uris.split()

    def clean(self):
        # django-oauth-toolkit's clean() asks for an RSA key in settings; ours are in the keyring.
        # The URIs are checked by our one rule (uri_problem), in the admin as in the command.
        errors = {}
        for field, what in (
            ("redirect_uris", "Redirect URI"),
            ("post_logout_redirect_uris", "Post-logout redirect URI"),
            ("backchannel_logout_uri", "Back-channel logout URI"),
        ):
            for uri in getattr(self, field).split():
                problem = uri_problem(uri, what)
                if problem:
                    errors.setdefault(field, []).append(problem)
        if errors:
            raise ValidationError(errors)

    @property
    def is_service(self) -> bool:
        return self.authorization_grant_type == self.GRANT_CLIENT_CREDENTIALS
