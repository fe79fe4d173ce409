"""Input validation and the documented shapes of the offer-set API.

Responses on the hot path are built by plain functions (``offer_set_payload``)
rather than nested serializers, for speed; the output serializers here describe
the same shapes for the OpenAPI schema, and a test checks that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from compensation.engine import remedy_needs_approval
from compensation.models import Escalation, Event, Incident, Offer, OfferSet, OutcomeSubmission, Remedy, Simulation
from compensation.services.customers import BULK_MAX, FIELDS
from compensation.services.events import FIGURES as EVENT_FIGURES
from compensation.services.events import MAX_PER_CALL as EVENTS_MAX_PER_CALL
from compensation.services.events import event_figures
from compensation.services.simulations import DAYS_MAX, DAYS_MIN
from policies.choices import REMEDY_KIND_CHOICES, Fault, OfferKind, Tier
from policies.index import PolicyIndex
from policies.money import money
from policies.packs import PackError, pack_plan

CLOCK_SKEW = timedelta(minutes=1)


# --- Input ---------------------------------------------------------------------------


class CustomerFieldsSerializer(serializers.Serializer):
    """A customer's fields, as an offer-set POST, ``PUT /api/v1/customers/{external_id}/`` and the bulk
    endpoint take them: each optional, left out keeps the stored value."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False, help_text="default standard")
    lifetime_value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False)
    interests = serializers.ListField(
        child=serializers.SlugField(max_length=50), max_length=20, required=False, help_text="up to 20 slugs"
    )

    def validate_interests(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(item.lower() for item in value))

    def validate_lifetime_value(self, value: Decimal) -> Decimal:
        return value + 0  # "-0" becomes 0


class CustomerInputSerializer(CustomerFieldsSerializer):
    external_id = serializers.CharField(min_length=1, max_length=64)


class IncidentInputSerializer(serializers.Serializer):
    external_ref = serializers.CharField(max_length=128, required=False, allow_null=True, allow_blank=True)
    category = serializers.CharField(max_length=64, help_text="slug of an active category")
    severity = serializers.IntegerField(min_value=1, max_value=5)
    fault = serializers.ChoiceField(choices=Fault.choices, default=Fault.COMPANY)
    correctable = serializers.BooleanField(default=True)
    order_value = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), default=Decimal("0.00")
    )
    currency = serializers.CharField(max_length=3, required=False, help_text="must be DEFAULT_CURRENCY if given")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, help_text="default now; not in the future")

    def validate_currency(self, value: str) -> str:
        if value.upper() != settings.DEFAULT_CURRENCY:
            raise serializers.ValidationError(
                f"must be {settings.DEFAULT_CURRENCY}, the currency of this deployment (got {value!r})"
            )
        return settings.DEFAULT_CURRENCY

    def validate_occurred_at(self, value: datetime) -> datetime:
        now = timezone.now()
        if value > now + CLOCK_SKEW:
            raise serializers.ValidationError("must not be in the future")
        if value < now - timedelta(days=settings.INCIDENT_MAX_AGE_DAYS):
            raise serializers.ValidationError(
                f"must be within the last {settings.INCIDENT_MAX_AGE_DAYS} days (INCIDENT_MAX_AGE_DAYS)"
            )
        return value

    def validate_external_ref(self, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def validate_order_value(self, value: Decimal) -> Decimal:
        return value + 0  # "-0" becomes 0

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("currency", settings.DEFAULT_CURRENCY)
        return attrs


class OfferSetInputSerializer(serializers.Serializer):
    customer = CustomerInputSerializer()
    incident = IncidentInputSerializer()


_shared_input: OfferSetInputSerializer | None = None


def offer_set_input_validate(data: Any, *, index: PolicyIndex) -> dict[str, Any]:
    """Validated customer and incident, with ``incident["category"]`` the compiled category.

    One serializer instance is reused: building one per request (DRF deep-copies
    every declared field) cost more than the validation itself on the hot path.
    It keeps no state between calls. Every problem is reported at once.
    """
    global _shared_input
    if _shared_input is None:
        _shared_input = OfferSetInputSerializer()
    errors: dict[str, Any] = {}
    validated: dict[str, Any] = {}
    try:
        validated = _shared_input.run_validation(data)
    except serializers.ValidationError as exc:
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}

    if validated:
        slug = validated["incident"]["category"]
    else:  # report an unknown category along with the other problems
        incident = data.get("incident") if isinstance(data, dict) else None
        slug = incident.get("category") if isinstance(incident, dict) else None
    category = index.categories.get(slug) if isinstance(slug, str) else None
    if isinstance(slug, str) and slug and category is None:
        valid = ", ".join(sorted(index.categories)) or "(none: load a policy pack)"
        message = f"unknown or inactive category {slug!r}; valid categories: {valid}"
        incident_errors = errors.setdefault("incident", {})
        if isinstance(incident_errors, dict) and "category" not in incident_errors:
            incident_errors["category"] = [serializers.ErrorDetail(message, code="invalid_choice")]
    if errors:
        raise serializers.ValidationError(errors)
    validated["incident"]["category"] = category
    return validated


