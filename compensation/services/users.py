"""Writes on the run-time side: users and their API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from compensation.roles import Role


@transaction.atomic
def user_token_issue(*, username: str, role: str) -> tuple[AbstractBaseUser, Token, bool]:
    """Create the user if missing, give it exactly this role, return its API token.

    Returns ``(user, token, created)``. The user's other role groups are
    removed so the role is unambiguous; staff and superuser flags are kept.
    """
    if role not in Role.values:
        raise ValidationError({"role": f"unknown role {role!r}; use one of {', '.join(Role.values)}"})
    user_model = get_user_model()
    field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    try:
        username = field.clean(username, None)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages}) from None
    user, created = user_model.objects.get_or_create(**{user_model.USERNAME_FIELD: username})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    groups = {g.name: g for g in Group.objects.filter(name__in=Role.values)}
    missing = set(Role.values) - groups.keys()
    for name in missing:  # a database created without this project's migrations
        groups[name] = Group.objects.create(name=name)
    user.groups.remove(*[groups[name] for name in Role.values if name != role])
    user.groups.add(groups[role])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token, created
