"""The start page at ``/``: where to go from here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def landing(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "landing.html", {})
