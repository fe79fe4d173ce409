"""REST views. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation.roles import user_role


class MeApi(APIView):
    """Who the token belongs to: the cheapest authenticated call."""

    @extend_schema(
        responses=inline_serializer(
            "Me", {"username": serializers.CharField(), "role": serializers.CharField(allow_null=True)}
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "role": user_role(request.user)})
