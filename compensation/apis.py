"""REST views. Thin: parse, call one service or selector, render."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compensation import schema_examples as examples
from compensation.authority import user_authority
from compensation.errors import NotFound
from compensation.filters import EscalationFilter, OfferSetFilter
from compensation.http import LargerBodyMixin, ResilientAnonRateThrottle
from compensation.idempotency import IDEMPOTENCY_KEY_SCHEMA, idempotent
from compensation.models import Customer, OfferSet
from compensation.permissions import IsAgentOrManager, IsIntegration, IsIntegrationOrManager, IsManager
from compensation.roles import user_role
from compensation.schema import ERROR, EXAMPLE_RENDERERS, VALIDATION_ERROR
from compensation.selectors import (
    customers_with_changes,
    escalation_list,
    event_list,
    event_total,
    offer_set_submission,
    offer_set_visible_to,
    simulations_of,
)
from compensation.serializers import (
    CustomerDetailSerializer,
    CustomerFieldsSerializer,
    CustomersBulkInputSerializer,
    CustomersBulkResultSerializer,
    EscalationOutputSerializer,
    EventCustomersAddedSerializer,
    EventCustomersInputSerializer,
    EventInputSerializer,
    EventSerializer,
    EventStartedSerializer,
    FeedbackInputSerializer,
    OfferSetInputSerializer,
    OfferSetOutputSerializer,
    OutcomeAcceptedSerializer,
    OutcomeInputSerializer,
    RejectInputSerializer,
    ResolveInputSerializer,
    SimulationInputSerializer,
    SimulationSerializer,
    SimulationStartedSerializer,
    customer_payload,
    customer_put_validate,
    customers_bulk_validate,
    escalation_payload,
    event_customers_validate,
    event_input_validate,
    events_payload,
    offer_set_input_validate,
    offer_set_payload,
    simulation_input_validate,
    simulation_payload,
)
from compensation.services.customers import customer_put, customers_bulk_put
from compensation.services.escalations import (
    escalation_acknowledge,
    escalation_approve,
    escalation_reject,
    escalation_resolve,
)
from compensation.services.events import EventAdded, event_cancel, event_create, event_customers_add
from compensation.services.follow_ups import feedback_link_check, feedback_submit
from compensation.services.offer_sets import offer_set_create
from compensation.services.outcomes import outcome_submit
from compensation.services.simulation_runs import simulation_start
from policies.index import policy_index_get


class MeApi(APIView):
    """Who the token belongs to: the cheapest authenticated call."""

    @extend_schema(
        responses=inline_serializer(
            "Me", {"username": serializers.CharField(), "role": serializers.CharField(allow_null=True)}
        )
    )
    def get(self, request: Request) -> Response:
        return Response({"username": request.user.get_username(), "role": user_role(request.user)})


def idempotency_key_parameter(description: str) -> OpenApiParameter:
    """The optional ``Idempotency-Key`` header of a write, as the schema declares it."""
    return OpenApiParameter("Idempotency-Key", IDEMPOTENCY_KEY_SCHEMA, OpenApiParameter.HEADER, description=description)


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

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.OFFER_SET_LATE_DELIVERY_GOLD

    permission_classes = [IsAgentOrManager]
    filter_backends = [DjangoFilterBackend]
    filterset_class = OfferSetFilter
    serializer_class = OfferSetOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return OfferSet.objects.none()
        return offer_set_visible_to(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # What a POST takes, for the browsable API's form and OPTIONS; the responses are the output's.
        if self.request is not None and self.request.method == "POST":
            return OfferSetInputSerializer
        return OfferSetOutputSerializer

    @extend_schema(
        request=OfferSetInputSerializer,
        examples=examples.OFFER_SET_EXAMPLES,
        parameters=[
            OpenApiParameter(
                "explain",
                OpenApiTypes.BOOL,
                description="add not_offered: why each policy gave none, and why each offer not shown was left out",
            ),
            idempotency_key_parameter("same key and body: the same offer set again, nothing new; another body: 409"),
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
                created.offer_set,
                created.offers,
                created.escalation,
                not_offered=created.not_offered,
                remedies=created.remedies,
                approval_limit=approval_limit_of(request.user),
            )
            return Response(payload, status=status.HTTP_201_CREATED)

        return idempotent(request, "offer-sets:create", create, extra={"explain": explain})

    @extend_schema(responses={200: OfferSetOutputSerializer(many=True), 400: VALIDATION_ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([_stored_payload(offer_set, request.user) for offer_set in page])


def _stored_payload(offer_set, user) -> dict:
    return offer_set_payload(
        offer_set,
        list(offer_set.offers.all()),
        offer_set.escalation,
        not_offered=offer_set.not_offered or None,
        submission=offer_set_submission(offer_set),
        remedies=list(offer_set.incident.remedies.all()),
        approval_limit=approval_limit_of(user),
    )


def approval_limit_of(user) -> Decimal | None:
    """The most this user may give per option without a manager's approval; None for a manager."""
    return user_authority(user).per_option


