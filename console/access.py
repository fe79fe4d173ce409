"""Who may use the console: agents and managers (and superusers, as managers); the escalations queue is
managers' only. Anonymous users are sent to the console's login page; other roles get 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from compensation.roles import Role, user_has_role

AGENTS_AND_MANAGERS = (Role.AGENT.value, Role.MANAGER.value)
MANAGERS = (Role.MANAGER.value,)
LOGIN_URL = "console:login"


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return TemplateResponse(request, "console/forbidden.html", {"message": message}, status=403)


def _back_after_login(request: HttpRequest) -> str:
    """Where logging in leads back to: the page itself, never a fragment or a POST-only address (a session that
    expired under a polling status or a Record would land on a bare fragment or a 405). For htmx, the page the
    request came from (``HX-Current-URL``, same host only); for a form post without htmx, the console."""
    if getattr(request, "htmx", False):
        return request.htmx.current_url_abs_path or reverse("console:home")  # None for another origin
    if request.method not in {"GET", "HEAD"}:
        return reverse("console:home")
    return request.get_full_path()


def console_roles(*roles: str, message: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The view is for users in one of ``roles``: anonymous users log in first, others get 403 with ``message``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                back = _back_after_login(request)
                if getattr(request, "htmx", False):  # a fragment cannot log in: send the whole page there
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = redirect_to_login(back, LOGIN_URL).url
                    return response
                return redirect_to_login(back, LOGIN_URL)
            if not user_has_role(request.user, *roles):
                return forbidden(request, message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


agents_and_managers = console_roles(
    *AGENTS_AND_MANAGERS,
    message=(
        "The console is for agents and managers; your role may not use it. Analysts read the reports "
        "through the API (/api/v1/reports/summary/ and the others listed at /api/v1/), with a token."
    ),
)
managers_only = console_roles(*MANAGERS, message="The escalations queue is for managers; your role may not use it.")
