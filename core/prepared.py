"""Querysets compiled once per database connection and run again with other values: for the few
reads that every authenticated request, refresh and introspection makes.

Building and compiling a queryset is Python work that Django repeats on every call: for the
session-and-user join of each authenticated request, about 240 µs of the 275 µs the read costs
(the database's own part: about 30 µs, bench/README "Performance"). A PreparedQuery builds its
queryset once per connection, with a stand-in for each value, keeps the SQL, and then runs that
SQL with each call's values, turning the rows into what the queryset itself would return: model
instances (with their `select_related` objects) or, with `flat`, the values of its one column.
Django's own converters and populators do that, as QuerySet's ModelIterable does, so the result
is the same objects, and `assertNumQueries` and the debug cursor see the query as any other.

Only what these reads need: values that are `str` or `int`, compared for equality (the SQL holds
them as parameters, never as text), a queryset with no prefetching and no `known related
objects`. Anything else raises at the first compile. Annotations (a subquery's value, say) land
on each instance as the queryset would set them.
"""

import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import FlatValuesListIterable, ModelIterable, get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    positions: tuple[int, ...]
    converters: tuple[tuple[int, tuple, object], ...]
    # Model mode: the model, where its columns are, and the populators of select_related.
    model: type | None
    start: int
    end: int
    init_list: tuple[str, ...]
    populators: tuple
    # Model mode: each annotation's attribute name and column.
    annotations: tuple[tuple[str, int], ...]


def _stand_in(kind: type):
    """Return a value of this kind that no real parameter of the query will equal."""
    if kind is str:
        return f"prepared-{secrets.token_hex(16)}"
    if kind is int:
        return -(secrets.randbits(48) + 1)
    raise TypeError(f"a prepared query takes str or int values, not {kind.__name__}")


class PreparedQuery:
    """`build(*values)` returns the queryset; `kinds` are the types of its values."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type, using: str = "default"):
        self.build, self.kinds, self.using = build, kinds, using
        # One compile per connection object: each thread has its own, and a connection's
        # converters are its own.
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _compile(self, connection) -> _Compiled:
        stand_ins = [_stand_in(kind) for kind in self.kinds]
        queryset = self.build(*stand_ins)
        if queryset._prefetch_related_lookups or queryset._known_related_objects:
            raise ValueError("a prepared query cannot prefetch or know related objects")
        iterable = queryset._iterable_class
        if iterable not in (ModelIterable, FlatValuesListIterable):
            raise ValueError("a prepared query returns model instances or flat values")
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        positions = []
        for stand_in in stand_ins:
            found = [index for index, param in enumerate(params) if param == stand_in]
            if len(found) != 1:
                raise ValueError(f"each value must be one parameter of the SQL: {sql}")
            positions.append(found[0])
        fields = [column for column, _, _ in compiler.select[: compiler.col_count]]
        converters = tuple(
            (index, tuple(functions), expression)
            for index, (functions, expression) in compiler.get_converters(fields).items()
        )
        model, start, end, init_list, populators, annotations = None, 0, 0, (), (), ()
        if iterable is ModelIterable:
            klass_info, select = compiler.klass_info, compiler.select
            model = klass_info["model"]
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            init_list = tuple(column[0].target.attname for column in select[start:end])
            populators = tuple(get_related_populators(klass_info, select, connection.alias))
            annotations = tuple(compiler.annotation_col_map.items())
        elif compiler.col_count != 1:
            raise ValueError("a flat prepared query selects one column")
        return _Compiled(
            sql, tuple(params), tuple(positions), converters, model, start, end, init_list, populators, annotations
        )

    def __call__(self, *values) -> list:
        """Return what the queryset built with these values would hold, as a list."""
        for value, kind in zip(values, self.kinds, strict=True):
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        connection = connections[self.using]
        compiled = self._compiled.get(connection)
        if compiled is None:
            compiled = self._compiled[connection] = self._compile(connection)
        params = list(compiled.params)
        for position, value in zip(compiled.positions, values):
            params[position] = value
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = [list(row) for row in rows]
            for row in rows:
                for index, functions, expression in compiled.converters:
                    value = row[index]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    row[index] = value
        if compiled.model is None:
            return [row[0] for row in rows]
        objects = []
        for row in rows:
            obj = compiled.model.from_db(connection.alias, compiled.init_list, row[compiled.start : compiled.end])
            for populator in compiled.populators:
                populator.populate(row, obj)
            for name, column in compiled.annotations:
                setattr(obj, name, row[column])
            objects.append(obj)
        return objects

    def forget(self) -> None:
        """Compile again at the next call (tests that change the database's settings)."""
        self._compiled = weakref.WeakKeyDictionary()
