"""Hot-path statements run on the session's DBAPI cursor, compiled once per dialect.

``AsyncSession.execute`` of a cached Core statement still builds, per call, an execution
context, a compiled-parameter dict and a result with its metadata, through about a dozen
layers (``Session._execute_internal`` → ``Connection._execute_clauseelement`` →
``_init_compiled`` → ``_exec_single_context`` …): measured at about three times the cost
of sqlite3's own ``execute`` on a checkout create. A ``Prepared`` statement is compiled
once per dialect, with its parameters' order, bind and result processors and Python-side
column defaults worked out then; a call builds the DBAPI parameters with one loop and
runs them through ``Connection._cursor_execute``, the path SQLAlchemy itself uses for
special-case statements. So the statement still goes through the session's connection and
transaction (``BEGIN IMMEDIATE`` on SQLite), the ``before_cursor_execute`` and
``after_cursor_execute`` events, echo logging and SQLAlchemy's DBAPI error wrapping
(``IntegrityError``, a dropped PostgreSQL connection invalidated); the session is flushed
first when it has pending changes, as ``execute`` does with autoflush.

Only statements whose SQL does not change per call qualify: an expanding ``IN`` or a
``literal_execute`` parameter, a default computed by the database through a clause or a
sequence, or ``setinputsizes`` typing is refused when the statement is compiled.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from models.greenlets import run

_GIVEN = object()  # a parameter the caller passes


class _Slot(NamedTuple):
    """One DBAPI parameter: the caller's ``key``, else ``default()``, else ``constant``."""

    key: str
    default: Callable[[], Any] | None
    constant: Any
    process: Callable[[Any], Any] | None


class PreparedResult:
    """Rows (named tuples, read by attribute as SQLAlchemy's ``Row``) and the row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None


class _Compiled:
    """A statement compiled for one dialect, ready to run."""

    def __init__(self, statement: ClauseElement, dialect: Dialect,
                 keys: Sequence[str]) -> None:
        if dialect.bind_typing is BindTyping.SETINPUTSIZES:
            raise NotImplementedError(f"{dialect.name}: setinputsizes typing")
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("an expanding or literal_execute parameter changes the SQL "
                             "per call: run this statement with session.execute")
        unknown = set(keys).difference(bind.key for bind in compiled.binds.values())
        if unknown:  # session.execute would drop them silently: a misspelt column
            raise ValueError(f"neither a column nor a parameter of the statement: "
                             f"{', '.join(sorted(unknown))}")
        if compiled.escaped_bind_names:
            raise ValueError(f"bind names that need escaping: {compiled.escaped_bind_names}")
        self.sql = compiled.string
        self.positional = compiled.positional
        self.sequence = dialect.execute_sequence_format
        # The value SQLAlchemy would prefetch for a column not given: its default in an
        # INSERT, its onupdate in an UPDATE.
        defaults = {**{column.key: column.default for column in compiled.insert_prefetch},
                    **{column.key: column.onupdate for column in compiled.update_prefetch}}
        processors = compiled._bind_processors
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        assert names is not None
        self.names = tuple(names)
        if any(bind.callable for bind in compiled.binds.values()):
            raise ValueError("a bind parameter with a callable value")
        self.slots = tuple(
            _Slot(bind.key, _python_default(defaults[bind.key]) if bind.key in defaults
                  else None, _GIVEN if bind.required else bind.effective_value,
                  cast(Callable[[Any], Any] | None, processors.get(name)))
            for name in names for bind in (compiled.binds[name],))
        self.result_keys = tuple(column[0] for column in compiled._result_columns)
        self.result_types = tuple(column[3] for column in compiled._result_columns)
        self.row: Callable[..., Any] | None = None
        self.result_processors: tuple[Callable[[Any], Any] | None, ...] = ()

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = []
        for key, default, constant, process in self.slots:
            if key in params:
                value = params[key]
            elif default is not None:
                value = default()
            elif constant is _GIVEN:
                raise KeyError(f"prepared statement parameter {key!r} missing")
            else:
                value = constant
            values.append(value if process is None else process(value))
        if self.positional:
            return self.sequence(values)
        return dict(zip(self.names, values, strict=True))

    def rows(self, cursor: Any, dialect: Dialect) -> list[Any]:
        raw = cursor.fetchall()
        if self.row is None:  # the first rows: the driver's column types are known now
            description = cursor.description
            self.result_processors = tuple(
                type_._cached_result_processor(dialect, entry[1])
                for type_, entry in zip(self.result_types, description, strict=True))
            row_type: Any = namedtuple("PreparedRow", self.result_keys)  # type: ignore[misc]
            self.row = row_type._make
        make, processors = self.row, self.result_processors
        if not any(processors):
            return [make(values) for values in raw]
        return [make([value if process is None else process(value)
                      for process, value in zip(processors, values, strict=True)])
                for values in raw]


def _python_default(default: Any) -> Callable[[], Any]:
    """A column's Python-side default as a no-argument callable (a scalar or a function
    such as ``utc_now``); a default the database must compute cannot be prefetched."""
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable and not default.is_sequence:
        function = default.arg  # SQLAlchemy's wrapper, taking the execution context
        return lambda: function(None)
    raise ValueError(f"column default {default!r} is computed by the database")


class Prepared:
    """A Core statement run through ``execute`` with far less per-call work than
    ``session.execute`` (see the module). As ``session.execute`` does, it is compiled
    for the names of a call's parameters: an ``insert(table)`` or ``update(table)``
    without ``values`` sets the columns given (an INSERT's others get their Python
    defaults), and a name that is neither a column nor a bind parameter is refused
    (``session.execute`` ignores it). One
    compilation per dialect and set of names (in the order given), kept as long as the
    dialect (its engine's) is."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a Core statement: {statement!r}")
        self.statement = statement
        # Weakly: engines come and go (tests build hundreds), each with its own dialect.
        self._compiled: WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Compiled]] = \
            WeakKeyDictionary()

    def compiled(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        by_names = self._compiled.get(dialect)
        if by_names is None:
            by_names = self._compiled[dialect] = {}
        found = by_names.get(names)
        if found is None:
            found = by_names[names] = _Compiled(self.statement, dialect, sorted(names))
        return found

    async def execute(self, db: AsyncSession, params: Mapping[str, Any]) -> PreparedResult:
        """Run in ``db``'s transaction (begun if it was not)."""
        return await run(self._execute, db.sync_session, params)

    def _execute(self, session: SyncSession, params: Mapping[str, Any]) -> PreparedResult:
        if session.autoflush:
            session.flush()  # pending ORM changes first, as execute's autoflush does
        connection: Connection = session.connection()
        compiled = self.compiled(connection.dialect, tuple(params))
        parameters = compiled.parameters(params)
        cursor = connection.connection.cursor()
        # Events, echo logging, the dialect's do_execute and DBAPI error wrapping (with
        # invalidation of a connection the database dropped); on an error SQLAlchemy
        # closes the cursor itself. The adapters buffer the rows at execute.
        connection._cursor_execute(cursor, compiled.sql, parameters)
        try:
            rows = compiled.rows(cursor, connection.dialect) if cursor.description else []
            return PreparedResult(rows, cursor.rowcount)
        finally:
            cursor.close()
