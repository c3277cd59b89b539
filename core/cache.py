"""The default shared cache (a table in the database) that never drops a live entry.

The cache holds the rate limits' counters. Django's database cache, once it holds MAX_ENTRIES,
deletes the first third of its keys in key order, live or not: anyone able to create entries
(each registration attempt from a new address does) could push a victim's failed-login counters
out, and with them LOGIN_ACCOUNT_RATE. Here culling deletes expired entries only; every live one
expires by itself within its limit's period (a day at most), so the table stays bounded by the
traffic of one period.
"""

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections


class DatabaseCache(DjangoDatabaseCache):
    def _cull(self, db, cursor, now, num):
        connection = connections[db]
        cursor.execute(
            f"DELETE FROM {connection.ops.quote_name(self._table)} WHERE {connection.ops.quote_name('expires')} < %s",
            [connection.ops.adapt_datetimefield_value(now)],
        )
