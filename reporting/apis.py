"""REST views of the reports and the outcome list. Thin: parse the filters, call one selector, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation.models import AcceptanceStat, Outcome
from compensation.permissions import IsManager, IsManagerOrAnalyst
from compensation.schema import ERROR, VALIDATION_ERROR
from reporting.export import outcome_csv
from reporting.filters import LearningFilter, OutcomeFilter, ReportFilter
from reporting.learning import report_learning
from reporting.reports import (
    OutcomeRowsPage,
    ReportScope,
    coupon_codes_whole,
    report_by_agent,
    report_by_category,
    report_by_kind,
    report_by_policy,
    report_session,
    report_summary,
)
from reporting.serializers import (
    AgentReportSerializer,
    CategoryReportSerializer,
    KindReportSerializer,
    LearningReportSerializer,
    OutcomeRowSerializer,
    PolicyReportSerializer,
    SummaryReportSerializer,
    outcome_row_payload,
)

# --- Reports and the outcome list ----------------------------------------------------------

CATEGORY_PARAMETER = OpenApiParameter("category", OpenApiTypes.STR, description="category slug")
POLICY_PARAMETER = OpenApiParameter("policy", OpenApiTypes.INT, description="policy id")
REPORT_PARAMETERS = [
    OpenApiParameter(
        "since", OpenApiTypes.DATE, description="from this date, inclusive (default: 29 days before until)"
    ),
    OpenApiParameter("until", OpenApiTypes.DATE, description="to this date, inclusive (default: today, in TIME_ZONE)"),
    CATEGORY_PARAMETER,
    OpenApiParameter("tier", OpenApiTypes.STR, enum=["standard", "silver", "gold", "platinum"]),
    POLICY_PARAMETER,
    OpenApiParameter("event", OpenApiTypes.INT, description="operational event id (an unknown one gives zeros)"),
]


def _report_scope(request: Request) -> ReportScope:
    filters = ReportFilter(data=request.query_params, queryset=Outcome.objects.none(), request=request)
    if not filters.is_valid():
        raise ValidationError(filters.errors)
    return filters.scope(default_period=True)


class _ReportApi(APIView):
    """GET: one report over the period and filters of the query string; not paginated."""

    permission_classes = [IsManagerOrAnalyst]
    report: Callable[[ReportScope], Any]

    def get(self, request: Request) -> Response:
        scope = _report_scope(request)
        with report_session():
            return Response(type(self).report(scope))


def _report_schema(serializer: Any, many: bool, summary: str) -> Callable:
    body = serializer(many=many) if many else serializer
    return extend_schema_view(
        get=extend_schema(
            summary=summary,
            parameters=REPORT_PARAMETERS,
            responses={200: body, 400: VALIDATION_ERROR, 403: ERROR},
        )
    )


@_report_schema(SummaryReportSerializer, False, "Totals for the period")
class SummaryReportApi(_ReportApi):
    report = staticmethod(report_summary)


@_report_schema(PolicyReportSerializer, True, "One row per policy")
class PolicyReportApi(_ReportApi):
    report = staticmethod(report_by_policy)


@_report_schema(KindReportSerializer, True, "One row per offer kind")
class KindReportApi(_ReportApi):
    report = staticmethod(report_by_kind)


@_report_schema(CategoryReportSerializer, True, "One row per category")
class CategoryReportApi(_ReportApi):
    report = staticmethod(report_by_category)


@_report_schema(AgentReportSerializer, True, "One row per agent (managers only)")
class AgentReportApi(_ReportApi):
    permission_classes = [IsManager]
    report = staticmethod(report_by_agent)


@extend_schema_view(
    get=extend_schema(
        summary="What the ranking has learned: one row per offer template and category shown",
        description=(
            "The model as it stands (no period): one row per offer template and category shown at least once "
            "in an offer set with a recorded outcome, by category slug, then propensity_mean descending, then "
            "policy id, then offer id. Figures use the current RANKING_POSITION_CORRECTION."
        ),
        parameters=[CATEGORY_PARAMETER, POLICY_PARAMETER],
        responses={200: LearningReportSerializer(many=True), 400: VALIDATION_ERROR, 403: ERROR},
    )
)
class LearningReportApi(APIView):
    """GET: the learning report, filtered on ``category`` and ``policy``; not paginated."""

    permission_classes = [IsManagerOrAnalyst]

    def get(self, request: Request) -> Response:
        filters = LearningFilter(data=request.query_params, queryset=AcceptanceStat.objects.none(), request=request)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        with report_session():
            return Response(report_learning(**filters.selection()))


class CSVRenderer(BaseRenderer):
    """``?format=csv`` (or ``Accept: text/csv``): the view streams the rows itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        raise NotImplementedError("CSV responses are streamed by the view")


class OutcomeListApi(GenericAPIView):
    """Recorded outcomes, newest first, filterable; ``?format=csv`` streams every row of the filter."""

    permission_classes = [IsManagerOrAnalyst]
    filter_backends = [DjangoFilterBackend]
    filterset_class = OutcomeFilter
    serializer_class = OutcomeRowSerializer
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    def get_queryset(self):
        return Outcome.objects.all()

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Only the rows are CSV: errors and OPTIONS are JSON whatever format was asked for.
        if isinstance(response, Response) and isinstance(getattr(request, "accepted_renderer", None), CSVRenderer):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: every row")],
        responses={
            (200, "application/json"): OutcomeRowSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            400: VALIDATION_ERROR,
            403: ERROR,
        },
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        outcomes = self.filter_queryset(self.get_queryset())
        whole_coupons = coupon_codes_whole(request.user)
        if isinstance(request.accepted_renderer, CSVRenderer):
            stream = outcome_csv(outcomes, whole_coupons=whole_coupons)
            response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="outcomes.csv"'
            return response
        page = self.paginate_queryset(OutcomeRowsPage(outcomes))
        return self.get_paginated_response([outcome_row_payload(row, whole_coupons=whole_coupons) for row in page])
