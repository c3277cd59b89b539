"""Auth tokens: JWTs signed with the current signing key, that any service can verify with the
public keys of /.well-known/jwks.json.

simplejwt's `Token` checks the envelope (type, `exp`, `jti`) of the tokens it is given, which
auth_token_issue writes in the same claims (TOKEN_TYPE_CLAIM, JTI_CLAIM); its backend here
hands signing and verification to PyJWT through accounts.keys.jose, with the key the header's `kid`
names and that key's own algorithm (no `alg` from the token is trusted). Claims: `iss`, `aud`,
`sub` (the user's public id), `exp`, `iat`, `jti`, `sid` (the session), `email`, `email_verified`,
`groups`, `amr`.

A token is valid while its session is open. This module is the one place that decides whether a
token may be used, for the API's authentication class and for introspection alike:
auth_token_decode checks the token itself (no SQL), SessionRead reads its session joined with
the user (one query), token_session_check applies the contract's checks in their order, and
token_authenticate does the three for a request.

Verifying an ECDSA signature costs ~70 µs, and a client sends the same token for up to
TOKEN_LIFETIME: each worker remembers the tokens it has verified (a bounded memo keyed by the
exact token string), re-checks their expiry on every use, and forgets those of a key that is no
longer published.

The session read is explicit SQL, built from the models' public metadata (`_meta.db_table`,
`get_field(...).column`, `concrete_fields`) and run with `connection.cursor()`; each column's
value goes through the converters that Django's own `QuerySet.raw()` applies to it (the
backend's, then the field's: `from_db_value`), and `Model.from_db` makes the instances, so they
are the objects `Session.objects.select_related("user")` returns, at a tenth of its cost in
Python. SQLite and PostgreSQL alike.
"""

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.db.models import Field
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from accounts.keys import jose
from accounts.keys.keyring import keyring
from accounts.sessions.models import Session
from accounts.users.models import User
from core.errors import AccountDisabled, AccountNotActive, AuthError, TokenInvalid

# Tokens remembered per worker: a few MiB at most.
MEMO_SIZE = 4096
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]
# The latest epoch second a datetime can hold (9999-12-31T23:59:59Z).
_MAX_EPOCH = 253402300799


def _now() -> datetime:
    """Return the current time; the one clock of this module, so tests can move it."""
    return timezone.now()


def _lifetime() -> timedelta:
    """TOKEN_LIFETIME, read at each use (tests and operators may change it)."""
    return timedelta(seconds=settings.TOKEN_LIFETIME)


class KeyringBackend(TokenBackend):
    """simplejwt's token backend for the keys of accounts.keys.keyring."""

    def __init__(self, *, issuer: str, audience: tuple[str, ...]):
        super().__init__(algorithm="ES256", audience=list(audience), issuer=issuer, leeway=0)
        self._verified = functools.lru_cache(maxsize=MEMO_SIZE)(self._verify)

    def encode(self, payload: dict) -> str:
        keys = keyring.keyset()
        return jose.encode(payload, private_key=keys.private_key, algorithm=keys.signing_algorithm, kid=keys.signing_kid)

    def decode(self, token: str, verify: bool = True) -> dict:
        if not verify or not isinstance(token, str):
            raise TokenBackendError("Token is invalid")
        try:
            payload, kid = self._verified(token)
        except (jose.InvalidToken, ValueError, TypeError) as exc:
            raise TokenBackendError("Token is invalid") from exc
        if kid not in keyring.keyset().verifying:
            # Its key was retired since the token was verified.
            raise TokenBackendError("Token is invalid")
        # A copy: the caller may change its token's payload, never the memo's.
        return dict(payload)

    def _verify(self, token: str) -> tuple[dict, str]:
        kid = jose.unverified_kid(token)
        key = keyring.verifying_key(kid) if kid else None
        if key is None:
            raise jose.InvalidToken("unknown key")
        payload = jose.decode(
            token,
            public_key=key.public_key,
            algorithm=key.algorithm,
            issuer=self.issuer,
            audience=self.audience,
            required=REQUIRED_CLAIMS,
        )
        # PyJWT reads "123" as a number; this server writes whole seconds as JSON integers only.
        for claim in ("exp", "iat"):
            if type(payload[claim]) is not int or not 0 <= payload[claim] <= _MAX_EPOCH:
                raise jose.InvalidToken(f"{claim} is not a number of seconds")
        return payload, kid

    def forget(self, kids=None) -> None:
        self._verified.cache_clear()


@functools.cache
def _backend(issuer: str, audience: tuple[str, ...]) -> KeyringBackend:
    backend = KeyringBackend(issuer=issuer, audience=audience)
    keyring.on_unpublished.append(backend.forget)
    return backend


def token_backend() -> KeyringBackend:
    return _backend(settings.TOKEN_ISSUER, tuple(settings.TOKEN_AUDIENCE))


