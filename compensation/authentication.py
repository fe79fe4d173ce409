"""Token authentication that reads the user's role groups in the same query as the token and the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from compensation.roles import ROLE_NAMES, user_roles_preset


class RoleTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, with the role in the one authentication query.

    Each role group the user belongs to is an ``EXISTS`` over the user-group
    table in the token's own ``SELECT`` (plain SQL on SQLite and PostgreSQL),
    and :func:`compensation.roles.user_roles_preset` hands them to
    ``user_role``/``user_has_role``, which would otherwise read the groups with
    a second query on every request. Read per request, never cached: a change
    an admin makes to the user's groups holds from the next request.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        model = self.get_model()
        memberships = get_user_model().groups.through.objects.filter(user_id=OuterRef("user_id"))
        flags = {f"in_role_{n}": Exists(memberships.filter(group__name=name)) for n, name in enumerate(ROLE_NAMES)}
        try:
            token = model.objects.select_related("user").annotate(**flags).get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        user_roles_preset(token.user, {name for n, name in enumerate(ROLE_NAMES) if getattr(token, f"in_role_{n}")})
        return token.user, token