class OutcomeInputSerializer(serializers.Serializer):
    choice = serializers.CharField(max_length=16, help_text="one of the set's labels (a, b, c) or 'declined'")
    satisfaction = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_choice(self, value: str) -> str:
        return value.strip().lower()


class ResolveInputSerializer(serializers.Serializer):
    resolution = serializers.CharField(max_length=4000, help_text="what was done")


class RejectInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=4000, help_text="why the option is refused; the agent sees it")


class FeedbackInputSerializer(serializers.Serializer):
    satisfaction = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")


# --- Output (for the schema; payload functions below build the same shapes) ---------------


class PolicyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()


class OptionSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=["a", "b", "c"])
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField()
    message = serializers.CharField()
    value = serializers.CharField(allow_null=True, help_text="decimal string; null for escalations")
    unit = serializers.ChoiceField(choices=["percent", "amount"], allow_null=True)
    estimated_cost = serializers.CharField(help_text="decimal string")
    currency = serializers.CharField()
    requires_approval = serializers.BooleanField()
    policy = PolicyRefSerializer()
    score = serializers.FloatField()
    score_breakdown = serializers.DictField(child=serializers.FloatField())
    propensity_mean = serializers.FloatField(
        allow_null=True,
        help_text="The posterior mean of the option's propensity (score_breakdown.propensity is the factor used: "
        "a draw from the posterior under RANKING_EXPLORATION=thompson); null for sets made before v2",
    )
    reasons = serializers.ListField(child=serializers.CharField())
    perk = serializers.DictField(child=serializers.CharField(), allow_null=True, required=False)
    expires_in_days = serializers.IntegerField(allow_null=True, required=False)


class CustomerOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    lifetime_value = serializers.CharField()
    interests = serializers.ListField(child=serializers.CharField())


class IncidentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_ref = serializers.CharField(allow_null=True)
    category = serializers.CharField()
    severity = serializers.IntegerField()
    fault = serializers.CharField()
    correctable = serializers.BooleanField()
    order_value = serializers.CharField()
    currency = serializers.CharField()
    repeat_count = serializers.IntegerField()
    same_category_repeat_count = serializers.IntegerField()


class EscalationRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    due_at = serializers.DateTimeField()


class OfferRefSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField(help_text="the offer template's title, as written")


class NotOfferedSerializer(serializers.Serializer):
    policy = serializers.DictField()
    offer = OfferRefSerializer(required=False, help_text="present when the entry is about one offer not shown")
    reason = serializers.CharField()


class RemedyItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=REMEDY_KIND_CHOICES)
    title = serializers.CharField()
    message = serializers.CharField()
    value = serializers.CharField(help_text="decimal string: a percent for a refund, else an amount")
    unit = serializers.ChoiceField(choices=["percent", "amount"])
    estimated_cost = serializers.CharField(help_text="decimal string; never charged to a budget")
    currency = serializers.CharField()
    policy = PolicyRefSerializer()
    requires_approval = serializers.BooleanField(
        help_text="not given yet, and a manager must approve it when you record the outcome (summed cost above "
        "your limit, or its policy asks); the customer's choice is recorded meanwhile"
    )
    given_at = serializers.DateTimeField(allow_null=True, help_text="null until given, once per incident")


class OutcomeRemedySerializer(RemedyItemSerializer):
    status = serializers.ChoiceField(choices=Remedy.Status.choices)
    approval = serializers.IntegerField(allow_null=True, help_text="its approval escalation's id, when it needed one")


class OutcomeOutputSerializer(serializers.Serializer):
    choice = serializers.CharField()
    status = serializers.ChoiceField(choices=OutcomeSubmission.Status.choices)
    submitted_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField(allow_null=True)
    offer = OptionSerializer(allow_null=True, help_text="the chosen option as shown; null when declined")
    coupon_code = serializers.CharField(allow_null=True)
    satisfaction = serializers.IntegerField(allow_null=True)
    follow_up_due_at = serializers.DateTimeField(allow_null=True)
    approval = serializers.IntegerField(allow_null=True, required=False, help_text="the approval escalation's id")
    remedy = OutcomeRemedySerializer(many=True, help_text="the incident's remedy items and where each stands")


class OutcomeAcceptedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted"])
    submission_id = serializers.UUIDField()
    choice = serializers.CharField()
    outcome_status = serializers.ChoiceField(choices=OutcomeSubmission.Status.choices, required=False)


class EscalationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Escalation.Kind.choices)
    status = serializers.ChoiceField(choices=Escalation.Status.choices)
    reason = serializers.CharField()
    due_at = serializers.DateTimeField()
    overdue = serializers.BooleanField()
    offer_set = serializers.UUIDField(allow_null=True)
    incident = serializers.IntegerField()
    customer = serializers.CharField(help_text="the customer's external_id")
    assigned_to = serializers.CharField(allow_null=True, help_text="username")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()
    created_at = serializers.DateTimeField()


class OfferSetOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    customer = CustomerOutputSerializer()
    incident = IncidentOutputSerializer()
    remedy = RemedyItemSerializer(many=True, help_text="what is put right first, whatever the customer chooses")
    options = OptionSerializer(many=True)
    escalation = EscalationRefSerializer(allow_null=True)
    outcome = OutcomeOutputSerializer(allow_null=True)
    not_offered = NotOfferedSerializer(many=True, required=False, help_text="only with ?explain=true")


# --- Payloads ---------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def option_payload(offer: Offer) -> dict[str, Any]:
    return {
        "label": offer.label,
        "kind": offer.kind,
        "title": offer.title,
        "message": offer.message,
        "value": money(offer.value),
        "unit": offer.unit,
        "estimated_cost": money(offer.estimated_cost),
        "currency": offer.currency,
        "requires_approval": offer.requires_approval,
        "policy": {"id": offer.policy_id, "name": offer.policy_name, "version": offer.policy_version},
        "score": offer.score,
        "score_breakdown": offer.score_breakdown,
        "propensity_mean": offer.propensity_mean,
        "reasons": offer.reasons,
        "expires_in_days": offer.expires_in_days,
    }


def escalation_ref_payload(escalation: Escalation | None) -> dict[str, Any] | None:
    if escalation is None:
        return None
    return {
        "id": escalation.pk,
        "kind": escalation.kind,
        "status": escalation.status,
        "reason": escalation.reason,
        "due_at": iso(escalation.due_at),
    }


