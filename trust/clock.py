"""The service's one notion of now, and of a time read back from the database.

Every time the service keeps is UTC. SQLite stores no zone, so a time read back from it is
naive; ``as_utc`` makes it aware again (PostgreSQL's are aware already). Services take a
``clock`` argument defaulting to ``utc_now`` so that tests can pass their own.
"""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import overload

BEIJING = timezone(timedelta(hours=8))


def utc_now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...


@overload
def as_utc(value: None) -> None: ...


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC time: a naive value (from SQLite) was written as UTC; an
    aware one (from PostgreSQL, in its session's zone) is converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_z(value: datetime | None) -> str | None:
    """ISO 8601 in UTC to the second, with ``Z``, as reports and the API show times (None: not yet)."""
    return None if value is None else as_utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def beijing_date(value: datetime) -> date:
    """The calendar date in China (UTC+8) at ``value``: the dates printed on licences and seals."""
    return value.astimezone(BEIJING).date()


def parse_aware(value: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 time with its offset (``2027-01-31T16:00:00Z``) as an aware
    datetime; None when ``value`` is not one, or has no offset (callers say which field)."""
    if len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None
