"""The operations dashboard page, served by the project's admin site at /admin/dashboard/."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from reporting.dashboard import TOP_BUDGETS, TOP_LEARNED, dashboard_charts, dashboard_get


def dashboard_view(request: HttpRequest, *, site: AdminSite) -> HttpResponse:
    """The last 30 days of offers, cost, acceptance, satisfaction, and escalations; budgets this month; what the
    ranking learned."""
    # Staff see what their permissions let them see; these figures are outcomes' and escalations'.
    if not request.user.has_perm("compensation.view_outcome"):
        raise PermissionDenied
    dashboard = dashboard_get(now=timezone.now())
    context = {
        **site.each_context(request),
        "title": "Operations dashboard",
        "dashboard": dashboard,
        "charts": dashboard_charts(dashboard),
        "top_learned": TOP_LEARNED,
        "top_budgets": TOP_BUDGETS,
    }
    return TemplateResponse(request, "admin/reporting/dashboard.html", context)