def incident_payload(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.pk,
        "external_ref": incident.external_ref,
        "category": incident.category.slug,
        "severity": incident.severity,
        "fault": incident.fault,
        "correctable": incident.correctable,
        "order_value": money(incident.order_value),
        "currency": incident.currency,
        "repeat_count": incident.repeat_count,
        "same_category_repeat_count": incident.same_category_repeat_count,
    }


def remedy_payload(remedy: Remedy, *, needs_approval: bool = False) -> dict[str, Any]:
    return {
        "kind": remedy.kind,
        "title": remedy.title,
        "message": remedy.message,
        "value": money(remedy.value),
        "unit": remedy.unit,
        "estimated_cost": money(remedy.estimated_cost),
        "currency": remedy.currency,
        "policy": {"id": remedy.policy_id, "name": remedy.policy_name, "version": remedy.policy_version},
        "requires_approval": needs_approval and remedy.status != Remedy.Status.GIVEN,
        "given_at": iso(remedy.given_at),
    }


def outcome_payload(
    submission: OutcomeSubmission | None,
    offers: list[Offer],
    remedies: Sequence[Remedy] = (),
    *,
    remedy_needs_approval: bool = False,
) -> dict[str, Any] | None:
    """The set's outcome: its live submission (or the last one rejected), with what recording added."""
    if submission is None:
        return None
    outcome = getattr(submission, "outcome", None) if submission.status == OutcomeSubmission.Status.RECORDED else None
    offer = next((o for o in offers if o.pk == submission.offer_id), None)
    coupon = getattr(outcome, "coupon", None) if outcome is not None else None
    return {
        "choice": submission.choice,
        "status": submission.status,
        "submitted_at": iso(submission.submitted_at),
        "recorded_at": iso(submission.recorded_at),
        "offer": option_payload(offer) if offer is not None else None,
        "coupon_code": coupon.code if coupon is not None else None,
        "satisfaction": outcome.satisfaction if outcome is not None else submission.satisfaction,
        "follow_up_due_at": iso(outcome.follow_up_due_at) if outcome is not None else None,
        "approval": submission.approval_id,
        "remedy": [
            {
                **remedy_payload(remedy, needs_approval=remedy_needs_approval),
                "status": remedy.status,
                "approval": remedy.approval_id,
            }
            for remedy in remedies
        ],
    }


def escalation_payload(escalation: Escalation, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "id": escalation.pk,
        "kind": escalation.kind,
        "status": escalation.status,
        "reason": escalation.reason,
        "due_at": iso(escalation.due_at),
        "overdue": escalation.is_overdue(now),
        "offer_set": str(escalation.offer_set_id) if escalation.offer_set_id else None,
        "incident": escalation.incident_id,
        "customer": escalation.customer.external_id,
        "assigned_to": escalation.assigned_to.get_username() if escalation.assigned_to_id else None,
        "acknowledged_at": iso(escalation.acknowledged_at),
        "resolved_at": iso(escalation.resolved_at),
        "resolution": escalation.resolution,
        "created_at": iso(escalation.created_at),
    }


def offer_set_payload(
    offer_set: OfferSet,
    offers: list[Offer],
    escalation: Escalation | None,
    *,
    not_offered: list[dict[str, Any]] | None = None,
    submission: OutcomeSubmission | None = None,
    remedies: Sequence[Remedy] = (),
    approval_limit: Decimal | None = None,
) -> dict[str, Any]:
    """The set as shown; ``remedies`` are its incident's (those added by later sets of it are left out).

    ``approval_limit``: the reader's (None for a manager), to say whether the remedy not given yet would
    wait for a manager's approval when they record the outcome.
    """
    customer = offer_set.customer
    shown = [r for r in remedies if r.created_at <= offer_set.created_at]
    to_give = [(r.estimated_cost, r.requires_approval) for r in shown if r.status != Remedy.Status.GIVEN]
    needs_approval = remedy_needs_approval(to_give, approval_limit)
    payload: dict[str, Any] = {
        "id": str(offer_set.id),
        "created_at": iso(offer_set.created_at),
        "expires_at": iso(offer_set.expires_at),
        "customer": {
            "external_id": customer.external_id,
            "name": customer.name,
            "tier": customer.tier,
            "lifetime_value": money(customer.lifetime_value),
            "interests": list(customer.interests or []),
        },
        "incident": incident_payload(offer_set.incident),
        "remedy": [remedy_payload(r, needs_approval=needs_approval) for r in shown],
        "options": [option_payload(offer) for offer in offers],
        "escalation": escalation_ref_payload(escalation),
        "outcome": outcome_payload(submission, offers, remedies, remedy_needs_approval=needs_approval),
    }
    if not_offered is not None:
        payload["not_offered"] = not_offered
    return payload


