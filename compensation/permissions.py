"""Role permissions (the README's "Roles")."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from compensation.roles import Role, user_has_role


class RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_has_role(request.user, *self.roles)


class IsAgentOrManager(RolePermission):
    """Agents and managers work with offer sets (agents only with their own)."""

    roles = (Role.AGENT, Role.MANAGER)
    message = "Only agents and managers work with offer sets."


class IsManager(RolePermission):
    roles = (Role.MANAGER,)
    message = "Only managers may do this."


class IsManagerOrAnalyst(RolePermission):
    roles = (Role.MANAGER, Role.ANALYST)
    message = "Only managers and analysts may read this."