class AuthToken(Token):
    """The token a sign-in hands out."""

    token_type = "auth"

    def get_token_backend(self) -> KeyringBackend:
        return token_backend()

    @property
    def lifetime(self) -> timedelta:
        return _lifetime()

    def verify(self) -> None:
        """Check exp, jti and type (simplejwt), then the types of the claims this server reads."""
        super().verify()
        payload = self.payload
        for claim in ("sub", "sid", "jti"):
            if not isinstance(payload.get(claim), str) or not payload[claim]:
                raise TokenError(f"Token has no valid {claim}")
        amr = payload.get("amr")
        if not isinstance(amr, list) or not all(isinstance(method, str) for method in amr):
            raise TokenError("Token has no valid amr")

    @property
    def session_id(self) -> str:
        return self.payload["sid"]

    @property
    def subject(self) -> str:
        return self.payload["sub"]


def _audience():
    audience = settings.TOKEN_AUDIENCE
    return audience[0] if len(audience) == 1 else list(audience)


@functools.cache
def _group_names_sql(vendor: str) -> str:
    """The SELECT of a user's group names, from the models' metadata (quoted by the backend, hence
    one per vendor): building and compiling the ORM's queryset costs a refresh some 0.3 ms."""
    quote = connection.ops.quote_name
    groups, through = Group._meta, User.groups.through._meta
    group_table, through_table = quote(groups.db_table), quote(through.db_table)
    return (
        f"SELECT {group_table}.{quote(groups.get_field('name').column)} FROM {group_table} "
        f"INNER JOIN {through_table} ON {through_table}.{quote(through.get_field('group').column)} "
        f"= {group_table}.{quote(groups.pk.column)} "
        f"WHERE {through_table}.{quote(through.get_field('user').column)} = %s"
    )


def _group_names(user_id: int) -> list[str]:
    """The names of the user's groups (one query; each login and refresh runs it)."""
    with connection.cursor() as cursor:
        cursor.execute(_group_names_sql(connection.vendor), [user_id])
        return [name for (name,) in cursor.fetchall()]


def auth_token_issue(*, session: Session, user: User, now: datetime | None = None) -> str:
    """Return a new auth token of this session: it lives TOKEN_LIFETIME, never past the session.

    `groups` is read now (one query), so a change of the user's groups shows in the next token.
    """
    now = now or _now()
    # The envelope simplejwt's Token would give a new token (type and jti), with this server's
    # own iat and exp: a Token built here would work out an exp and iat only to lose them.
    payload = {
        api_settings.TOKEN_TYPE_CLAIM: AuthToken.token_type,
        api_settings.JTI_CLAIM: uuid4().hex,
        "iss": settings.TOKEN_ISSUER,
        "aud": _audience(),
        "sub": str(user.public_id),
        "sid": session.public_id,
        "email": user.email,
        "email_verified": user.is_email_verified,
        "groups": sorted(_group_names(user.pk)),
        "amr": list(session.amr),
        "iat": int(now.timestamp()),
        "exp": int(min(now + _lifetime(), session.expires_at).timestamp()),
    }
    return token_backend().encode(payload)


def auth_token_decode(raw: str) -> AuthToken:
    """Return the verified token (signature by a published key, iss, aud, expiry, type; no SQL), or
    raise TokenInvalid."""
    if not raw or raw.lower() == "bearer":
        raise TokenInvalid
    try:
        return AuthToken(raw)
    except TokenError as exc:
        raise TokenInvalid from exc


# --- The token's session: one query, then the contract's checks ----------------------------------


@dataclass(frozen=True)
class _Plan:
    """A SessionRead's SQL on one connection, and what turns its row into instances."""

    sql: str
    session_names: tuple[str, ...]
    user_names: tuple[str, ...]
    # (column index, the converters Django applies to it, the expression they are given)
    converters: tuple[tuple[int, tuple, object], ...]


@dataclass(frozen=True)
class Extra:
    """One more value selected with the session: `sql(connection)` is a parenthesised scalar
    expression (a subquery, say) whose `%s` take the read's `extra` parameters; its value is
    converted as `field`'s and set on the session as the attribute `name`."""

    name: str
    field: Field
    sql: Callable


def _quoted(connection, model, field: Field) -> str:
    quote = connection.ops.quote_name
    return f"{quote(model._meta.db_table)}.{quote(field.column)}"


def _selected(model, names: tuple[str, ...] | None, *always: str) -> list[Field]:
    """The model's concrete fields to select, in the model's order: `names` (or all) and `always`."""
    if names is None:
        return list(model._meta.concrete_fields)
    wanted = {model._meta.get_field(name).attname for name in (*names, *always)}  # unknown names raise
    return [field for field in model._meta.concrete_fields if field.attname in wanted]


