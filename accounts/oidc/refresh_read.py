"""The refresh token's row for the token endpoint: with its client, user, session and access token,
locked, in one SELECT whose SQL is built once per connection.

Every refresh reads it first. The queryset that says the same
(`RefreshToken.objects.select_for_update(of=("self",)).select_related("application", "user",
"session", "access_token").filter(token_checksum=...)`, the live row first) costs more CPU to compile
than the rest of the refresh's SQL together (five tables, some sixty columns), every time; here
the SQL is made once, and each call only runs it and turns the row into instances, as
accounts.sessions.tokens.SessionRead does for the session and its user.
"""

import weakref
from dataclasses import dataclass

from django.db import connections

from accounts.oidc.models import RefreshToken

# The relations read with the token, each a join on the token's own column; the access token is
# missing once the token is spent (LEFT JOIN), the others never are.
_RELATIONS = (("application", False), ("user", False), ("session", False), ("access_token", True))


@dataclass(frozen=True)
class _Plan:
    sql: str
    # (model, its attnames, first column, last column + 1) for the token, then each relation
    parts: tuple
    # (column index, the converters Django applies to it, the expression they are given)
    converters: tuple


def _plan(connection) -> _Plan:
    quote = connection.ops.quote_name
    meta = RefreshToken._meta
    table = quote(meta.db_table)
    models = [(RefreshToken, None)] + [(meta.get_field(name), nullable) for name, nullable in _RELATIONS]
    select, parts, columns, joins = [], [], [], []
    for entry, nullable in models:
        model = entry if entry is RefreshToken else entry.related_model
        fields = list(model._meta.concrete_fields)
        start = len(select)
        select += [f"{quote(model._meta.db_table)}.{quote(field.column)}" for field in fields]
        columns += fields
        parts.append((model, tuple(field.attname for field in fields), start, len(select)))
        if entry is not RefreshToken:
            other = quote(model._meta.db_table)
            kind = "LEFT OUTER JOIN" if nullable else "INNER JOIN"
            target = entry.target_field.column
            joins.append(f"{kind} {other} ON ({table}.{quote(entry.column)} = {other}.{quote(target)})")
    revoked = f"{table}.{quote(meta.get_field('revoked').column)}"
    sql = (
        f"SELECT {', '.join(select)} FROM {table} {' '.join(joins)} "
        f"WHERE {table}.{quote(meta.get_field('token_checksum').column)} = %s "
        f"ORDER BY CASE WHEN {revoked} IS NULL THEN 0 ELSE 1 END, {revoked} DESC LIMIT 1"
    )
    if connection.features.has_select_for_update:
        of = (table,) if connection.features.has_select_for_update_of else ()
        sql += " " + connection.ops.for_update_sql(of=of)
    converters = []
    for index, field in enumerate(columns):
        column = field.get_col(field.model._meta.db_table)
        # The converters Django's own compiler applies (backend and field hooks, not in the reference
        # docs), as SessionRead applies them: tests/oidc/test_refresh_read.py compares the results.
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((index, tuple(functions), column))
    return _Plan(sql, tuple(parts), tuple(converters))


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def refresh_token_locked(checksum: str, using: str = "default"):
    """The refresh token row of this checksum (the live one first, else the latest revoked), with
    its application, user, session and access token set as select_related would set them, locked
    until the transaction ends (where the database locks rows); None if there is none."""
    connection = connections[using]
    plan = _plans.get(connection)
    if plan is None:
        plan = _plans[connection] = _plan(connection)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, (checksum,))
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for index, functions, column in plan.converters:
        value = row[index]
        for convert in functions:
            value = convert(value, column, connection)
        row[index] = value
    (model, names, start, end), *relations = plan.parts
    token = model.from_db(connection.alias, names, row[start:end])
    for (name, _nullable), (model, names, start, end) in zip(_RELATIONS, relations):
        values = row[start:end]
        related = None if values[0] is None else model.from_db(connection.alias, names, values)
        RefreshToken._meta.get_field(name).set_cached_value(token, related)
    return token


def forget() -> None:
    """Build the SQL again at the next call (tests that change the database's settings)."""
    _plans.clear()