class OfferSetDetailApi(APIView):
    """One offer set, exactly as it was shown, with its outcome once there is one."""

    permission_classes = [IsAgentOrManager]

    @extend_schema(responses={200: OfferSetOutputSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, offer_set_id: str) -> Response:
        offer_set = get_object_or_404(offer_set_visible_to(request.user), pk=offer_set_id)
        return Response(_stored_payload(offer_set, request.user))


# --- Outcomes ------------------------------------------------------------------------------


class OutcomeSubmitApi(APIView):
    """The customer's choice: 202 once accepted; a Celery worker records it."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.OUTCOME_CHOICE

    permission_classes = [IsAgentOrManager]

    @extend_schema(
        request=OutcomeInputSerializer,
        examples=examples.OUTCOME_EXAMPLES,
        parameters=[
            idempotency_key_parameter("same key and body: the same answer again, nothing new; another body: 409")
        ],
        responses={202: OutcomeAcceptedSerializer, 400: VALIDATION_ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, offer_set_id: str) -> Response:
        def submit() -> Response:
            serializer = OutcomeInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            submission = outcome_submit(user=request.user, offer_set_id=offer_set_id, **data)
            body = {
                "status": "accepted",
                "submission_id": str(submission.pk),
                "choice": submission.choice,
                "outcome_status": submission.status,
            }
            return Response(body, status=status.HTTP_202_ACCEPTED)

        return idempotent(request, f"offer-sets:{offer_set_id}:outcome", submit)


# --- Escalations ---------------------------------------------------------------------------


class EscalationListApi(GenericAPIView):
    """Escalations for managers, soonest due first; filter on status, kind and overdue."""

    permission_classes = [IsManager]
    filter_backends = [DjangoFilterBackend]
    filterset_class = EscalationFilter
    serializer_class = EscalationOutputSerializer

    def get_queryset(self):
        return escalation_list()

    @extend_schema(responses={200: EscalationOutputSerializer(many=True), 400: VALIDATION_ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        now = timezone.now()
        return self.get_paginated_response([escalation_payload(e, now=now) for e in page])


class EscalationDetailApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(responses={200: EscalationOutputSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, escalation_id: int) -> Response:
        return Response(escalation_payload(get_object_or_404(escalation_list(), pk=escalation_id)))


class _EscalationActionApi(APIView):
    """POST runs one service on the escalation and answers 200 with it."""

    permission_classes = [IsManager]
    input_serializer: type[serializers.Serializer] | None = None

    def act(self, escalation_id: int, user, data: dict) -> None:
        raise NotImplementedError

    def post(self, request: Request, escalation_id: int) -> Response:
        get_object_or_404(escalation_list(), pk=escalation_id)
        data: dict = {}
        if self.input_serializer is not None:
            serializer = self.input_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        self.act(escalation_id, request.user, data)
        return Response(escalation_payload(escalation_list().get(pk=escalation_id)))


ACTION_RESPONSES = {200: EscalationOutputSerializer, 400: VALIDATION_ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


@extend_schema_view(post=extend_schema(request=None, responses=ACTION_RESPONSES))
class EscalationAcknowledgeApi(_EscalationActionApi):
    def act(self, escalation_id: int, user, data: dict) -> None:
        escalation_acknowledge(escalation_id=escalation_id, user=user)


@extend_schema_view(
    post=extend_schema(request=ResolveInputSerializer, examples=examples.RESOLVE_EXAMPLES, responses=ACTION_RESPONSES)
)
class EscalationResolveApi(_EscalationActionApi):
    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.RESOLUTION
    input_serializer = ResolveInputSerializer

    def act(self, escalation_id: int, user, data: dict) -> None:
        escalation_resolve(escalation_id=escalation_id, user=user, resolution=data["resolution"])


@extend_schema_view(post=extend_schema(request=None, responses=ACTION_RESPONSES))
class EscalationApproveApi(_EscalationActionApi):
    def act(self, escalation_id: int, user, data: dict) -> None:
        escalation_approve(escalation_id=escalation_id, user=user)


@extend_schema_view(
    post=extend_schema(request=RejectInputSerializer, examples=examples.REJECT_EXAMPLES, responses=ACTION_RESPONSES)
)
class EscalationRejectApi(_EscalationActionApi):
    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.REJECTION
    input_serializer = RejectInputSerializer

    def act(self, escalation_id: int, user, data: dict) -> None:
        escalation_reject(escalation_id=escalation_id, user=user, reason=data["reason"])


# --- Customer feedback ---------------------------------------------------------------------


class FeedbackSubmitApi(APIView):
    """The customer's answer to the satisfaction check: no login, the signed link is the key."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.FEEDBACK

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ResilientAnonRateThrottle]

    @extend_schema(
        request=FeedbackInputSerializer,
        examples=examples.FEEDBACK_EXAMPLES,
        responses={
            200: inline_serializer("FeedbackThanks", {"status": serializers.CharField()}),
            400: VALIDATION_ERROR,
            404: ERROR,
            409: ERROR,
            410: ERROR,
        },
    )
    def post(self, request: Request, token: str) -> Response:
        feedback_link_check(token)  # a bad, used or expired link says so whatever the body
        serializer = FeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feedback_submit(token=token, **serializer.validated_data)
        return Response({"status": "thank you"})


