"""Settings of the example relying party: every value from the environment, read here only.

The app keeps no database. A signed-in user's tokens are kept on the server, in Django's
file-based sessions (SESSION_FILE_PATH), never in the browser: the browser holds only an
HttpOnly session cookie (the backend-for-frontend design of docs/oidc.md).
"""

import os
import secrets
import tempfile

from django.core.exceptions import ImproperlyConfigured


def _required(name: str, example: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: {example} (see README.md).")
    return value


DEBUG = os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
# Signs the session data and the CSRF tokens. Without one, a random key per start: the users of
# the app are then signed out of it (not of the auth server) when it restarts.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if host.strip()]

INSTALLED_APPS = ["relying_party"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "relying_party.urls"
WSGI_APPLICATION = "relying_party.wsgi.application"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {}
USE_TZ = True
TIME_ZONE = "UTC"

SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = os.environ.get("SESSION_FILE_PATH", "").strip() or tempfile.gettempdir()
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"  # sent on the auth server's redirect back (a top-level GET)
# Cookies are per host, not per port: on localhost the auth server's own cookies (sessionid,
# csrftoken) would overwrite this app's if they had the same names.
SESSION_COOKIE_NAME = "rp_session"
CSRF_COOKIE_NAME = "rp_csrftoken"
# https:// in production: the cookies are then sent over TLS only.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = os.environ.get("APP_URL", "").startswith("https://")

# This app, as the browser reaches it (its redirect URIs are built from it and must be registered
# exactly so on the auth server).
APP_URL = (os.environ.get("APP_URL", "").strip() or "http://localhost:8002").rstrip("/")
# The auth server: its TOKEN_ISSUER, exactly. Everything else (endpoints, keys) comes from its
# discovery document, <OIDC_ISSUER>/.well-known/openid-configuration.
OIDC_ISSUER = _required("OIDC_ISSUER", "the auth server's TOKEN_ISSUER, e.g. http://localhost:8000").rstrip("/")
OIDC_CLIENT_ID = _required("OIDC_CLIENT_ID", "the client_id manage.py create_oidc_client printed")
OIDC_CLIENT_SECRET = _required("OIDC_CLIENT_SECRET", "the client_secret manage.py create_oidc_client printed")
OIDC_SCOPES = os.environ.get("OIDC_SCOPES", "").strip() or "openid profile email"
# The example resource server (examples/resource_server), called with the access token.
RESOURCE_SERVER_URL = (os.environ.get("RESOURCE_SERVER_URL", "").strip() or "http://localhost:8001").rstrip("/")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
