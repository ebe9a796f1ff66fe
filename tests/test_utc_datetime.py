"""``models.base.UTCDateTime`` binds on SQLite exactly the text SQLAlchemy's own DATETIME
processor writes (stored timestamps compare and sort as before), in one step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from models.base import UTCDateTime

_TIMES = [
    datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 12, 3, 9, 30, 15, tzinfo=UTC),  # no microseconds: still six digits
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year below 1000: zero-padded
    datetime(2026, 12, 3, 23, 30, tzinfo=timezone(timedelta(hours=-5))),  # → next day UTC
    datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=timezone(timedelta(hours=2))),
]


@pytest.mark.parametrize("value", _TIMES, ids=str)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    dialect = sqlite.dialect()
    # What compiled statements use: the processor of the type's dialect implementation.
    ours = UTCDateTime()._cached_bind_processor(dialect)
    theirs = DateTime(timezone=True)._cached_bind_processor(dialect)
    assert ours is not None
    assert theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC))
    assert ours(None) is None


def test_naive_datetimes_are_refused_on_every_back_end() -> None:
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        process = UTCDateTime()._cached_bind_processor(dialect)
        assert process is not None
        with pytest.raises(ValueError, match="naive"):
            process(datetime(2026, 12, 3))