# --- Customers (the integration's) ------------------------------------------------------------


def _customer_response(external_id: str, status_code: int = status.HTTP_200_OK) -> Response:
    # An id no customer can have (too long, a NUL the database refuses) names none: 404, not a database error.
    valid = len(external_id) <= Customer._meta.get_field("external_id").max_length and "\x00" not in external_id
    customer = customers_with_changes().filter(external_id=external_id).first() if valid else None
    if customer is None:
        raise NotFound("No customer has this external_id.")
    return Response(customer_payload(customer, list(customer.changes.all())), status=status_code)


EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, examples=examples.CUSTOMER_EXTERNAL_ID_EXAMPLES
)


class CustomerDetailApi(APIView):
    """A stored customer with every change to it (GET: managers and the integration); PUT (the integration)
    creates it or sets the fields given, the others keeping their values."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.CUSTOMER_FIELDS

    def get_permissions(self) -> list:
        return [IsIntegration()] if self.request.method == "PUT" else [IsIntegrationOrManager()]

    @extend_schema(responses={200: CustomerDetailSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, external_id: str) -> Response:
        return _customer_response(external_id)

    @extend_schema(
        request=CustomerFieldsSerializer,
        examples=examples.CUSTOMER_PUT_EXAMPLES,
        parameters=[EXTERNAL_ID_PARAMETER],
        responses={
            200: CustomerDetailSerializer,
            201: CustomerDetailSerializer,
            400: VALIDATION_ERROR,
            403: ERROR,
            404: ERROR,  # a URL that names no customer at all (an empty external_id)
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        data = customer_put_validate(request.data, external_id=external_id)
        external_id = data.pop("external_id")
        written = customer_put(external_id=external_id, fields=data, by=request.user.get_username())
        return _customer_response(external_id, status.HTTP_201_CREATED if written.created else status.HTTP_200_OK)


class CustomersBulkApi(APIView):
    """Up to 1,000 customers in one call, all or nothing: each created or given the fields it names."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.CUSTOMERS_BULK

    permission_classes = [IsIntegration]

    @extend_schema(
        request=CustomersBulkInputSerializer,
        examples=examples.CUSTOMERS_BULK_EXAMPLES,
        responses={
            200: CustomersBulkResultSerializer,
            400: OpenApiResponse(
                description='Validation failed, with flat paths as keys: `{"customers[17].tier": ["..."]}`; '
                "nothing is written."
            ),
            403: ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        customers = customers_bulk_validate(request.data)
        created, updated = customers_bulk_put(customers=customers, by=request.user.get_username())
        return Response({"created": created, "updated": updated})


# --- Simulations (a policy pack replayed before it goes live) ---------------------------------------


class SimulationStartApi(APIView):
    """Replay the last ``days`` days of incidents against the live policies and against them with ``pack``
    applied as an import would (``--replace`` not implied), in a Celery worker; poll the simulation's URL."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.SIMULATION_MORE_GENEROUS

    permission_classes = [IsManager]

    @extend_schema(
        request=SimulationInputSerializer,
        examples=examples.SIMULATION_EXAMPLES,
        responses={
            202: SimulationStartedSerializer,
            400: OpenApiResponse(
                description="The pack would not import, with the import's paths as keys "
                '(`{"policies[0].offers[0].value": ["..."]}`; `pack` for the pack as a whole), or `days` is not '
                "a whole number from 1 to 365; nothing is started."
            ),
            403: ERROR,
            409: OpenApiResponse(
                ERROR, description="`simulation_running`: one of your simulations is still running (one at a time)."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = simulation_input_validate(request.data)
        simulation = simulation_start(user=request.user, pack=data["pack"], days=data["days"])
        return Response({"id": str(simulation.id), "status": "running"}, status=status.HTTP_202_ACCEPTED)


class SimulationDetailApi(APIView):
    """Your simulation: running (with its progress), done (with the result) or failed (with the error); kept
    ``SIMULATION_KEEP_DAYS`` days."""

    permission_classes = [IsManager]

    @extend_schema(responses={200: SimulationSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, simulation_id: str) -> Response:
        simulation = get_object_or_404(simulations_of(request.user, now=timezone.now()), pk=simulation_id)
        return Response(simulation_payload(simulation))


# --- Operational events ------------------------------------------------------------------------


IDEMPOTENCY_CONFLICT = "The Idempotency-Key was used before with another body; nothing was done."
EVENT_BODY_TOO_LARGE = "The request body is larger than EVENT_MAX_BODY_BYTES (these endpoints' own limit)."
EVENT_LIMIT_REACHED = (
    "`event_customer_limit`: these customers would pass EVENT_MAX_CUSTOMERS_PER_DAY for you today (TIME_ZONE); "
    "nothing was added. Or `throttled`: too many requests, wait the seconds Retry-After gives."
)


def _event_or_404(event_id: int) -> Any:
    """The event, or the API's own 404 ("Not found."), as the detail and cancel answer it."""
    event = event_list().filter(pk=event_id).first()
    if event is None:
        raise NotFound("Not found.")
    return event


def _event_answer(added: EventAdded, status_code: int, *, with_added: bool = False) -> Response:
    event = added.event
    body: dict[str, Any] = {"id": event.pk, "status": event.status, "total": event_total(event.pk)}
    if with_added:
        body["added"] = added.added
    return Response(body, status=status_code)


class EventListCreateApi(LargerBodyMixin, GenericAPIView):
    """An operational event: every affected customer gets the remedy and their own a/b/c choice by e-mail (POST);
    the events, newest first, with their figures (GET)."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.EVENT_WAREHOUSE_MISSED

    permission_classes = [IsManager]
    serializer_class = EventSerializer

    def get_queryset(self):
        return event_list()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.request is not None and self.request.method == "POST":
            return EventInputSerializer
        return EventSerializer

    @extend_schema(
        request=EventInputSerializer,
        examples=examples.EVENT_EXAMPLES,
        parameters=[
            idempotency_key_parameter("same key and body: the same event again, nothing new; another body: 409")
        ],
        responses={
            202: EventStartedSerializer,
            400: OpenApiResponse(
                description="Paths name each problem (`customers[3].email`, `category`); an external_id repeated "
                "in the call names the second row; more than 10,000 customers is one error on `customers`. "
                "Nothing is created."
            ),
            403: ERROR,
            409: OpenApiResponse(ERROR, description=IDEMPOTENCY_CONFLICT),
            413: OpenApiResponse(ERROR, description=EVENT_BODY_TOO_LARGE),
            429: OpenApiResponse(ERROR, description=EVENT_LIMIT_REACHED),
        },
    )
    def post(self, request: Request) -> Response:
        def create() -> Response:
            data = event_input_validate(request.data, index=policy_index_get())
            return _event_answer(event_create(user=request.user, data=data), status.HTTP_202_ACCEPTED)

        return idempotent(request, "events:create", create)

    @extend_schema(responses={200: EventSerializer(many=True), 403: ERROR})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(events_payload(page))


class EventDetailApi(APIView):
    """An event's progress and what its customers chose; the figures are counted when asked."""

    permission_classes = [IsManager]

    @extend_schema(responses={200: EventSerializer, 403: ERROR, 404: ERROR})
    def get(self, request: Request, event_id: int) -> Response:
        return Response(events_payload([_event_or_404(event_id)])[0])


class EventCustomersApi(LargerBodyMixin, APIView):
    """More customers for an event (up to 10,000 a call); those already in it are skipped."""

    renderer_classes = EXAMPLE_RENDERERS
    request_example = examples.EVENT_MORE_CUSTOMERS

    permission_classes = [IsManager]

    @extend_schema(
        request=EventCustomersInputSerializer,
        examples=examples.EVENT_CUSTOMERS_EXAMPLES,
        parameters=[
            idempotency_key_parameter("same key and body: the same answer again, nothing new; another body: 409")
        ],
        responses={
            202: EventCustomersAddedSerializer,
            400: VALIDATION_ERROR,
            403: ERROR,
            404: ERROR,
            409: OpenApiResponse(
                ERROR, description=f"The event was cancelled (it takes no more customers); or: {IDEMPOTENCY_CONFLICT}"
            ),
            413: OpenApiResponse(ERROR, description=EVENT_BODY_TOO_LARGE),
            429: OpenApiResponse(ERROR, description=EVENT_LIMIT_REACHED),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        def add() -> Response:
            _event_or_404(event_id)
            data = event_customers_validate(request.data)
            added = event_customers_add(user=request.user, event_id=event_id, customers=data["customers"])
            return _event_answer(added, status.HTTP_202_ACCEPTED, with_added=True)

        return idempotent(request, f"events:{event_id}:customers", add)


class EventCancelApi(APIView):
    """Stop what has not been sent: customers not e-mailed yet are not e-mailed."""

    permission_classes = [IsManager]

    @extend_schema(
        request=None,
        responses={
            200: EventSerializer,
            403: ERROR,
            404: ERROR,
            409: OpenApiResponse(ERROR, description="The event was sent in full: nothing is left to cancel."),
        },
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = event_cancel(event_id=event_id, user=request.user)
        return Response(events_payload([get_object_or_404(event_list(), pk=event.pk)])[0])