# --- Customers (the integration's endpoints) -------------------------------------------------------


class CustomerChangeSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    by = serializers.CharField(help_text="username")
    field = serializers.ChoiceField(choices=FIELDS)
    old = serializers.JSONField(
        allow_null=True, help_text='the value before: a string ("120.00" for decimals), a list for interests'
    )
    new = serializers.JSONField(allow_null=True, help_text="the value after")


class CustomerDetailSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField()
    tier = serializers.ChoiceField(choices=Tier.choices)
    lifetime_value = serializers.CharField(help_text="decimal string")
    interests = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="when a field last changed")
    changes = CustomerChangeSerializer(many=True, help_text="every change to a stored field, newest first")


class CustomersBulkInputSerializer(serializers.Serializer):
    customers = serializers.ListField(
        child=CustomerInputSerializer(), max_length=BULK_MAX, help_text="at most 1,000; external_ids distinct"
    )


class CustomersBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="customers that existed, whether or not a value changed")


def flat_errors(detail: Any, path: str = "") -> dict[str, list[Any]]:
    """DRF's nested errors with flat paths as keys, as packs name them: ``customers[17].tier``,
    ``customers[3].interests[0]``; an item's own errors (not an object) under ``customers[3]``."""
    if isinstance(detail, dict):
        flat: dict[str, list[Any]] = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY and path:
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            flat.update(flat_errors(value, sub))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {path: list(detail)} if detail else {}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(flat_errors(item, f"{path}[{index}]"))
        return flat
    return {path: [detail]}


def customer_put_validate(data: Any, *, external_id: str) -> dict[str, Any]:
    """A PUT's body and the URL's external_id, validated as an offer-set POST's customer object is.

    The body may repeat the external_id; another one is an error (a customer is not renamed).
    """
    errors: dict[str, Any] = {}
    validated: dict[str, Any] = {}
    fields = CustomerFieldsSerializer(data=data)
    if fields.is_valid():
        validated.update(fields.validated_data)
    else:
        errors.update(fields.errors)
    try:
        validated["external_id"] = CustomerInputSerializer().fields["external_id"].run_validation(external_id)
    except serializers.ValidationError as exc:
        errors["external_id"] = exc.detail
    posted = data.get("external_id") if isinstance(data, Mapping) else None
    if posted is not None and "external_id" not in errors and str(posted).strip() != validated["external_id"]:
        errors["external_id"] = ["must be the external_id of the URL, or left out"]
    if errors:
        raise serializers.ValidationError(errors)
    return validated


def customers_bulk_validate(data: Any) -> list[dict[str, Any]]:
    """The bulk body's customers, validated each as an offer-set POST's customer object; errors with flat
    paths (``{"customers[17].tier": ["..."]}``)."""
    serializer = CustomersBulkInputSerializer(data=data)
    customers = data.get("customers") if isinstance(data, Mapping) else None
    if isinstance(customers, list) and len(customers) > BULK_MAX:  # before validating each of them
        raise serializers.ValidationError(
            {"customers": [f"at most {BULK_MAX} customers in one request, got {len(customers)}"]}
        )
    if not serializer.is_valid():
        raise serializers.ValidationError(flat_errors(serializer.errors))
    return [dict(item) for item in serializer.validated_data["customers"]]


