"""The project's admin site: Django's, with its titles and the operations dashboard."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

from reporting.views import dashboard_view


class RecoveryAdminSite(admin.AdminSite):
    site_header = "Recovery administration"
    site_title = "Recovery"
    index_title = "Compensation policies and operations"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [path("dashboard/", self.admin_view(self.dashboard), name="dashboard"), *super().get_urls()]

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(request, site=self)
