"""Template filters for what the console shows to which role."""

from __future__ import annotations

from typing import Any

from django import template

from compensation.roles import user_has_role
from console.access import MANAGERS

register = template.Library()


@register.filter
def is_manager(user: Any) -> bool:
    """Whether the user may work the escalations queue (a manager, or a superuser)."""
    return user_has_role(user, *MANAGERS)
