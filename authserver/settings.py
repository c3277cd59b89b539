"""Settings of the auth server: every value comes from the environment (or `.env`), read here only.

With nothing configured, the server runs for development: SQLite next to manage.py and emails
printed to the console. `DEBUG` defaults to false; manage.py and the test suite turn it on unless
told otherwise (see authserver/env.py), WSGI servers do not.
"""

import re
from pathlib import Path

import dj_database_url
from django.conf.locale import LANG_INFO
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
    _check_secret_key,
)
from django.core.exceptions import ImproperlyConfigured

from authserver import __version__
from authserver.env import BASE_DIR, env
from core.addresses import proxy_networks
from core.logs import logging_config

DEBUG = env.bool("DEBUG", default=False)

# The release (CHANGELOG.md), as GET / tells it.
VERSION = __version__

# Signs sessions, validation links and auth tokens. In production it must pass Django's own
# strength rule (the one `check --deploy` reports as security.W009), so that a guessable key stops
# the start instead of a warning nobody reads.
_GENERATE_KEY = "python -c \"import secrets; print(secrets.token_urlsafe(50))\""
SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY in the environment or in .env "
        f"(production; generate one with {_GENERATE_KEY}), or set DEBUG=true for development."
    )
if not DEBUG and not _check_secret_key(SECRET_KEY):
    # The message names the rule, never the key: start-up errors end up in logs.
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, at least "
        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and must not start with "
        f"{SECRET_KEY_INSECURE_PREFIX!r}. Generate one with {_GENERATE_KEY}."
    )
if not SECRET_KEY:
    # Development only: anyone can read this key, so tokens signed with it prove nothing.
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    # Django's admin on our site class (accounts.staff.site): the API's sign-in rules and sessions.
    "authserver.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI for /api/docs, served from the static files (no CDN needed).
    "drf_spectacular_sidecar",
    # The OpenID provider's engine (django-oauth-toolkit); its models are swapped for accounts.oidc's.
    "oauth2_provider",
    "accounts",
    # The Flask server's password hashes and the command that imports its users.
    "legacy_flask",
]

