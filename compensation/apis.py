"""REST views. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation.filters import OfferSetFilter
from compensation.idempotency import idempotent
from compensation.models import OfferSet
from compensation.permissions import IsAgentOrManager
from compensation.roles import user_role
from compensation.selectors import offer_set_visible_to
from compensation.serializers import (
    OfferSetInputSerializer,
    OfferSetOutputSerializer,
    offer_set_input_validate,
    offer_set_payload,
)
from compensation.services.offer_sets import offer_set_create
from policies.index import policy_index_get

ERROR = inline_serializer("Error", {"detail": serializers.CharField(), "code": serializers.CharField()})
VALIDATION_ERROR = OpenApiResponse(
    description='Validation failed: `{"field": ["message"]}`, nested for customer and incident fields.'
)


class MeApi(APIView):
    """Who the token belongs to: the cheapest authenticated call."""

    @extend_schema(
        responses=inline_serializer(
            "Me", {"username": serializers.CharField(), "role": serializers.CharField(allow_null=True)}
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "role": user_role(request.user)})


def _explain_flag(request: Request) -> bool:
    value = request.query_params.get("explain")
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in {"1", "true", "yes", "on", "0", "false", "no", "off", ""}:
        raise ValidationError({"explain": ["must be true or false"]})
    return lowered in {"1", "true", "yes", "on"}


class OfferSetListCreateApi(GenericAPIView):
    """Ranked a/b/c options for an incident (POST); the offer sets you may see (GET)."""

    permission_classes = [IsAgentOrManager]
    filter_backends = [DjangoFilterBackend]
    filterset_class = OfferSetFilter
    serializer_class = OfferSetOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return OfferSet.objects.none()
        return offer_set_visible_to(self.request.user)

    @extend_schema(
        request=OfferSetInputSerializer,
        parameters=[
            OpenApiParameter("explain", OpenApiTypes.BOOL, description="add not_offered: why each policy gave none"),
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="same key and body: the same offer set again, nothing new; another body: 409",
            ),
        ],
        responses={201: OfferSetOutputSerializer, 400: VALIDATION_ERROR, 403: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        explain = _explain_flag(request)

        def create() -> Response:
            index = policy_index_get()
            data = offer_set_input_validate(request.data, index=index)
            created = offer_set_create(
                user=request.user,
                index=index,
                customer=data["customer"],
                incident=data["incident"],
                explain=explain,
            )
            payload = offer_set_payload(
                created.offer_set, created.offers, created.escalation, not_offered=created.not_offered
            )
            return Response(payload, status=status.HTTP_201_CREATED)

        return idempotent(request, "offer-sets:create", create, extra={"explain": explain})

    @extend_schema(responses={200: OfferSetOutputSerializer(many=True), 400: VALIDATION_ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([_stored_payload(offer_set) for offer_set in page])


def _stored_payload(offer_set) -> dict:
    return offer_set_payload(
        offer_set,
        list(offer_set.offers.all()),
        offer_set.escalation,
        not_offered=offer_set.not_offered or None,
    )


class OfferSetDetailApi(APIView):
    """One offer set, exactly as it was shown, with its outcome once there is one."""

    permission_classes = [IsAgentOrManager]

    @extend_schema(responses={200: OfferSetOutputSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, offer_set_id: str) -> Response:
        offer_set = get_object_or_404(offer_set_visible_to(request.user), pk=offer_set_id)
        return Response(_stored_payload(offer_set))
