"""Role permissions (the README's "Roles")."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from compensation.roles import Role, user_has_role, user_is_integration


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


class IsIntegration(RolePermission):
    """The integration writes customers; a user whose role is another (a group too many) may not."""

    message = "Only the integration may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_integration(request.user)


class IsIntegrationOrManager(RolePermission):
    message = "Only the integration and managers may read customers."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_integration(request.user) or user_has_role(request.user, Role.MANAGER)