def customer_payload(customer: Any, changes: Sequence[Any]) -> dict[str, Any]:
    """A stored customer as ``GET /api/v1/customers/{external_id}/`` shows it, with its changes newest first."""
    return {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "tier": customer.tier,
        "lifetime_value": money(customer.lifetime_value),
        "interests": list(customer.interests or []),
        "created_at": iso(customer.created_at),
        "updated_at": iso(customer.updated_at),
        "changes": [
            {"at": iso(change.at), "by": change.by, "field": change.field, "old": change.old, "new": change.new}
            for change in changes
        ],
    }


# --- Simulations (a policy pack replayed before it goes live) -----------------------------------

PACK_SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": "array", "items": {"type": "object", "additionalProperties": True}}
        for name in ("categories", "perks", "policies")
    },
    "additionalProperties": False,
}


@extend_schema_field(PACK_SCHEMA)
class PackField(serializers.JSONField):
    """Any JSON here; the import's own validation (``pack_plan``) judges it."""


class SimulationInputSerializer(serializers.Serializer):
    pack = PackField(
        help_text="the draft: a policy pack as `import_policies` reads it (categories, perks and policies, each "
        "optional), applied over the live policies by slug, `--replace` not implied"
    )
    days = serializers.IntegerField(
        min_value=DAYS_MIN, max_value=DAYS_MAX, default=30, help_text="days of incidents to replay (default 30)"
    )


class SimulationStartedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["running"])


class SimulationPolicySerializer(serializers.Serializer):
    slug = serializers.CharField()
    shown_before = serializers.IntegerField()
    shown_after = serializers.IntegerField()
    expected_cost_before = serializers.CharField(help_text="decimal string")
    expected_cost_after = serializers.CharField(help_text="decimal string")
    monthly_cap = serializers.CharField(allow_null=True, help_text="decimal string; null where uncapped")
    month_spent = serializers.CharField(help_text="decimal string: this month's spend so far")
    projected_month_spend = serializers.CharField(
        help_text="decimal string: spent so far plus the replay's daily expected cost times the days left"
    )
    cap_reached_on = serializers.DateField(allow_null=True, help_text="the day the projection passes the cap")


class SimulationOptionSerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=["a", "b", "c"])
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField()
    policy = serializers.CharField(help_text="the policy's slug")
    estimated_cost = serializers.CharField(help_text="decimal string")


class SimulationExampleSerializer(serializers.Serializer):
    incident = serializers.IntegerField()
    before = SimulationOptionSerializer(many=True)
    after = SimulationOptionSerializer(many=True)


class SimulationSampleSerializer(serializers.Serializer):
    every = serializers.IntegerField()
    incidents = serializers.IntegerField()
    of = serializers.IntegerField()


class SimulationResultSerializer(serializers.Serializer):
    """As ``simulate_policies --json`` prints it."""

    days = serializers.IntegerField()
    incidents = serializers.IntegerField()
    changed = serializers.IntegerField(help_text="incidents whose shown options or remedy differ")
    no_options_before = serializers.IntegerField()
    no_options_after = serializers.IntegerField()
    expected_cost_before = serializers.CharField(help_text="decimal string")
    expected_cost_after = serializers.CharField(help_text="decimal string")
    policies = SimulationPolicySerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    examples = SimulationExampleSerializer(many=True, help_text="up to 20 changed incidents")
    sample = SimulationSampleSerializer(required=False, help_text="only for a sampled replay")


class SimulationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Simulation.Status.choices)
    progress = serializers.FloatField(min_value=0.0, max_value=1.0)
    result = SimulationResultSerializer(allow_null=True, help_text="null until done")
    error = serializers.CharField(allow_null=True, help_text="null unless failed")


