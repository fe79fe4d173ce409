"""The start page at ``/`` and the API's root at ``/api/v1/``: where to go from here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def landing(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "landing.html", {})


# The API's groups of endpoints, by URL name; a pair is a URL name and what follows its URL, where "{…}" marks
# the part a caller fills in.
ENDPOINTS: dict[str, Any] = {
    "me": "compensation:me",
    "offer_sets": "compensation:offer-set-list",
    "offer_set": ("compensation:offer-set-list", "{offer_set_id}/"),
    "escalations": "compensation:escalation-list",
    "escalation": ("compensation:escalation-list", "{escalation_id}/"),
    "outcomes": "reporting:outcome-list",
    "reports": {
        "summary": "reporting:report-summary",
        "policies": "reporting:report-policies",
        "offer_kinds": "reporting:report-offer-kinds",
        "categories": "reporting:report-categories",
        "agents": "reporting:report-agents",
        "learning": "reporting:report-learning",
    },
    "customer": ("api-root", "customers/{external_id}/"),
    "customers_bulk": "compensation:customer-bulk",
    "simulations": "compensation:simulation-start",
    "simulation": ("compensation:simulation-start", "{simulation_id}/"),
    "events": "compensation:event-list",
    "event": ("compensation:event-list", "{event_id}/"),
    "event_customers": ("compensation:event-list", "{event_id}/customers/"),
    "event_cancel": ("compensation:event-list", "{event_id}/cancel/"),
    "feedback": ("api-root", "feedback/{token}/"),
}


def _urls(request: Request, names: dict[str, Any]) -> dict[str, Any]:
    urls: dict[str, Any] = {}
    for key, name in names.items():
        if isinstance(name, dict):
            urls[key] = _urls(request, name)
        else:
            name, rest = name if isinstance(name, tuple) else (name, "")
            urls[key] = request.build_absolute_uri(reverse(name)) + rest
    return urls


class ApiRootApi(APIView):
    """The API's endpoints, its documentation and how to authenticate. Anyone may read it, with or without a
    token: it names URLs, never data."""

    # ``GET /api/v1/``; not an operation of the schema, which it links to. The browsable API titles the page
    # with the view's name and shows its docstring, so both are written for a reader.

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get_view_name(self) -> str:
        return "Recovery API"

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "Recovery API",
                "version": "v1",
                "authentication": "Authorization: Token <key> (manage.py issue_token; make run prints demo tokens)",
                "docs": request.build_absolute_uri(reverse("docs")),
                "redoc": request.build_absolute_uri(reverse("redoc")),
                "schema": request.build_absolute_uri(reverse("schema")),
                "console": request.build_absolute_uri(reverse("console:home")),
                "endpoints": _urls(request, ENDPOINTS),
            }
        )
