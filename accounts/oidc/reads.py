"""The token endpoint's reads, each one SELECT whose SQL is built once per connection: the refresh
token with its client, user, session and access token, and a client by its client_id.

Every refresh reads the first, every token request the second. The querysets that say the same
(`RefreshToken.objects.select_related("application", "user", "session", "access_token")
.filter(token_checksum=...)`, the live row first;
`Client.objects.filter(client_id=...)`) cost more CPU to compile than to run, every time; here the
SQL is made once, and each call only runs it and turns the row into instances, as
accounts.sessions.tokens.SessionRead does for the session and its user.
"""

import weakref
from dataclasses import dataclass

from django.db import connections

from accounts.clients.models import Client
from accounts.oidc.models import RefreshToken


@dataclass(frozen=True)
class _Plan:
    sql: str
    # (model, its attnames, first column, last column + 1): the row's own model, then each relation
    parts: tuple
    # (column index, the converters Django applies to it, the expression they are given)
    converters: tuple


class RowRead:
    """One row of `model` whose `lookup` field equals a value, with the forward relations named in
    `relations` ((name, nullable), as select_related sets them): `live_first` orders by that
    nullable column, NULL first then the latest."""

    def __init__(self, model, lookup: str, relations=(), *, live_first: str | None = None):
        self.model, self.lookup, self.relations, self.live_first = model, lookup, relations, live_first
        self._plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _plan(self, connection) -> _Plan:
        quote = connection.ops.quote_name
        meta = self.model._meta
        table = quote(meta.db_table)
        select, parts, columns, joins = [], [], [], []
        entries = [(self.model, None, False)] + [
            (meta.get_field(name).related_model, meta.get_field(name), nullable) for name, nullable in self.relations
        ]
        for model, relation, nullable in entries:
            fields = list(model._meta.concrete_fields)
            start = len(select)
            select += [f"{quote(model._meta.db_table)}.{quote(field.column)}" for field in fields]
            columns += fields
            parts.append((model, tuple(field.attname for field in fields), start, len(select)))
            if relation is not None:
                other = quote(model._meta.db_table)
                kind = "LEFT OUTER JOIN" if nullable else "INNER JOIN"
                target = quote(relation.target_field.column)
                joins.append(f"{kind} {other} ON ({table}.{quote(relation.column)} = {other}.{target})")
        sql = f"SELECT {', '.join(select)} FROM {table} {' '.join(joins)} WHERE {table}.{quote(meta.get_field(self.lookup).column)} = %s"
        if self.live_first:
            column = f"{table}.{quote(meta.get_field(self.live_first).column)}"
            sql += f" ORDER BY CASE WHEN {column} IS NULL THEN 0 ELSE 1 END, {column} DESC"
        sql += " LIMIT 1"
        converters = []
        for index, field in enumerate(columns):
            column = field.get_col(field.model._meta.db_table)
            # The converters Django's own compiler applies (backend and field hooks, not in the
            # reference docs), as SessionRead applies them: tests/oidc/test_reads.py compares results.
            functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if functions:
                converters.append((index, tuple(functions), column))
        return _Plan(sql, tuple(parts), tuple(converters))

    def __call__(self, value: str, using: str = "default"):
        """The row (with its relations), or None."""
        if type(value) is not str:
            raise TypeError(f"looked up by a str, not {type(value).__name__}")
        connection = connections[using]
        plan = self._plans.get(connection)
        if plan is None:
            plan = self._plans[connection] = self._plan(connection)
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, (value,))
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
        instance = model.from_db(connection.alias, names, row[start:end])
        for (name, _nullable), (model, names, start, end) in zip(self.relations, relations):
            values = row[start:end]
            related = None if values[0] is None else model.from_db(connection.alias, names, values)
            self.model._meta.get_field(name).set_cached_value(instance, related)
        return instance

    def forget(self) -> None:
        """Build the SQL again at the next call (tests that change the database's settings)."""
        self._plans = weakref.WeakKeyDictionary()


# The token endpoint's refresh: the row of a refresh token's checksum, the live one first (several
# may share a checksum: uniqueness is (token_checksum, revoked)).
refresh_token_by_checksum = RowRead(
    RefreshToken,
    "token_checksum",
    (("application", False), ("user", False), ("session", False), ("access_token", True)),
    live_first="revoked",
)

# Every token request's client, by the client_id it authenticates with.
client_by_id = RowRead(Client, "client_id")