def _unstorable_text(pack: Any) -> dict[str, list[str]]:
    """Text the database cannot store (NUL, an unpaired surrogate), anywhere in the pack, by its path.
    Walked without recursion: the parser already took the document as deep as Python allows."""
    errors: dict[str, list[str]] = {}
    stack: list[tuple[str, Any]] = [("", pack)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _bad_text(key):
                    errors.setdefault(path or "pack", []).append("a key holds a NUL character or an unpaired surrogate")
                else:
                    stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str) and _bad_text(value):
            errors.setdefault(path or "pack", []).append("must not contain NUL characters or unpaired surrogates")
    return errors


def _bad_text(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text)


def pack_error_paths(lines: Sequence[str]) -> dict[str, list[str]]:
    """The import's ``path: message`` lines as ``{path: [messages]}``, the paths exactly as the import prints them."""
    errors: dict[str, list[str]] = {}
    for line in lines:
        path, _, message = line.partition(": ")
        errors.setdefault(path, []).append(message)
    return errors


def simulation_input_validate(data: Any) -> dict[str, Any]:
    """A simulation's ``pack`` and ``days``; the pack planned as an import would plan it (``pack_plan``), its
    problems under the import's paths (``{"policies[0].offers[0].value": ["..."]}``). Every problem at once."""
    serializer = SimulationInputSerializer(data=data)
    errors: dict[str, list[Any]] = {} if serializer.is_valid() else dict(serializer.errors)
    if isinstance(data, Mapping) and data.get("pack") is not None:  # null: "may not be null" said that
        pack = data["pack"]
        problems = _unstorable_text(pack)
        if not problems:
            try:
                pack_plan(pack)
            except PackError as exc:
                problems = pack_error_paths(exc.errors)
        for path, messages in problems.items():
            errors.setdefault(path, []).extend(messages)
    if errors:
        raise serializers.ValidationError(errors)
    return dict(serializer.validated_data)


def simulation_payload(simulation: Simulation) -> dict[str, Any]:
    return {
        "id": str(simulation.id),
        "status": simulation.status,
        "progress": simulation.progress,
        "result": simulation.result,
        "error": simulation.error,
    }


# --- Operational events ------------------------------------------------------------------------


