"""Setting a group's authority limits (``manage.py set_authority_limit``; the admin validates the same way).

How the limits apply is compensation/authority.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from django.contrib.auth.models import Group
from django.db import transaction

from compensation.errors import InvalidInput
from compensation.models import AuthorityLimit
from policies.money import money

# What the columns hold: 12 digits, 2 of them decimals.
AMOUNT_MAX = Decimal("9999999999.99")
NONE_WORDS = frozenset({"none", "null", "-"})
GROUP_NAME_MAX = Group._meta.get_field("name").max_length


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()  # leave the stored value as it is


def authority_amount_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be a limit, in words; None when it can: money of at least 0, at most 2 decimals."""
    if not value.is_finite():
        return f"{value} is not an amount"
    if value < 0:
        return f"{value} is negative; a limit is 0 or more"
    if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):
        return f"{value} has more than 2 decimals"
    if value > AMOUNT_MAX:
        return f"{value} is more than the largest amount, {AMOUNT_MAX}"
    return None


def authority_amount_parse(text: str, *, field: str) -> Decimal | None:
    """An amount as typed (``"250"``, ``"99.50"``), or None for ``none``; :class:`InvalidInput` naming ``field``."""
    cleaned = text.strip()
    if cleaned.lower() in NONE_WORDS:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput({field: [f"{text!r} is not an amount such as 100.00 (or none)"]}) from None
    problem = authority_amount_problem(value)
    if problem is not None:
        raise InvalidInput({field: [problem]})
    return value.quantize(Decimal("0.01"))


@dataclass(frozen=True)
class AuthorityLimitSet:
    """What :func:`authority_limit_set` did: the limits before (None: the group had none) and after
    (None: the group's limit row was removed)."""

    group: Group
    group_created: bool
    before: tuple[Decimal | None, Decimal | None] | None
    after: tuple[Decimal | None, Decimal | None] | None

    def summary(self) -> str:
        lines = [f"created group {self.group.name!r}"] if self.group_created else []
        if self.after is None:
            lines.append(
                f"group {self.group.name!r} has no authority limit of its own"
                + (" (removed)" if self.before is not None else "")
            )
            return "\n".join(lines)
        parts = []
        for n, unit in enumerate(("per option", "per month")):
            new = _shown(self.after[n])
            old = None if self.before is None else _shown(self.before[n])
            parts.append(f"{new} {unit}" + (f" (was {old})" if old is not None and old != new else ""))
        lines.append(f"authority limit of group {self.group.name!r}: {', '.join(parts)}")
        return "\n".join(lines)


def _shown(value: Decimal | None) -> str:
    return money(value) if value is not None else "none"


def authority_limit_set(
    *, group_name: str, per_option: Decimal | _Keep | None = KEEP, per_month: Decimal | _Keep | None = KEEP
) -> AuthorityLimitSet:
    """Set the group's limits, creating the group if missing; :data:`KEEP` leaves a stored value as it is.

    Both limits none removes the group's limit row (its agents fall back to their other groups' limits, or
    ``AGENT_APPROVAL_LIMIT``). Everything is checked before anything is written.
    """
    name = group_name.strip()
    if not name:
        raise InvalidInput({"group": ["a group name is required"]})
    if len(name) > GROUP_NAME_MAX:
        raise InvalidInput({"group": [f"at most {GROUP_NAME_MAX} characters"]})
    for field, value in (("per_option", per_option), ("per_month", per_month)):
        if isinstance(value, Decimal) and (problem := authority_amount_problem(value)) is not None:
            raise InvalidInput({field: [problem]})
    with transaction.atomic():
        group, created = Group.objects.get_or_create(name=name)
        limit = AuthorityLimit.objects.select_for_update().filter(group=group).first()
        before = None if limit is None else (limit.per_option, limit.per_month)
        stored = before or (None, None)
        after = (
            stored[0] if isinstance(per_option, _Keep) else per_option,
            stored[1] if isinstance(per_month, _Keep) else per_month,
        )
        if after == (None, None):
            if limit is not None:
                limit.delete()
            return AuthorityLimitSet(group, created, before, None)
        limit = limit or AuthorityLimit(group=group)
        limit.per_option, limit.per_month = after
        limit.save()
    return AuthorityLimitSet(group, created, before, after)
