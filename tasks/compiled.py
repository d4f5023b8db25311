"""The task routes' hottest queries, written with the ORM and compiled to SQL once per thread.

Building and compiling a queryset costs the API more CPU than the database spends running it
(docs/performance.md), and these queries differ from request to request only in their values. Each
one is an ordinary queryset, so the ownership rule, the columns and the ordering stay the models' and
the views' own: it is built once with a marker in place of each value, and every run puts the
request's values where the markers went in the SQL's parameters.
"""

import threading
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

# Values no real id has, so each can be found again among the compiled query's parameters.
MARKER_BASE = -(2**62)
# Compiled variants kept per thread (a variant per page size and offset): a bound, not a working set.
MAX_VARIANTS = 256


class Compiled(NamedTuple):
    compiler: SQLCompiler
    sql: str
    slots: list[str | None]  # for each parameter, the name of the value that goes there, if any
    params: list[Any]
    converters: dict[int, Any]


class CompiledQuery:
    """`build(**markers)` compiled once per thread and variant; `dicts` and `instances` run it.

    A variant is whatever `build` bakes into the SQL itself rather than its parameters (LIMIT and
    OFFSET): pass it as `variant`, and `build` receives it too.
    """

    def __init__(self, build: Callable[..., QuerySet[Any, Any]]) -> None:
        self.build = build
        self.local = threading.local()

    def rows(self, variant: Hashable = None, **values: int) -> tuple[SQLCompiler, list[Any]]:
        """The compiler (for the column names) and the rows, converted as the ORM converts them."""
        compiler, sql, slots, params, converters = self.compiled(variant, sorted(values))
        bound = [
            values[slot] if slot is not None else param for slot, param in zip(slots, params, strict=True)
        ]
        with compiler.connection.cursor() as cursor:
            cursor.execute(sql, bound)
            fetched = cursor.fetchall()
        return compiler, list(compiler.apply_converters(fetched, converters)) if converters else fetched

    def dicts(self, variant: Hashable = None, **values: int) -> list[dict[str, Any]]:
        """Rows as `.values()` gives them: the queryset must be a `.values()` one."""
        compiler, rows = self.rows(variant, **values)
        query = compiler.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def instances(self, variant: Hashable = None, **values: int) -> list[Any]:
        """Model instances with their annotations, as iterating the queryset gives them (no
        select_related)."""
        compiler, rows = self.rows(variant, **values)
        model = compiler.query.model
        assert model is not None and compiler.klass_info is not None
        fields = compiler.klass_info["select_fields"]
        attnames = [compiler.select[index][0].target.attname for index in fields]
        found = []
        for row in rows:
            instance = model.from_db(compiler.using, attnames, row[fields[0] : fields[-1] + 1])
            for name, index in compiler.annotation_col_map.items():
                setattr(instance, name, row[index])
            found.append(instance)
        return found

    def compiled(self, variant: Hashable, names: list[str]) -> Compiled:
        cache: dict[Hashable, Compiled] = self.local.__dict__.setdefault("cache", {})
        key = (variant, tuple(names))
        if key not in cache:
            if len(cache) >= MAX_VARIANTS:
                cache.clear()
            cache[key] = self.compile(variant, names)
        return cache[key]

    def compile(self, variant: Hashable, names: list[str]) -> Compiled:
        markers = {name: MARKER_BASE + index for index, name in enumerate(names)}
        queryset = self.build(variant, **markers) if variant is not None else self.build(**markers)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        slot_of = {marker: name for name, marker in markers.items()}
        slots = [slot_of.get(param) if isinstance(param, int) else None for param in params]
        missing = set(names) - set(slots)
        assert not missing, f"{missing} not found among the compiled query's parameters"
        # What the ORM applies to each row (SQLite's text timestamps to datetimes; nothing on PostgreSQL).
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        return Compiled(compiler, sql, slots, list(params), converters)
