"""The SQLite writer formats times itself: it must store what SQLAlchemy's DateTime would have."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from service.store.sink import _SqliteTime


@given(st.lists(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False), min_size=1, max_size=20))
def test_every_time_is_formatted_as_sqlalchemy_stores_it(stamps: list[float]) -> None:
    fmt = _SqliteTime()  # one instance across many times: the per-second cache must never go stale
    for ts in sorted(stamps) + stamps:
        expected = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert fmt(ts) == expected
