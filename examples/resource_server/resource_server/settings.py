"""Settings of the example resource server: every value from the environment, read here only.

The service keeps no data of its own: no database, no sessions, no cookies. It trusts one auth
server, named by AUTH_ISSUER, and verifies that server's tokens with the public keys it publishes.
"""

import os
import secrets

from django.core.exceptions import ImproperlyConfigured


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: a whole number is needed.") from None


DEBUG = _bool("DEBUG", False)
# Django wants a key, but this service signs nothing (no sessions, cookies, CSRF tokens or
# password resets), so without one a random key per start will do.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if host.strip()]

INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "resource_server.urls"
WSGI_APPLICATION = "resource_server.wsgi.application"
# Paths answer with and without a trailing slash themselves.
APPEND_SLASH = False
DATABASES = {}
USE_TZ = True
TIME_ZONE = "UTC"

# The auth server. AUTH_ISSUER is its TOKEN_ISSUER, exactly: the `iss` every token must carry. It
# has no default, because the keys are fetched from there: a default would make this service trust
# whatever answers at that address.
AUTH_ISSUER = os.environ.get("AUTH_ISSUER", "").strip().rstrip("/")
if not AUTH_ISSUER:
    raise ImproperlyConfigured(
        "AUTH_ISSUER is not set: set it to the auth server's TOKEN_ISSUER (its public base URL, "
        "e.g. https://auth.example.com)."
    )
# Where its public keys are: the JWKS of /.well-known/openid-configuration's `jwks_uri`.
AUTH_JWKS_URL = os.environ.get("AUTH_JWKS_URL", "").strip() or f"{AUTH_ISSUER}/.well-known/jwks.json"
# The `aud` this service accepts: one of the auth server's TOKEN_AUDIENCE names.
AUTH_AUDIENCE = os.environ.get("AUTH_AUDIENCE", "").strip() or "authserver"
# Seconds the key set is kept before it is fetched again (the auth server's JWKS_MAX_AGE); a token
# of a key not in the kept set makes it fetch at once, at most every AUTH_JWKS_COOLDOWN seconds.
AUTH_JWKS_MAX_AGE = _int("AUTH_JWKS_MAX_AGE", 300)
AUTH_JWKS_COOLDOWN = _int("AUTH_JWKS_COOLDOWN", 30)
# Seconds of clock difference with the auth server tolerated on `exp` and `iat`.
AUTH_LEEWAY = _int("AUTH_LEEWAY", 0)
# The group (one of the token's `groups`) that GET /reports needs.
REQUIRED_GROUP = os.environ.get("REQUIRED_GROUP", "").strip() or "reporters"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["resource_server.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "resource_server.errors.exception_handler",
    # Requests without a token have no user at all (None), not Django's AnonymousUser: this
    # service has no user table.
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
