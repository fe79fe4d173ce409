"""Days and months in the deployment's ``TIME_ZONE``: the one place dates become time ranges.

Reports, the dashboard, list filters and budgets all count a date as the day
it is in ``TIME_ZONE`` (UTC by default), from its midnight to the next.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q
from django.utils import timezone


def local_date(moment: datetime) -> date:
    """The calendar day ``moment`` falls on in TIME_ZONE."""
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def day_start(day: date) -> datetime:
    """The midnight that starts ``day`` in TIME_ZONE."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone())


def days_between(field: str, *, since: date | None = None, until: date | None = None) -> Q:
    """``field`` within the days ``since`` to ``until``, both inclusive, either end open.

    ``[midnight of since, midnight after until)``: a range on the column
    itself, so an index on it serves (``__date`` would not).
    """
    bounds = {}
    if since is not None and (start := _representable(day_start(since))) is not None:
        bounds[f"{field}__gte"] = start
    # The last representable day runs to the end of time.
    if until is not None and until < date.max and (end := _representable(day_start(until + timedelta(days=1)))):
        bounds[f"{field}__lt"] = end
    return Q(**bounds)


def _representable(moment: datetime) -> datetime | None:
    """``moment``, or None where it has no UTC time (the first midnight of year 1 east of UTC falls in year 0):
    a bound beyond every stored time, so no bound at all."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return None
    return moment


def month_start(moment: datetime) -> date:
    """The first day of ``moment``'s calendar month in TIME_ZONE: the month budgets are counted in."""
    return local_date(moment).replace(day=1)
