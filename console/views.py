"""The console's pages: login and logout here; the agents' page and the managers' queue beside."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from console.access import agents_and_managers


class ConsoleLoginView(auth_views.LoginView):
    """Session login (django-axes counts failures and locks out, as for the admin)."""

    template_name = "console/login.html"
    redirect_authenticated_user = True
    next_page = "console:home"


class ConsoleLogoutView(auth_views.LogoutView):
    next_page = "console:login"


@agents_and_managers
def console_home(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "console/home.html", {})
