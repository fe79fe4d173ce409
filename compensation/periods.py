"""Days and months in the deployment's ``TIME_ZONE``: the one place dates become time ranges.

Reports, the dashboard, list filters and budgets all count a date as the day
it is in ``TIME_ZONE`` (UTC by default), from its midnight to the next.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

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
    if since is not None:
        bounds[f"{field}__gte"] = day_start(since)
    if until is not None and until < date.max:  # the last representable day runs to the end of time
        bounds[f"{field}__lt"] = day_start(until + timedelta(days=1))
    return Q(**bounds)


def month_start(moment: datetime) -> date:
    """The first day of ``moment``'s calendar month in TIME_ZONE: the month budgets are counted in."""
    return local_date(moment).replace(day=1)
