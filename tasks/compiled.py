"""The task routes' hottest queries, written with the ORM and compiled to SQL once per thread.

Building and compiling a queryset costs the API more CPU than the database spends running it
(docs/performance.md), and these queries differ from request to request only in their values. Each
one is an ordinary queryset, so the ownership rule, the columns and the ordering stay the models' and
the views' own: it is built once with a marker in place of each value, and every run puts the
request's values where the markers went in the SQL's parameters.

It runs the compiled SQL itself, so it mirrors what Django does between a queryset and its rows; after
a Django upgrade, check that these still hold (django/db/models/query.py and sql/compiler.py):

- `SQLCompiler.as_sql()` returns the SQL and its parameters, each value a parameter of its own, and
  fills `compiler.select`, `compiler.klass_info` and `compiler.annotation_col_map` as it goes;
- `SQLCompiler.get_converters()` and `apply_converters()` are what `results_iter()` applies to rows;
- `ValuesIterable`: a `.values()` row's keys are `query.selected` in order when it is set, else
  `extra_select`, then `values_select`, then `annotation_select`;
- `ModelIterable`: a model's columns are `select[klass_info['select_fields']]`, contiguous, named by
  `column.target.attname`, turned into an instance by `Model.from_db(db, attnames, values)`, each
  annotation then set from its `annotation_col_map` position;
- what those iterables and `QuerySet._fetch_all` do beyond that is not mirrored, so a queryset that
  needs it is refused when it is compiled (`refuse_unsupported`): select_related's related
  populators, prefetch_related, a related manager's known related objects, values_list()'s tuples,
  and select_for_update, whose in-a-transaction check `as_sql` would make at the first run only.
"""

import threading
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable
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
        # What build's querysets give, "dicts" (.values()) or "instances", once one is compiled.
        self.kind: str | None = None

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
        self.expect("dicts")
        query = compiler.query
        if query.selected:
            names = list(query.selected)
        else:
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def instances(self, variant: Hashable = None, **values: int) -> list[Any]:
        """Model instances with their annotations, as iterating the queryset gives them."""
        compiler, rows = self.rows(variant, **values)
        self.expect("instances")
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

    def expect(self, kind: str) -> None:
        if kind != self.kind:
            wanted = "a .values() queryset" if kind == "dicts" else "a queryset of model instances"
            raise TypeError(f"CompiledQuery.{kind}() needs {wanted}; use {self.kind}() for this one")

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
        kind = refuse_unsupported(queryset)
        if self.kind not in (None, kind):
            raise TypeError(f"CompiledQuery's build gave {self.kind} for one variant and {kind} for another")
        self.kind = kind
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        slot_of = {marker: name for name, marker in markers.items()}
        slots = [slot_of.get(param) if isinstance(param, int) else None for param in params]
        missing = set(names) - set(slots)
        if missing:  # the marker went into the SQL's text, or was changed on its way: its value would too
            raise ValueError(f"{sorted(missing)} not found among the compiled query's parameters")
        # What the ORM applies to each row (SQLite's text timestamps to datetimes; nothing on PostgreSQL).
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        return Compiled(compiler, sql, slots, list(params), converters)


def refuse_unsupported(queryset: Any) -> str:
    """The shape of rows the queryset gives ("dicts" or "instances"), or a TypeError naming what it
    asks for that running its SQL alone would silently leave out."""
    if not isinstance(queryset, QuerySet):
        raise TypeError(f"CompiledQuery needs a QuerySet, not {type(queryset).__name__}")
    if queryset._iterable_class is ValuesIterable:
        kind = "dicts"
    elif queryset._iterable_class is ModelIterable:
        kind = "instances"
    else:  # values_list() (flat, named), dates(), datetimes(), a custom iterable
        rows = queryset._iterable_class.__name__
        raise TypeError(f"CompiledQuery gives dicts (.values()) or model instances, not {rows} rows")
    # Attributes of Django's QuerySet the stubs leave out.
    prefetched = queryset._prefetch_related_lookups  # type: ignore[attr-defined]
    known_related = queryset._known_related_objects  # type: ignore[attr-defined]
    if prefetched:
        raise TypeError("CompiledQuery does not support prefetch_related(): its queries would not run")
    if queryset.query.select_related:
        raise TypeError(
            "CompiledQuery does not support select_related(): the related objects would be dropped"
        )
    if queryset.query.select_for_update:
        # as_sql refuses it outside a transaction, but only when it compiles: not on each reuse.
        raise TypeError("CompiledQuery does not support select_for_update(): its transaction check runs once")
    if kind == "instances" and known_related:
        raise TypeError(
            "CompiledQuery does not support a related manager's queryset: the instances would not get "
            "the object they were reached from; filter the model's own manager instead"
        )
    return kind
