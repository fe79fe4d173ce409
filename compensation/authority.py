"""An agent's authority: how much they may give without a manager's approval, per option and per month.

Groups may set limits (:class:`~compensation.models.AuthorityLimit`). An agent's limit per option is the
highest ``per_option`` among their groups that set one, else ``AGENT_APPROVAL_LIMIT``; their monthly limit
the highest ``per_month`` (none: no monthly limit). Managers and superusers have no limit.

The groups' limits are read with the user's token and role (compensation/authentication.py) and kept on
the user object, like its role groups; a user signed in otherwise costs one small query, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max, Sum

from compensation.models import AuthorityLimit, OutcomeSubmission
from compensation.periods import day_start, month_start
from compensation.roles import Role, user_has_role
from policies.money import cents

# pg_advisory_xact_lock(MONTH_LOCK, user id): one monthly check at a time per agent (any 32-bit number
# that no other advisory lock of this database uses).
MONTH_LOCK = 0x52435631  # "RCV1"
COUNTED = (
    OutcomeSubmission.Status.PENDING,
    OutcomeSubmission.Status.AWAITING_APPROVAL,
    OutcomeSubmission.Status.FAILED,
    OutcomeSubmission.Status.RECORDED,
)


@dataclass(frozen=True, slots=True)
class Authority:
    per_option: Decimal | None  # None: never needs approval (managers)
    per_month: Decimal | None  # None: no monthly limit


UNLIMITED = Authority(per_option=None, per_month=None)


@dataclass(frozen=True, slots=True)
class MonthOverLimit:
    """A choice that takes the agent past their monthly limit: what it comes to with this one, and the limit."""

    total: Decimal
    limit: Decimal
    month: str  # "2026-12", the month in TIME_ZONE


def _amount(value: Any) -> Decimal | None:
    """A limit as the database answers it (SQLite: a float or an integer) as cents."""
    return None if value is None else cents(Decimal(str(value)))


def user_limits_preset(user: Any, per_option: Any, per_month: Any) -> None:
    """Tell the user object the highest limits among its groups, read along with it (authentication.py)."""
    user._recovery_limits = (_amount(per_option), _amount(per_month))


def _group_limits(user: Any) -> tuple[Decimal | None, Decimal | None]:
    """The highest ``per_option`` and ``per_month`` among the user's groups that set one, read once per user object."""
    cached = getattr(user, "_recovery_limits", None)
    if cached is None:
        row = AuthorityLimit.objects.filter(group__user=user).aggregate(
            per_option=Max("per_option"), per_month=Max("per_month")
        )
        user_limits_preset(user, row["per_option"], row["per_month"])
        cached = user._recovery_limits
    return cached


def user_authority(user: Any) -> Authority:
    """What this user may give without a manager's approval; :data:`UNLIMITED` for managers and superusers."""
    if user_has_role(user, Role.MANAGER):
        return UNLIMITED
    per_option, per_month = _group_limits(user)
    if per_option is None:
        per_option = settings.AGENT_APPROVAL_LIMIT
    return Authority(per_option=per_option, per_month=per_month)


def _next_month(day: Any) -> Any:
    return day.replace(year=day.year + 1, month=1) if day.month == 12 else day.replace(month=day.month + 1)


def month_chosen_total(*, user: Any, now: datetime) -> Decimal:
    """What the options this user chose this calendar month (TIME_ZONE) cost: pending, awaiting approval,
    failed and recorded; not rejected; declines and remedies cost nothing here."""
    first = month_start(now)
    total = (
        OutcomeSubmission.objects.filter(
            submitted_by=user,
            submitted_at__gte=day_start(first),
            submitted_at__lt=day_start(_next_month(first)),
            status__in=COUNTED,
            offer__isnull=False,
        ).aggregate(total=Sum("offer__estimated_cost"))["total"]
        or 0
    )
    return cents(Decimal(str(total)))


def month_over_limit(*, user: Any, amount: Decimal, limit: Decimal, now: datetime) -> MonthOverLimit | None:
    """Whether choosing an option of ``amount`` takes the user past ``limit`` this month; None when it fits.

    Must run inside the transaction that writes the choice: on PostgreSQL it first takes a lock per
    user, held to the commit, so two choices of one agent at once are counted one after the other and
    cannot both slip under the limit. (SQLite runs one writer at a time.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(CAST(%s AS integer), CAST(%s AS integer))", [MONTH_LOCK, user.pk]
            )
    total = month_chosen_total(user=user, now=now) + amount
    if total <= limit:
        return None
    return MonthOverLimit(total=total, limit=limit, month=month_start(now).strftime("%Y-%m"))
