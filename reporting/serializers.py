"""Shapes of the reports and the outcome list (JSON rows and CSV cells)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from rest_framework import serializers

from compensation.serializers import iso
from policies.choices import OfferKind
from policies.money import money

# --- Reports (output) ---------------------------------------------------------------------

REMEDY_COST_HELP = (
    "decimal string: what the remedies given in the period cost (their estimated_cost, by when given: with "
    "the outcome, or when a manager approved them), 0.00 when none; not part of total_cost"
)


class SummaryReportSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    incidents = serializers.IntegerField()
    offer_sets = serializers.IntegerField()
    outcomes = serializers.IntegerField(help_text="recorded outcomes: accepted + declined")
    accepted = serializers.IntegerField()
    declined = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True, help_text="accepted / outcomes; null without outcomes")
    total_cost = serializers.CharField(
        help_text="decimal string: the chosen options' estimated_cost (remedies are counted apart, in remedy_cost)"
    )
    average_cost_per_acceptance = serializers.CharField(allow_null=True, help_text="total_cost / accepted")
    remedy_cost = serializers.CharField(help_text=REMEDY_COST_HELP)
    average_satisfaction = serializers.FloatField(allow_null=True)
    escalations_opened = serializers.IntegerField()
    escalations_resolved = serializers.IntegerField(help_text="of those opened in the period, the ones closed")
    repeat_incident_share = serializers.FloatField(allow_null=True, help_text="incidents with repeat_count >= 2")
    median_seconds_to_outcome = serializers.FloatField(allow_null=True, help_text="outcome submitted - set created")


class _GroupReportSerializer(serializers.Serializer):
    offered = serializers.IntegerField(help_text="options shown in offer sets that got a recorded outcome")
    chosen = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True, help_text="chosen / offered")
    total_cost = serializers.CharField(help_text="decimal string: the chosen options' estimated_cost")
    remedy_cost = serializers.CharField(
        help_text=REMEDY_COST_HELP + "; grouped by the remedy item's own policy and kind, the incident's "
        "category and the agent who made the offer set"
    )
    average_satisfaction = serializers.FloatField(allow_null=True)


class _OutcomeCountsMixin(serializers.Serializer):
    outcomes = serializers.IntegerField(help_text="recorded outcomes, the declined included")
    declined = serializers.IntegerField()
    outcome_acceptance_rate = serializers.FloatField(allow_null=True, help_text="chosen / outcomes")


class PolicyNameSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CategoryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class AgentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class PolicyReportSerializer(_GroupReportSerializer):
    policy = PolicyNameSerializer()
    monthly_cap = serializers.CharField(
        allow_null=True, help_text="decimal string: the policy's monthly budget as set now; null where uncapped"
    )
    month_spent = serializers.CharField(
        help_text="decimal string: what the policy has spent in the current calendar month (TIME_ZONE), whatever "
        "the report's period; 0.00 when nothing"
    )
    month_remaining = serializers.CharField(
        allow_null=True,
        help_text="decimal string: monthly_cap - month_spent, never below 0.00; null where uncapped",
    )


class KindReportSerializer(_GroupReportSerializer):
    kind = serializers.ChoiceField(choices=OfferKind.choices)


class CategoryReportSerializer(_OutcomeCountsMixin, _GroupReportSerializer):
    category = CategoryRefSerializer()


class AgentReportSerializer(_OutcomeCountsMixin, _GroupReportSerializer):
    agent = AgentRefSerializer()


class OfferTemplateRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the offer template's id")
    kind = serializers.ChoiceField(choices=OfferKind.choices)
    title = serializers.CharField(help_text="the offer's title template as stored, placeholders unfilled")


class PositionCountsSerializer(serializers.Serializer):
    a = serializers.IntegerField(help_text="recorded sets that showed the offer first")
    b = serializers.IntegerField(help_text="recorded sets that showed the offer second")
    c = serializers.IntegerField(help_text="recorded sets that showed the offer third")


class LearningReportSerializer(serializers.Serializer):
    policy = PolicyNameSerializer()
    offer = OfferTemplateRefSerializer()
    category = serializers.CharField(help_text="category slug")
    shown = serializers.IntegerField(
        help_text="offer sets with a recorded outcome (declined ones included) that showed the offer: a + b + c"
    )
    shown_at = PositionCountsSerializer(help_text="how often those sets showed the offer at a, b and c")
    chosen = serializers.IntegerField(help_text="how often it was chosen")
    expected = serializers.FloatField(
        help_text="the choices an average offer would have had where this one stood: sum over a, b, c of "
        "shown_at × the category's share of recorded outcomes choosing that position (with "
        "RANKING_POSITION_CORRECTION=off: shown / 3); 4 decimal places"
    )
    propensity_mean = serializers.FloatField(
        help_text="the posterior mean of the offer's propensity in the category, as the ranking uses it now: "
        "1/3 × (chosen + 2) / (expected + 2) while below 1; 4 significant digits"
    )
    interval = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        help_text="[low, high]: the 90% credible interval of the posterior Beta(chosen + 2, max(0.5, "
        "(expected + 2) × 3 − chosen − 2)); 4 significant digits",
    )


class OutcomeRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    offer_set = serializers.UUIDField()
    incident = serializers.IntegerField()
    customer = serializers.CharField(help_text="the customer's external_id")
    agent = serializers.CharField(help_text="username of the agent who made the offer set")
    category = serializers.CharField(help_text="category slug")
    tier = serializers.CharField(help_text="the customer's tier when the outcome was recorded")
    choice = serializers.CharField(help_text="a, b, c or declined")
    accepted = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=OfferKind.choices, allow_null=True)
    policy = PolicyNameSerializer(allow_null=True)
    cost = serializers.CharField(help_text="decimal string: the chosen option's estimated_cost; 0.00 when declined")
    remedy_cost = serializers.CharField(
        help_text="decimal string: what the remedies given with this outcome cost (those a manager had to approve "
        "count once approved), 0.00 when none; not part of cost"
    )
    currency = serializers.CharField()
    satisfaction = serializers.IntegerField(allow_null=True)
    coupon_code = serializers.CharField(
        allow_null=True,
        help_text="the coupon the outcome issued: whole for managers, masked to its last 4 characters for "
        "analysts (****7Q2F); null without one",
    )
    offer_set_created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    seconds_to_outcome = serializers.FloatField(help_text="submitted_at - offer_set_created_at")


# --- Cells of the outcome list, JSON and CSV ----------------------------------------------------

COUPON_MASK = "****"


def coupon_code_shown(code: str | None, *, whole: bool) -> str | None:
    """The code whole (managers), or ``****`` and its last 4 characters (analysts): ``****7Q2F``.

    None and "" stay as they are; a code of 4 characters or fewer shows only ``****``.
    ``reporting.export`` writes the same in SQL.
    """
    if whole or not code:
        return code
    return COUPON_MASK + (code[-4:] if len(code) > 4 else "")


def seconds_to_outcome(created_at: datetime, submitted_at: datetime) -> float:
    """``submitted_at - created_at`` in seconds, rounded to the millisecond from the exact microseconds
    (halves away from zero, as PostgreSQL's ``round(numeric, 3)``): 60.5, 120.0."""
    micro = (submitted_at - created_at) // timedelta(microseconds=1)
    millis = (abs(micro) + 500) // 1000
    return (millis if micro >= 0 else -millis) / 1000


def outcome_row_fields(row: Any, *, whole_coupons: bool) -> dict[str, Any]:
    """One row of :func:`reporting.reports.outcome_rows`, flat and formatted, keyed as ``CSV_HEADER``;
    coupon codes whole or masked (:func:`coupon_code_shown`)."""
    created_at, submitted_at = row.offer_set_created_at, row.submitted_at
    return {
        "id": row.id,
        "offer_set": str(row.offer_set_id),
        "incident": row.offer_set__incident_id,
        "customer": row.customer__external_id,
        "agent": row.agent__username,
        "category": row.category__slug,
        "tier": row.tier,
        "choice": row.choice,
        "accepted": row.accepted,
        "kind": row.kind or None,
        "policy_id": row.policy_id,
        "policy_name": row.policy__name,
        "cost": money(row.cost),
        "remedy_cost": money(row.remedy_cost),
        "currency": row.currency,
        "satisfaction": row.satisfaction,
        "coupon_code": coupon_code_shown(row.coupon__code, whole=whole_coupons),
        "offer_set_created_at": iso(created_at),
        "submitted_at": iso(submitted_at),
        "recorded_at": iso(row.recorded_at),
        "seconds_to_outcome": seconds_to_outcome(created_at, submitted_at),
    }


def outcome_row_payload(row: Any, *, whole_coupons: bool) -> dict[str, Any]:
    """The outcome list's JSON row: the fields, with the policy as ``{"id", "name"}`` or null."""
    fields = outcome_row_fields(row, whole_coupons=whole_coupons)
    policy_id, policy_name = fields.pop("policy_id"), fields.pop("policy_name")
    fields["policy"] = {"id": policy_id, "name": policy_name} if policy_id is not None else None
    return fields


# A cell a spreadsheet could run as a formula (OWASP, "CSV Injection"): one that starts with a tab or a
# carriage return, or with = + - @ or their full-width forms (＝ ＋ － ＠), also after spaces, tabs or line
# breaks; or where such a sign follows a ; a tab or a line break inside the cell (where a spreadsheet splitting
# on ; or tabs starts a new cell). Written with the characters themselves, not escapes, so that Python's re
# and PostgreSQL's regular expressions read it alike (reporting.export runs it in SQL).
CSV_FORMULA = "^[\t\r]|(^|[;\t\r\n])[ \t\r\n]*[=+@\uff1d\uff0b\uff0d\uff20-]"
_CSV_FORMULA = re.compile(CSV_FORMULA)


def csv_cell(value: str | None) -> str:
    """A text cell a spreadsheet will not run: one that could be read as a formula gets a leading '.

    Only text columns go through it: numbers (ids, money, seconds) stay numbers, a negative one too.
    """
    if value is None:
        return ""
    return "'" + value if _CSV_FORMULA.search(value) else value


def outcome_csv_row(row: Any, *, whole_coupons: bool) -> list[Any]:
    """The CSV's cells for one row, in ``CSV_HEADER``'s order; free text made safe for spreadsheets.

    Built directly from the row, not through :func:`outcome_row_fields`: an export runs it a
    million times (on SQLite; PostgreSQL writes the same cells with ``COPY``, see reporting.export).
    """
    created_at, submitted_at = row.offer_set_created_at, row.submitted_at
    return [
        row.id,
        row.offer_set_id,
        row.offer_set__incident_id,
        csv_cell(row.customer__external_id),
        csv_cell(row.agent__username),
        csv_cell(row.category__slug),
        row.tier,
        row.choice,
        "true" if row.accepted else "false",
        row.kind,
        row.policy_id,
        csv_cell(row.policy__name),
        money(row.cost),
        money(row.remedy_cost),
        row.currency,
        row.satisfaction,
        csv_cell(coupon_code_shown(row.coupon__code, whole=whole_coupons)),
        iso(created_at),
        iso(submitted_at),
        iso(row.recorded_at),
        seconds_to_outcome(created_at, submitted_at),
    ]
