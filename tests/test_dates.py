"""Parsing ZVM dates (both encodings) and formatting filter values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.zvm.dates import ZvmDate, format_filter_date, parse_zvm_date

# Millisecond-precision aware datetimes within what every warehouse stores.
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Date(1444792425000+0200)/", ZvmDate(datetime(2015, 10, 14, 3, 13, 45, tzinfo=UTC), 120)),
        (
            "/Date(1444792425365)/",
            ZvmDate(datetime(2015, 10, 14, 3, 13, 45, 365000, tzinfo=UTC), None),
        ),
        ("\\/Date(928142400000+0300)\\/", ZvmDate(datetime(1999, 5, 31, 9, 20, tzinfo=UTC), 180)),
        (
            "/Date(1444792425000-0530)/",
            ZvmDate(datetime(2015, 10, 14, 3, 13, 45, tzinfo=UTC), -330),
        ),
        ("/Date(-1000)/", ZvmDate(datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), None)),
        (
            "2025-02-08T21:50:46.574Z",
            ZvmDate(datetime(2025, 2, 8, 21, 50, 46, 574000, tzinfo=UTC), 0),
        ),
        ("2025-02-08T21:50:46+05:30", ZvmDate(datetime(2025, 2, 8, 16, 20, 46, tzinfo=UTC), 330)),
        (
            "2025-02-08T21:50:46.5741234-03:00",
            ZvmDate(datetime(2025, 2, 9, 0, 50, 46, 574123, tzinfo=UTC), -180),
        ),
        ("2025-02-08T21:50:46", ZvmDate(datetime(2025, 2, 8, 21, 50, 46, tzinfo=UTC), None)),
    ],
)
def test_parse_known_values(text: str, expected: ZvmDate) -> None:
    assert parse_zvm_date(text) == expected


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_date(text: str | None) -> None:
    assert parse_zvm_date(text) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("/Date(abc)/", "unrecognised date"),
        ("not a date", "unrecognised date"),
        ("2025-13-45T00:00:00Z", "not a valid ISO-8601"),
        ("2025-02-08", "has no time of day"),
        ("/Date(1444792425000+0299)/", "impossible UTC offset"),
        ("/Date(999999999999999)/", "out of range"),
        (1444792425000, "expected a date string, got int"),
    ],
)
def test_parse_errors_say_why(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_zvm_date(value)


@given(moments, st.one_of(st.none(), offsets))
def test_wcf_round_trip_keeps_offset_without_applying_it(
    moment: datetime, offset: int | None
) -> None:
    # Written here from the documented form, not by any code under test.
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    suffix = "" if offset is None else f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}"
    suffix += "" if offset is None else f"{abs(offset) % 60:02d}"
    text = f"/Date({ms}{suffix})/"
    assert parse_zvm_date(text) == ZvmDate(moment, offset)
    assert parse_zvm_date(text.replace("/", "\\/")) == ZvmDate(moment, offset)


@given(moments, offsets)
def test_iso_round_trip_applies_offset(moment: datetime, offset: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    text = local.isoformat(timespec="milliseconds")  # the standard library writes it here
    assert parse_zvm_date(text) == ZvmDate(moment, offset)
    assert parse_zvm_date(moment.isoformat(timespec="milliseconds")[:-6] + "Z") == ZvmDate(
        moment, 0
    )


@given(moments, offsets)
def test_filter_dates_are_utc_whole_seconds_with_z(moment: datetime, offset: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    lower = format_filter_date(local)
    upper = format_filter_date(local, round_up=True)
    assert lower.endswith("Z") and len(lower) == len("2025-02-08T21:50:46Z")
    assert datetime.fromisoformat(lower) == moment.replace(microsecond=0)
    assert moment <= datetime.fromisoformat(upper) < moment + timedelta(seconds=1)


def test_filter_dates_refuse_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_filter_date(datetime(2025, 1, 1))
