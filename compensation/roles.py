"""Roles are Django groups; this module names them and reads a user's role."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    MANAGER = "manager", "Manager (senior manager)"
    ANALYST = "analyst", "Analyst"
    INTEGRATION = "integration", "Integration (customer data feed)"


# When a user is (wrongly) in several role groups, the most capable one counts. The integration is the
# least capable: in another role's group as well, a user has that role, and not the integration's rights
# (see user_is_integration): an agent put in the integration group by mistake cannot set customer facts.
_PRECEDENCE = [Role.MANAGER, Role.AGENT, Role.ANALYST, Role.INTEGRATION]
ROLE_NAMES: tuple[str, ...] = tuple(role.value for role in _PRECEDENCE)


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
    """Whether the user is a superuser or in one of the groups ``roles`` (:class:`Role` values)."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or bool(_group_names(user) & set(roles))


def user_is_integration(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may act as the integration: its role (no other role group) is ``integration``,
    or it is a superuser. Not :func:`user_has_role`, which would let a user of another role in."""
    return user_role(user) in {"superuser", Role.INTEGRATION.value}


def user_roles_preset(user: AbstractBaseUser, names: set[str]) -> None:
    """Tell the user object which role groups it is in, read along with it (compensation/authentication.py).

    ``names`` must be exactly the user's groups among :data:`ROLE_NAMES`; the
    functions above then ask the database nothing.
    """
    user._recovery_roles = frozenset(names)


def _group_names(user: AbstractBaseUser) -> frozenset[str]:
    """The user's role groups (other groups do not matter here), read at most once per user object."""
    # Kept on the user object: permission checks run several times per request.
    cached = getattr(user, "_recovery_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLE_NAMES).values_list("name", flat=True))
        user._recovery_roles = cached
    return cached
