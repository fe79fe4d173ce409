"""The floor's one endpoint, ``/me/``: who the token belongs to."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username()})


def healthz(request) -> HttpResponse:  # what bench's start_gunicorn polls before driving load
    return HttpResponse("ok")


urlpatterns = [path("me/", MeView.as_view()), path("healthz", healthz)]