class SessionRead:
    """The session with a given public id, joined with its user: one query, no ORDER BY (the id
    is unique, as get() would have none), the value a parameter of the SQL, never its text.

    Returns the Session (None if there is none) with its `user` set, as `select_related("user")`
    would. `session_fields`/`user_fields` select fewer columns (as `.only()` would: the others are
    deferred, and reading one costs a query); the primary keys and the session's `user` always
    come. The SQL is built once per connection (each thread has its own, and a connection's
    converters are its own).
    """

    def __init__(
        self,
        *,
        session_fields: tuple[str, ...] | None = None,
        user_fields: tuple[str, ...] | None = None,
        extra: Extra | None = None,
        using: str = "default",
    ):
        self.session_fields, self.user_fields, self.extra, self.using = session_fields, user_fields, extra, using
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _plan(self, connection) -> _Plan:
        user_key = Session._meta.get_field("user")
        session_columns = _selected(Session, self.session_fields, Session._meta.pk.name, user_key.name)
        user_columns = _selected(User, self.user_fields, User._meta.pk.name)
        columns = [(Session, field) for field in session_columns] + [(User, field) for field in user_columns]
        select = [_quoted(connection, model, field) for model, field in columns]
        if self.extra is not None:
            select.append(f"({self.extra.sql(connection)}) AS {connection.ops.quote_name(self.extra.name)}")
            columns.append((self.extra.field.model, self.extra.field))
        quote = connection.ops.quote_name
        session_table, user_table = quote(Session._meta.db_table), quote(User._meta.db_table)
        sql = (
            f"SELECT {', '.join(select)} FROM {session_table} INNER JOIN {user_table} "
            f"ON ({_quoted(connection, Session, user_key)} = {_quoted(connection, User, User._meta.pk)}) "
            f"WHERE {_quoted(connection, Session, Session._meta.get_field('public_id'))} = %s"
        )
        # What QuerySet.raw() applies to a model's column: the backend's converters for its type
        # (SQLite's text datetimes, UUIDs, booleans), then the field's own (from_db_value).
        converters = []
        for index, (model, field) in enumerate(columns):
            column = field.get_col(field.model._meta.db_table)
            # The converters Django's own raw() and compiler apply (backend and field hooks, not in the
            # reference docs): tests/sessions/test_session_read.py pins the Django release they were read on.
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if functions:
                converters.append((index, tuple(functions), column))
        return _Plan(
            sql,
            tuple(field.attname for field in session_columns),
            tuple(field.attname for field in user_columns),
            tuple(converters),
        )

    def __call__(self, session_id: str, extra: tuple = ()) -> Session | None:
        """Return the session with this public id and its user, or None; `extra`: the parameters
        of the Extra's SQL."""
        if type(session_id) is not str:
            raise TypeError(f"a session id is a str, not {type(session_id).__name__}")
        connection = connections[self.using]
        plan = self._plans.get(connection)
        if plan is None:
            plan = self._plans[connection] = self._plan(connection)
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, (*extra, session_id))
            row = cursor.fetchone()
        if row is None:
            return None
        if plan.converters:
            row = list(row)
            for index, functions, column in plan.converters:
                value = row[index]
                for convert in functions:
                    value = convert(value, column, connection)
                row[index] = value
        middle = len(plan.session_names)
        end = middle + len(plan.user_names)
        session = Session.from_db(connection.alias, plan.session_names, row[:middle])
        user = User.from_db(connection.alias, plan.user_names, row[middle:end])
        _USER.set_cached_value(session, user)
        if self.extra is not None:
            setattr(session, self.extra.name, row[end])
        return session

    def forget(self) -> None:
        """Build the SQL again at the next call (tests that change the database's settings)."""
        self._plans = weakref.WeakKeyDictionary()


_USER = Session._meta.get_field("user")

# Every authenticated request and refresh reads it: the session with its whole user, which the
# views use as request.user.
session_with_user = SessionRead()


def session_check(*, user: User, session: Session, now: datetime | None = None) -> None:
    """Raise the contract's error if this user may not use this session's tokens, in its order."""
    if not user.is_active:
        raise AccountDisabled
    if user.is_deactivated:
        raise AccountNotActive
    if not session.is_open(now):
        raise TokenInvalid


def token_session_check(*, token: AuthToken, session: Session | None) -> Session:
    """Return the session if it is the token's (read by its `sid`, with its user) and the token
    may be used, or raise the contract's error: TokenInvalid, AccountDisabled, AccountNotActive.

    The error carries the user when there is one (`exc.user`), for the audit trail.
    """
    if session is None or str(session.user.public_id) != token.subject:
        raise TokenInvalid
    try:
        session_check(user=session.user, session=session)
    except AuthError as exc:
        exc.user = session.user
        raise
    return session


def token_authenticate(*, raw: str) -> tuple[AuthToken, Session]:
    """Return the verified token and its open session (with the user), or raise the contract's
    error (token_session_check). One SQL query."""
    token = auth_token_decode(raw)
    return token, token_session_check(token=token, session=session_with_user(token.session_id))
