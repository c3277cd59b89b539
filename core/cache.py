"""The default shared cache (a table in the database): it never drops a live entry, and its `add`
is atomic.

The cache holds the rate limits' counters. Django's database cache, once it holds MAX_ENTRIES,
deletes the first third of its keys in key order, live or not: anyone able to create entries
(each registration attempt from a new address does) could push a victim's failed-login counters
out, and with them LOGIN_ACCOUNT_RATE. Here culling deletes expired entries only; every live one
expires by itself within its limit's period (a day at most), so the table stays bounded by the
traffic of one period.

A rate-limit slot is taken with `add`, which must succeed for one caller only. Django's `add`
reads the row, then writes it: over an expired row, two concurrent adds (in two workers, on
PostgreSQL) both see it expired and both succeed, so every slot freed by the window could be
taken twice, every window. Here `add` takes an expired row with one conditional UPDATE (the
database re-checks `expires` under the row's lock, so only one of two concurrent updates
matches), else INSERTs (the primary key refuses a second one). Django also rounds expiry times
down to the second, freeing a slot up to a second early; here they are kept to the microsecond.
"""

import base64
import pickle
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import DatabaseError, connections, router, transaction
from django.utils.timezone import now as tz_now


class DatabaseCache(DjangoDatabaseCache):
    def _cull(self, db, cursor, now, num):
        connection = connections[db]
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(self._table)} WHERE {connection.ops.quote_name('expires')} < %s",
            [connection.ops.adapt_datetimefield_value(now)],
        )

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        """Store `value` under `key` unless a live entry holds it; return whether it was stored."""
        key = self.make_and_validate_key(key, version=version)
        timeout = self.get_backend_timeout(timeout)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote = connection.ops.quote_name
        table, cache_key, expires = quote(self._table), quote("cache_key"), quote("expires")
        tz = UTC if settings.USE_TZ else None
        exp = datetime.max if timeout is None else datetime.fromtimestamp(timeout, tz=tz)
        exp = connection.ops.adapt_datetimefield_value(exp)
        now = tz_now() if settings.USE_TZ else datetime.now()
        encoded = self._encoded(value)
        with connection.cursor() as cursor:
            try:
                with transaction.atomic(using=db):
                    cursor.execute(f"SELECT COUNT(*) FROM {table}")
                    if cursor.fetchone()[0] > self._max_entries:
                        self._cull(db, cursor, now, None)
                with transaction.atomic(using=db):
                    cursor.execute(
                        f"UPDATE {table} SET {quote('value')} = %s, {expires} = %s WHERE {cache_key} = %s AND {expires} < %s",
                        [encoded, exp, key, connection.ops.adapt_datetimefield_value(now)],
                    )
                    if cursor.rowcount == 1:
                        return True
                with transaction.atomic(using=db):
                    cursor.execute(
                        f"INSERT INTO {table} ({cache_key}, {quote('value')}, {expires}) VALUES (%s, %s, %s)",
                        [key, encoded, exp],
                    )
            except DatabaseError:
                # The key is taken (the primary key refused the INSERT), or the database is busy:
                # not stored (a rate limit then refuses, rather than count nothing).
                return False
        return True

    def _encoded(self, value) -> str:
        # As Django's DatabaseCache stores a value (its get() reads it back).
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
