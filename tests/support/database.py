"""What a request sends to the database, for tests that check it."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def sql_parameters():
    """Collect every parameter the request sends to the database (raw, before any quoting)."""
    seen: list = []

    def wrapper(execute, sql, params, many, context):
        rows = params if many else [params]
        for row in rows or []:
            seen.extend(row.values() if isinstance(row, dict) else (row or []))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen
