"""Roles are Django groups; this module names them and reads a user's role."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    MANAGER = "manager", "Manager (senior manager)"
    ANALYST = "analyst", "Analyst"


# When a user is (wrongly) in several role groups, the most capable one counts.
_PRECEDENCE = [Role.MANAGER, Role.AGENT, Role.ANALYST]


def user_role(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """``superuser``, a :class:`Role` value, ``staff`` for admin-only users, or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "superuser"
    groups = _group_names(user)
    for role in _PRECEDENCE:
        if role.value in groups:
            return role.value
    return "staff" if user.is_staff else None


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    if not user.is_authenticated:
        return False
    return user.is_superuser or bool(_group_names(user) & set(roles))


def _group_names(user: AbstractBaseUser) -> set[str]:
    # Cached on the user object: permission checks run several times per request.
    cached = getattr(user, "_recovery_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._recovery_groups = cached
    return cached