class EventCustomerInputSerializer(CustomerInputSerializer):
    """One affected customer: a customer object as an offer-set POST takes it, and their order and ticket."""

    order_value = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), default=Decimal("0.00")
    )
    external_ref = serializers.CharField(max_length=128, required=False, allow_null=True, allow_blank=True)

    def validate_order_value(self, value: Decimal) -> Decimal:
        return value + 0

    def validate_external_ref(self, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class EventCustomersInputSerializer(serializers.Serializer):
    customers = serializers.ListField(
        child=EventCustomerInputSerializer(),
        min_length=1,
        help_text=f"at most {EVENTS_MAX_PER_CALL:,} per call; external_ids distinct",
    )


class EventInputSerializer(EventCustomersInputSerializer):
    name = serializers.CharField(max_length=200)
    category = serializers.CharField(max_length=64, help_text="slug of an active category")
    severity = serializers.IntegerField(min_value=1, max_value=5)
    fault = serializers.ChoiceField(choices=Fault.choices, default=Fault.COMPANY)
    correctable = serializers.BooleanField(default=True)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    occurred_at = serializers.DateTimeField(required=False, help_text="default now; not in the future")

    validate_occurred_at = IncidentInputSerializer.validate_occurred_at


def _event_customers_checked(data: Any) -> None:
    """Before validating each row: the count (over ``EVENTS_MAX_PER_CALL`` is one error, not 10,001); after:
    an ``external_id`` repeated within the call names the second row."""
    customers = data.get("customers") if isinstance(data, Mapping) else None
    if isinstance(customers, list) and len(customers) > EVENTS_MAX_PER_CALL:
        raise serializers.ValidationError(
            {
                "customers": [
                    f"at most {EVENTS_MAX_PER_CALL:,} customers in one call, got {len(customers):,}; add more with "
                    "POST /api/v1/events/{id}/customers/"
                ]
            }
        )


def _repeats(customers: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    seen: dict[str, int] = {}
    errors: dict[str, list[str]] = {}
    for position, customer in enumerate(customers):
        external_id = customer["external_id"]
        if external_id in seen:
            errors[f"customers[{position}].external_id"] = [
                f"{external_id!r} is already customers[{seen[external_id]}] of this call"
            ]
        else:
            seen[external_id] = position
    return errors


def event_customers_validate(data: Any, *, serializer_class: type[serializers.Serializer] | None = None) -> dict:
    """A body of customers (``POST /api/v1/events/{id}/customers/``), or with ``EventInputSerializer`` a whole
    event; errors with flat paths (``customers[17].email``), nothing created."""
    _event_customers_checked(data)
    serializer = (serializer_class or EventCustomersInputSerializer)(data=data)
    if not serializer.is_valid():
        raise serializers.ValidationError(flat_errors(serializer.errors))
    validated = dict(serializer.validated_data)
    validated["customers"] = [dict(item) for item in validated["customers"]]
    repeats = _repeats(validated["customers"])
    if repeats:
        raise serializers.ValidationError(repeats)
    return validated


def event_input_validate(data: Any, *, index: PolicyIndex) -> dict[str, Any]:
    """``POST /api/v1/events/``'s body, with ``category`` the compiled category; every problem at once where
    the rows are fine (an unknown category is named with the other fields' errors)."""
    errors: dict[str, list[Any]] = {}
    validated: dict[str, Any] = {}
    try:
        validated = event_customers_validate(data, serializer_class=EventInputSerializer)
    except serializers.ValidationError as exc:
        errors = dict(exc.detail)
    slug = validated.get("category") if validated else (data.get("category") if isinstance(data, Mapping) else None)
    category = index.categories.get(slug) if isinstance(slug, str) else None
    if isinstance(slug, str) and slug and category is None and "category" not in errors:
        valid = ", ".join(sorted(index.categories)) or "(none: load a policy pack)"
        errors["category"] = [f"unknown or inactive category {slug!r}; valid categories: {valid}"]
    if errors:
        raise serializers.ValidationError(errors)
    validated["category"] = category
    return validated


class EventStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Event.Status.choices)
    total = serializers.IntegerField(help_text="customers in the event")


class EventCustomersAddedSerializer(EventStartedSerializer):
    added = serializers.IntegerField(help_text="customers this call added; those already in the event are skipped")


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Event.Status.choices)
    total = serializers.IntegerField(help_text="customers in the event")
    processed = serializers.IntegerField(help_text="customers whose incident and offer set are made")
    emailed = serializers.IntegerField()
    chosen = serializers.IntegerField(help_text="customers who chose an option")
    declined = serializers.IntegerField(help_text='customers who chose "None of these"')
    escalated = serializers.IntegerField(help_text='customers who asked to be called ("Please call me")')
    failed = serializers.IntegerField(help_text="e-mails that failed or were cut off (re-send from the admin)")
    no_options = serializers.IntegerField(help_text="customers whose set had no option (budgets or caps ran out)")
    cancelled = serializers.IntegerField(help_text="customers a cancel stopped before their e-mail went")
    category = serializers.CharField(help_text="the category's slug")
    severity = serializers.IntegerField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def event_payload(event: Event, figures: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": event.pk,
        "name": event.name,
        "status": event.status,
        **{name: figures.get(name, 0) for name in EVENT_FIGURES},
        "category": event.category.slug,
        "severity": event.severity,
        "created_by": event.created_by.get_username(),
        "created_at": iso(event.created_at),
        "finished_at": iso(event.finished_at),
    }


def events_payload(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Events as the API shows them, their figures counted now (two queries for the page)."""
    figures = event_figures([event.pk for event in events])
    return [event_payload(event, figures[event.pk]) for event in events]