MIDDLEWARE = [
    # First, so that nothing after it sees X-Forwarded-* headers a client wrote (TRUSTED_PROXIES).
    "core.middleware.forwarded_headers_from_trusted_proxies",
    # Next, so that its timing, request id and log line cover everything after it.
    "core.middleware.requests_observed",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "core.middleware.body_size_limit",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "authserver.urls"
WSGI_APPLICATION = "authserver.wsgi.application"
# API paths answer with and without a trailing slash themselves; never redirect.
APPEND_SLASH = False

# The hosted pages, customized without touching the code (docs/oidc.md, "Customizing the pages"):
# PAGES_DIR is a directory of the operator's with templates/, static/ and locale/, each one found
# before the app's own.
PAGES_DIR = env.str("PAGES_DIR", default="").strip()
if PAGES_DIR and not Path(PAGES_DIR).is_dir():
    raise ImproperlyConfigured(f"PAGES_DIR={PAGES_DIR}: no such directory.")


def _pages_dirs(name: str) -> list[Path]:
    """PAGES_DIR/<name>, if the operator made it."""
    return [Path(PAGES_DIR) / name] if PAGES_DIR and (Path(PAGES_DIR) / name).is_dir() else []


STATICFILES_DIRS = _pages_dirs("static")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": _pages_dirs("templates"),
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else a SQLite file next to manage.py.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env.int("CONN_MAX_AGE", default=60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes share the file: wait for the write lock instead of failing,
    # take it at the start of each transaction, and let readers work while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# PostgreSQL: a pool of connections per worker process (psycopg's), DB_POOL_MAX_SIZE at most. The
# workers are threaded (gunicorn.conf.py): without a pool, every thread that served a request would
# keep a connection of its own (CONN_MAX_AGE), up to workers x threads per node, past PostgreSQL's
# max_connections after a burst. Requests beyond the pool's size wait for a connection (up to 10 s).
# 0 turns the pool off (one connection per thread, kept CONN_MAX_AGE seconds).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=16)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django then has the pool check a connection before handing it out (one PostgreSQL closed is replaced).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": 10,
    }
# Cache for rate limits, shared by every worker process: CACHE_URL (e.g. redis://127.0.0.1:6379/0),
# else a table in the database (created by the accounts migrations), which needs no other service.
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {
    "default": (
        env.cache_url_config(CACHE_URL)
        if CACHE_URL
        else {
            # Django's database cache, culling expired entries only (a limit's counters must
            # not be pushed out by other entries: accounts/cache.py).
            "BACKEND": "core.cache.DatabaseCache",
            "LOCATION": "authserver_cache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    # Argon2id with the ARGON2_* costs below; it also reads hashes made by Django's Argon2 hasher
    # (same algorithm name, so Django's own must not be listed too), and any hash whose costs differ
    # from these is rehashed at the next successful login. The others only check old hashes, and
    # only those that can be here: every hasher listed costs a failed login one check more while
    # some account holds one of its hashes (equal timing, accounts.passwords.credentials).
    "accounts.passwords.hashers.Argon2PasswordHasher",
    # Hashes imported from the Flask server (import_flask_users), rehashed at the first login.
    "legacy_flask.hashers.FlaskSecurityPasswordHasher",
    # Django's default, for accounts brought from another Django project.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Argon2id costs, OWASP's recommendation by default: 19 MiB of memory, 2 iterations, 1 lane
# (about 34 ms of one core per hash on a 2-core cloud machine). Each login costs one hash, so this
# trades login throughput for resistance to offline guessing; `python manage.py calibrate_hasher
# --target-ms N` measures this machine and prints the values for a chosen time per hash.
ARGON2_MEMORY_COST = env.int("ARGON2_MEMORY_COST", default=19 * 1024)  # KiB
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=2)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
if ARGON2_TIME_COST < 1 or ARGON2_PARALLELISM < 1 or ARGON2_MEMORY_COST < 8 * ARGON2_PARALLELISM:
    raise ImproperlyConfigured(
        "ARGON2_TIME_COST and ARGON2_PARALLELISM must be at least 1, "
        "and ARGON2_MEMORY_COST (KiB) at least 8 times ARGON2_PARALLELISM."
    )
# The Flask server's SECURITY_PASSWORD_SALT: passwords imported from it (import_flask_users) are
# checked with it. Unset (or empty): an imported password never verifies.
FLASK_PASSWORD_SALT = env.str("FLASK_PASSWORD_SALT", default="") or None
# The Flask app's bcrypt cost (passlib's default, 12): while imported hashes remain, every failed
# login also checks a bcrypt hash of this cost that the server made (equal timing), so that it
# costs what checking an imported account's hash costs.
FLASK_PASSWORD_BCRYPT_ROUNDS = env.int("FLASK_PASSWORD_BCRYPT_ROUNDS", default=12)
if not 4 <= FLASK_PASSWORD_BCRYPT_ROUNDS <= 16:
    raise ImproperlyConfigured("FLASK_PASSWORD_BCRYPT_ROUNDS must be between 4 and 16.")
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The hosted pages speak these (chosen by `ui_locales`, else Accept-Language); the API's messages
# are the contract's, in English. PAGES_LANGUAGES: language codes, each known to Django.
_PAGES_LANGUAGES = env.list("PAGES_LANGUAGES", default=["en", "de"])
_unknown = [code for code in _PAGES_LANGUAGES if code not in LANG_INFO or "name_local" not in LANG_INFO[code]]
if _unknown or not _PAGES_LANGUAGES:
    raise ImproperlyConfigured(f"PAGES_LANGUAGES: {', '.join(_unknown) or 'empty'}: give language codes Django knows (en, de, fr, pt-br, ...).")
LANGUAGES = [(code, LANG_INFO[code]["name_local"]) for code in _PAGES_LANGUAGES]
# The operator's translations (PAGES_DIR/locale) come before the app's.
LOCALE_PATHS = [*_pages_dirs("locale"), BASE_DIR / "accounts" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Times with seconds and the time zone wherever a page shows one (the admin's, first).
FORMAT_MODULE_PATH = ["authserver.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Production serves the files `collectstatic` gathered, compressed and with hashed names;
# development serves them from the apps, so nothing needs collecting first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# A file missing from the manifest is served under its plain name rather than failing the page.
WHITENOISE_MANIFEST_STRICT = False

# Request bodies of an auth API are small; refuse large ones before parsing them.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.sessions.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "core.schema.ContractAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Auth server API",
    "DESCRIPTION": "Token-based identity and access over REST. Errors: {status, message[, errors]}.",
    # The release, as GET / tells it.
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["core.schema.preprocess_endpoints"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.paths_without_trailing_slash"],
    # /api/docs loads Swagger UI from this server's static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # /api/introspect authenticates resource servers with HTTP Basic, checked in its view.
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "client": {"type": "http", "scheme": "basic", "description": "client_id and client_secret of a resource server."},
            "metrics": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, for Prometheus."},
        }
    },
}


def _rate(name: str, default: str) -> str:
    """Read a rate in DRF's N/period form (s, m, h, d), or `none`."""
    value = env.str(name, default=default)
    if not re.fullmatch(r"\s*(none|\d+\s*/\s*[smhd][a-z]*)\s*", value, re.IGNORECASE):
        raise ImproperlyConfigured(f"{name}={value!r}: use N/second, N/minute, N/hour, N/day or none.")
    return value


# What a sign-in checks after the password, in order (accounts.signin.stages): two-factor.
SIGNIN_STAGES = ["accounts.mfa.stages.two_factor"]

# Rate limits, counted in CACHES (core.ratelimit). Client addresses count per address, IPv6
# per /64. Failed logins per email and client address:
LOGIN_RATE = _rate("LOGIN_RATE", "10/min")
# Failed password or two-factor checks per account, from any address, on every endpoint that makes
# one (login, change password, delete account, change email, two-factor, the admin login). At the
# limit every check for the account is refused, the right password included: the trade-off is
# that anyone can lock an account's password checks for up to an hour by failing 20 times. A
# password reset by email clears the password failures; the two-factor failures are counted apart
# too, at this same rate, and a reset leaves that count (it gives no more code guesses).
LOGIN_ACCOUNT_RATE = _rate("LOGIN_ACCOUNT_RATE", "20/hour")
# Failed logins per client address, over all emails (one address trying many accounts).
LOGIN_ADDRESS_RATE = _rate("LOGIN_ADDRESS_RATE", "100/hour")
# Registrations per client address.
SIGNUP_RATE = _rate("SIGNUP_RATE", "30/hour")
# Emails sent to one address (confirmation, resend, recovery); security notices are not refused.
EMAIL_RATE = _rate("EMAIL_RATE", "5/hour")
# Unauthenticated requests that send email (recovery, confirmation resend) per client address,
# answered or refused.
EMAIL_REQUEST_RATE = _rate("EMAIL_REQUEST_RATE", "20/hour")
# The per-address limits (LOGIN_ADDRESS_RATE, SIGNUP_RATE, EMAIL_REQUEST_RATE) count an IPv6
# client per /64 and also per /48, whose allowance is this many times the /64's: a site given a
# /48 holds 65,536 /64s. The trade-off: the /64s of one /48 (an office, a small ISP's customers)
# share that allowance. 0 counts no /48.
IPV6_48_RATE_FACTOR = env.int("IPV6_48_RATE_FACTOR", default=4)
if IPV6_48_RATE_FACTOR < 0:
    raise ImproperlyConfigured(f"IPV6_48_RATE_FACTOR={IPV6_48_RATE_FACTOR}: use a whole number, 0 or more.")
# Reverse proxies in front of the server: a comma list of their addresses or CIDR networks (IPv4,
# IPv6). Only on a connection from one of them are X-Forwarded-For and X-Forwarded-Proto believed
# (core.middleware removes both from every other request); the client is then the rightmost
# X-Forwarded-For address that is not a trusted proxy (accounts/addresses.py). Empty: no proxy,
# the client is the connection's address, and both headers are ignored, since anyone can send them.
TRUSTED_PROXIES = [entry.strip() for entry in env.list("TRUSTED_PROXIES", default=[]) if entry.strip()]
try:
    proxy_networks(TRUSTED_PROXIES)
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}.") from None

# Older values of SECRET_KEY, still accepted for what they signed or encrypted (admin sessions,
# email links, secrets at rest), while SECRET_KEY is being rotated (comma list).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# Auth tokens: JWTs signed with the signing keys in the database (accounts.keys.keyring), which
# other services verify with /.well-known/jwks.json. Lifetimes are read when a token is made.
TOKEN_LIFETIME = env.int("TOKEN_LIFETIME", default=3600)
TOKEN_REFRESH_LIFETIME = env.int("TOKEN_REFRESH_LIFETIME", default=604800)
TOKEN_REMEMBER_LIFETIME = env.int("TOKEN_REMEMBER_LIFETIME", default=2592000)
# `iss`: this server's public base URL; `aud`: who the tokens are for (comma list).
TOKEN_ISSUER = env.str("TOKEN_ISSUER", default="http://localhost:8000").rstrip("/")
TOKEN_AUDIENCE = env.list("TOKEN_AUDIENCE", default=["authserver"])
if not TOKEN_AUDIENCE or not all(TOKEN_AUDIENCE):
    raise ImproperlyConfigured("TOKEN_AUDIENCE must name at least one audience (a comma list).")
# The algorithm of keys made from now on (the next rotation); each key keeps its own.
TOKEN_ALGORITHM = env.str("TOKEN_ALGORITHM", default="ES256")
if TOKEN_ALGORITHM not in ("ES256", "RS256"):
    raise ImproperlyConfigured(f"TOKEN_ALGORITHM={TOKEN_ALGORITHM!r}: use ES256 or RS256.")
# Seconds resource servers may cache the key set (Cache-Control of /.well-known/jwks.json).
JWKS_MAX_AGE = env.int("JWKS_MAX_AGE", default=300)
# simplejwt makes and checks the token's envelope; signing is accounts.sessions.tokens's backend, so
# no token is ever signed with SECRET_KEY.
SIMPLE_JWT = {
    "ALGORITHM": "ES256",
    "SIGNING_KEY": None,
    "LEEWAY": 0,
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
}

# The OpenID provider (accounts.oidc, on django-oauth-toolkit and oauthlib). Its tokens are signed
# by the keyring above; its tables are the app's own (the toolkit's models are swapped).
OIDC_ACCESS_TOKEN_LIFETIME = env.int("OIDC_ACCESS_TOKEN_LIFETIME", default=300)
OIDC_ID_TOKEN_LIFETIME = env.int("OIDC_ID_TOKEN_LIFETIME", default=300)
OIDC_CODE_LIFETIME = env.int("OIDC_CODE_LIFETIME", default=60)
# A refresh token lives while its session does, and at most this long unused (seconds).
OIDC_REFRESH_TOKEN_LIFETIME = env.int("OIDC_REFRESH_TOKEN_LIFETIME", default=2592000)
# Seconds in which a client may retry the refresh it just made (the answer lost on the way) and
# get the same tokens again; any other use of a spent refresh token revokes its family. 0: never.
OIDC_REFRESH_REUSE_GRACE = env.int("OIDC_REFRESH_REUSE_GRACE", default=10)
for _name in ("OIDC_ACCESS_TOKEN_LIFETIME", "OIDC_ID_TOKEN_LIFETIME", "OIDC_CODE_LIFETIME", "OIDC_REFRESH_TOKEN_LIFETIME"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]}: give a number of seconds, 1 or more.")
if OIDC_REFRESH_REUSE_GRACE < 0:
    raise ImproperlyConfigured(f"OIDC_REFRESH_REUSE_GRACE={OIDC_REFRESH_REUSE_GRACE}: give seconds, 0 or more.")
# The hosted pages (sign-in, consent, sign-out): the product's name and logo (a URL), as users see them.
PRODUCT_NAME = env.str("PRODUCT_NAME", default="Auth server").strip() or "Auth server"
PRODUCT_LOGO_URL = env.str("PRODUCT_LOGO_URL", default="").strip()
LOGIN_URL = "/signin"
OAUTH2_PROVIDER_APPLICATION_MODEL = "accounts.Client"
OAUTH2_PROVIDER_GRANT_MODEL = "accounts.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "accounts.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "accounts.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "accounts.IDToken"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": TOKEN_ISSUER,
    "OAUTH2_VALIDATOR_CLASS": "accounts.oidc.validator.Validator",
    "OAUTH2_BACKEND_CLASS": "oauth2_provider.oauth2_backends.OAuthLibCore",
    "ACCESS_TOKEN_GENERATOR": "accounts.oidc.tokens.access_token_generate",
    # Without it the toolkit makes refresh tokens with ACCESS_TOKEN_GENERATOR: each would be a signed
    # access token too (at+jwt), good at any resource server until its exp. Opaque and random instead.
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "SCOPES": {
        "openid": "Sign you in",
        "profile": "Your name",
        "email": "Your email address",
        "groups": "The groups you belong to",
        "offline_access": "Stay signed in when you are away",
    },
    "DEFAULT_SCOPES": ["openid"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": OIDC_ACCESS_TOKEN_LIFETIME,
    "ID_TOKEN_EXPIRE_SECONDS": OIDC_ID_TOKEN_LIFETIME,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": OIDC_CODE_LIFETIME,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OIDC_REFRESH_TOKEN_LIFETIME,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # The grace is accounts.oidc's own (the same tokens again, not new ones).
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOW_URI_WILDCARDS": False,
    "REQUEST_APPROVAL_PROMPT": "auto",
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": True,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# Webhooks (accounts.webhooks; docs/webhooks.md). The worker (manage.py deliver_webhooks) retries a
# failed delivery after each of these waits in turn (seconds, comma list), then marks it failed.
WEBHOOK_RETRY_SCHEDULE = [int(value) for value in env.list("WEBHOOK_RETRY_SCHEDULE", default=["5", "300", "1800", "7200", "18000", "36000", "86400"])]
if any(value < 0 for value in WEBHOOK_RETRY_SCHEDULE):
    raise ImproperlyConfigured("WEBHOOK_RETRY_SCHEDULE: give seconds, 0 or more, as a comma list (e.g. 5,300,1800).")


def _duration(name: str, default: str) -> int:
    """Seconds from a duration: a number of seconds, or a number and a unit s, m, h or d (5d, 12h)."""
    value = env.str(name, default=default).strip().lower()
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", value)
    if not match:
        raise ImproperlyConfigured(f"{name}={value!r}: give seconds, or a number and s, m, h or d (e.g. 5d).")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


# An endpoint all of whose deliveries failed for this long is disabled (and flagged in the admin).
WEBHOOK_DISABLE_AFTER = _duration("WEBHOOK_DISABLE_AFTER", "5d")
# Seconds an attempt may take (connecting, and each read of the answer).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
# Seconds a worker holds a delivery it attempts; a worker that died mid-attempt leaves it to
# another after this. Longer than WEBHOOK_TIMEOUT.
WEBHOOK_LEASE = env.float("WEBHOOK_LEASE", default=60.0)
# Seconds the worker waits for work between rounds when not woken (PostgreSQL wakes it at once).
WEBHOOK_POLL_INTERVAL = env.float("WEBHOOK_POLL_INTERVAL", default=1.0)
# Allow endpoints on loopback, private and link-local addresses, and over plain http (a private
# network of services). Off: https only, public addresses only (DEBUG on allows both too).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
if WEBHOOK_TIMEOUT <= 0 or WEBHOOK_POLL_INTERVAL <= 0:
    raise ImproperlyConfigured("WEBHOOK_TIMEOUT and WEBHOOK_POLL_INTERVAL: give seconds, more than 0.")
if WEBHOOK_LEASE <= WEBHOOK_TIMEOUT:
    raise ImproperlyConfigured(f"WEBHOOK_LEASE={WEBHOOK_LEASE} must be longer than WEBHOOK_TIMEOUT={WEBHOOK_TIMEOUT}.")

# Two-factor sign-in (accounts.mfa.totp): the issuer that authenticator apps show next to the account
# (the otpauth URI's issuer and label prefix). The URI format forbids a colon in it.
MFA_ISSUER = env.str("MFA_ISSUER", default="Auth server").strip()
if not MFA_ISSUER or ":" in MFA_ISSUER:
    raise ImproperlyConfigured(f"MFA_ISSUER={MFA_ISSUER!r}: give a name, without a colon (e.g. Auth server).")

# Validation tokens (emailed links).
CONFIRMATION_MAX_AGE = env.int("CONFIRMATION_MAX_AGE", default=86400)
RECOVERY_MAX_AGE = env.int("RECOVERY_MAX_AGE", default=3600)

# Links in emails: <CLIENT_ORIGIN><CONFIRMATION_URL>/<token> and <CLIENT_ORIGIN><RECOVER_URL>/<token>.
CLIENT_ORIGIN = env.str("CLIENT_ORIGIN", default="http://localhost:3000").strip().rstrip("/")
if "," in CLIENT_ORIGIN:
    raise ImproperlyConfigured(
        f"CLIENT_ORIGIN={CLIENT_ORIGIN!r}: one origin, the frontend the links in emails open. List every "
        "frontend that calls the API from a browser in CORS_ALLOWED_ORIGINS (a comma list)."
    )
CONFIRMATION_URL = env.str("CONFIRMATION_URL", default="/confirm").rstrip("/")
RECOVER_URL = env.str("RECOVER_URL", default="/recover").rstrip("/")

# CORS: the frontends that call the API from a browser (a comma list of origins, scheme://host[:port];
# by default the one at CLIENT_ORIGIN). Tokens travel in the Authorization header, never in
# cookies, so credentials stay off.
CORS_ALLOWED_ORIGINS = [
    origin.strip().rstrip("/") for origin in env.list("CORS_ALLOWED_ORIGINS", default=[CLIENT_ORIGIN]) if origin.strip()
]
for _origin in CORS_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[^/?#\s]+", _origin):
        raise ImproperlyConfigured(
            f"CORS_ALLOWED_ORIGINS: {_origin!r} is not an origin; give scheme://host[:port], "
            "e.g. https://app.example.com, without a path."
        )
CORS_URLS_REGEX = r"^/api/.*$"

# Passkeys (accounts.passkeys): the WebAuthn relying party. WEBAUTHN_RP_ID is the domain passkeys are
# bound to (default: TOKEN_ISSUER's host); a frontend on app.example.com and this server on
# auth.example.com share passkeys with WEBAUTHN_RP_ID=example.com. WEBAUTHN_ORIGINS lists the pages
# allowed to run a ceremony: by default CLIENT_ORIGIN, CORS_ALLOWED_ORIGINS and TOKEN_ISSUER's
# origin, those of them whose host the RP ID covers (the host itself or a parent domain of it).
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="").strip().lower().rstrip(".")
WEBAUTHN_RP_NAME = env.str("WEBAUTHN_RP_NAME", default="").strip() or MFA_ISSUER
WEBAUTHN_ORIGINS = [origin.strip().rstrip("/") for origin in env.list("WEBAUTHN_ORIGINS", default=[]) if origin.strip()]


def _host(origin: str) -> str:
    match = re.fullmatch(r"(https?)://([^/?#\s:@]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?", origin)
    return match.group(2).lower() if match else ""


def _origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of a URL: TOKEN_ISSUER, a base URL, may carry a path."""
    match = re.match(r"(https?://[^/?#]*)", url)
    return match.group(1) if match else url


def _serialized(origin: str) -> str:
    """An origin as a browser writes it in clientDataJSON (which the library compares as text):
    the host in lower case, without its scheme's default port."""
    match = re.fullmatch(r"(https?)://([^/?#\s:@]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?", origin)
    if not match:
        return origin
    scheme, host, port = match.groups()
    default = {"http": ":80", "https": ":443"}[scheme]
    return f"{scheme}://{host.lower()}{port if port and port != default else ''}"


def _covered(host: str, rp_id: str) -> bool:
    return host == rp_id or host.endswith("." + rp_id)


# A WEBAUTHN_RP_ID set by hand must be a domain; one taken from an IP-address TOKEN_ISSUER only
# leaves passkeys unusable (browsers refuse an IP address), which a system check warns about.
_DOMAIN = r"(?![0-9.]+$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
if WEBAUTHN_RP_ID and not re.fullmatch(_DOMAIN, WEBAUTHN_RP_ID):
    raise ImproperlyConfigured(
        f"WEBAUTHN_RP_ID={WEBAUTHN_RP_ID!r}: passkeys need a domain name (e.g. example.com), not an IP address; "
        "set WEBAUTHN_RP_ID, or a TOKEN_ISSUER with a domain name."
    )
WEBAUTHN_RP_ID = WEBAUTHN_RP_ID or _host(_origin_of(TOKEN_ISSUER)).strip("[]")
if WEBAUTHN_ORIGINS:
    for _origin in WEBAUTHN_ORIGINS:
        if not _host(_origin):
            raise ImproperlyConfigured(
                f"WEBAUTHN_ORIGINS: {_origin!r} is not an origin; give scheme://host[:port], e.g. https://app.example.com."
            )
        if not _covered(_host(_origin), WEBAUTHN_RP_ID):
            raise ImproperlyConfigured(
                f"WEBAUTHN_ORIGINS: the host of {_origin!r} is not covered by WEBAUTHN_RP_ID={WEBAUTHN_RP_ID!r}: "
                "the RP ID must be that host or a parent domain of it (a browser refuses the ceremony otherwise)."
            )
    WEBAUTHN_ORIGINS = list(dict.fromkeys(_serialized(_origin) for _origin in WEBAUTHN_ORIGINS))
else:
    WEBAUTHN_ORIGINS = list(
        dict.fromkeys(
            _serialized(origin)
            for origin in (CLIENT_ORIGIN, *CORS_ALLOWED_ORIGINS, _origin_of(TOKEN_ISSUER))
            if _host(origin) and _covered(_host(origin), WEBAUTHN_RP_ID)
        )
    )
CORS_ALLOW_CREDENTIALS = False

# Email: EMAIL_BACKEND is `smtp` (to EMAIL_HOST) or `console` (printed to standard output);
# by default smtp when EMAIL_HOST is set, else console. In production the console must be asked
# for by name: it prints every email to the log, recovery links included, and whoever reads the
# log could then take over any account.
MAIL_SENDER = env.str("MAIL_SENDER", default="Auth Server <noreply@localhost>")
DEFAULT_FROM_EMAIL = MAIL_SENDER
SERVER_EMAIL = MAIL_SENDER
EMAIL_HOST = env.str("EMAIL_HOST", default="")
_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}
_email_backend = env.str("EMAIL_BACKEND", default="").strip().lower()
if _email_backend not in {"", *_EMAIL_BACKENDS}:
    raise ImproperlyConfigured(f"EMAIL_BACKEND={_email_backend!r}: use smtp or console.")
if _email_backend == "smtp" and not EMAIL_HOST:
    raise ImproperlyConfigured("EMAIL_BACKEND=smtp needs EMAIL_HOST, the SMTP server to send through.")
if not DEBUG and not EMAIL_HOST and _email_backend != "console":
    raise ImproperlyConfigured(
        "EMAIL_HOST is not set, and EMAIL_BACKEND is not console: set EMAIL_HOST (and EMAIL_USERNAME, "
        "EMAIL_PASSWORD) to send email by SMTP, or set EMAIL_BACKEND=console to print every email "
        "to the log on purpose. Console email in production prints recovery links to the log."
    )
EMAIL_BACKEND = _EMAIL_BACKENDS[_email_backend or ("smtp" if EMAIL_HOST else "console")]
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_USERNAME", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_PASSWORD", default="")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
# Implicit TLS (EMAIL_USE_SSL) and STARTTLS (EMAIL_USE_TLS) exclude each other.
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
if EMAIL_USE_SSL and EMAIL_USE_TLS:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true.")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# Production hardening (python manage.py check --deploy; the README lists the variables).
# Whether the client used HTTPS, as the trusted proxy says; never from a client's own header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Health checks come over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^status/?$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading is opt-in: once browsers ship the domain in their preload list, taking it out takes
# months, and every subdomain must serve HTTPS all that time.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# check --deploy's security.W021 only says that a site without preload cannot be submitted to the
# preload list: that is the choice above, so it is not reported while preload is off.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# oauth2_provider.W008 warns that "http" is among ALLOWED_REDIRECT_URI_SCHEMES. The toolkit cannot
# tell a loopback URI from another; our own rule (accounts.clients.models.uri_problem, applied by
# the command and the admin) allows http only on 127.0.0.1, [::1] and localhost (RFC 8252's
# native apps) unless DEBUG is on, and https everywhere else.
SILENCED_SYSTEM_CHECKS.append("oauth2_provider.W008")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A refused form post answers the contract's envelope (the admin's), or the error page in the
# page's language (the hosted sign-in, consent and sign-out pages), not Django's HTML page.
CSRF_FAILURE_VIEW = "accounts.oidc.pages.csrf_failure"
X_FRAME_OPTIONS = "DENY"

# Operations: /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>` (unset: NotFound).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters; make one with " + _GENERATE_KEY + "."
    )
# A bearer token's characters (RFC 6750 b64token): anything else (a space, a non-ASCII letter,
# which a WSGI server reads as Latin-1) could never be sent back, or would escape the redaction
# of "Bearer <token>" in logs (core.logs).
if METRICS_TOKEN and not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", METRICS_TOKEN):
    raise ImproperlyConfigured(
        "METRICS_TOKEN may hold letters, digits and . _ ~ + / = - only; make one with " + _GENERATE_KEY + "."
    )
# Logs: `text` lines, or `json`, one object per line (authserver/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use text or json.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL.")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
