"""django-filter FilterSets for list endpoints; a bad value is a 400 that says why."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from compensation.models import Escalation, OfferSet, Outcome
from compensation.reports import ReportScope, outcomes_in_scope, report_period_default
from policies.choices import OfferKind, Tier
from policies.models import Category, Policy


class OfferSetFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(
        field_name="customer__external_id", help_text="the customer's external_id", max_length=64
    )
    category = django_filters.CharFilter(field_name="incident__category__slug", help_text="category slug")
    since = django_filters.DateFilter(
        field_name="created_at", method="filter_since", help_text="created on or after this date (YYYY-MM-DD, UTC)"
    )
    until = django_filters.DateFilter(
        field_name="created_at", method="filter_until", help_text="created on or before this date (YYYY-MM-DD, UTC)"
    )

    class Meta:
        model = OfferSet
        fields = ["customer", "category", "since", "until"]

    def filter_since(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(created_at__gte=utc_midnight(value))

    def filter_until(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        if value >= date.max:
            return queryset
        return queryset.filter(created_at__lt=utc_midnight(value + timedelta(days=1)))


def utc_midnight(day: date) -> datetime:
    """The start of ``day`` in UTC, as API.md's dates mean (an index-friendly range, not __date)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``, any case); anything else is an error, not "no filter"."""

    widget = forms.TextInput  # NullBooleanSelect would turn an unknown value into None before validation

    def to_python(self, value: object) -> bool | None:
        if value in (None, ""):
            return None
        lowered = str(value).lower()
        if lowered in {"true", "1"}:
            return True
        if lowered in {"false", "0"}:
            return False
        raise forms.ValidationError("must be true or false", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class EscalationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Escalation.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Escalation.Kind.choices)
    overdue = StrictBooleanFilter(method="filter_overdue", help_text="past due_at and not closed")

    class Meta:
        model = Escalation
        fields = ["status", "kind", "overdue"]

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        late = Q(status__in=[Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED], due_at__lt=timezone.now())
        return queryset.filter(late) if value else queryset.exclude(late)


# --- Reports and the outcome list ------------------------------------------------------------

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)


class ReportFilterForm(forms.Form):
    """The period's dates must make sense together and stay within the calendar's reach."""

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in ("since", "until"):
            value = cleaned.get(name)
            if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
                self.add_error(name, f"must be a date between {EARLIEST_DATE} and {LATEST_DATE}")
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "must be on or after since")
        return cleaned


class ReportFilter(django_filters.FilterSet):
    """Period and filters of every report (API.md, "Reports"); dates are in TIME_ZONE, both inclusive."""

    since = django_filters.DateFilter(method="filter_scope", help_text="from this date (YYYY-MM-DD), inclusive")
    until = django_filters.DateFilter(method="filter_scope", help_text="to this date (YYYY-MM-DD), inclusive")
    category = django_filters.ModelChoiceFilter(
        queryset=Category.objects.all(),
        to_field_name="slug",
        method="filter_scope",
        help_text="category slug",
        error_messages={"invalid_choice": "no category has this slug"},
    )
    tier = django_filters.ChoiceFilter(choices=Tier.choices, method="filter_scope")
    policy = django_filters.ModelChoiceFilter(
        queryset=Policy.objects.all(),
        method="filter_scope",
        help_text="policy id",
        error_messages={"invalid_choice": "no policy has this id"},
    )

    class Meta:
        model = Outcome
        fields = ["since", "until", "category", "tier", "policy"]
        form = ReportFilterForm

    def filter_scope(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset  # applied together, by filter_queryset

    def scope(self, *, default_period: bool) -> ReportScope:
        """The validated filters; with ``default_period``, a missing date falls back to the last 30 days."""
        data = self.form.cleaned_data
        since, until = data.get("since"), data.get("until")
        if default_period:
            since, until = report_period_default(since=since, until=until)
        return ReportScope(
            since=since,
            until=until,
            category=data.get("category"),
            tier=data.get("tier") or None,
            policy=data.get("policy"),
        )

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        return outcomes_in_scope(self.scope(default_period=False), queryset)


class OutcomeFilter(ReportFilter):
    """The outcome list: the report filters (no default period) and choice, kind, agent."""

    choice = django_filters.ChoiceFilter(
        choices=[("a", "a"), ("b", "b"), ("c", "c"), ("declined", "declined")], help_text="a, b, c or declined"
    )
    kind = django_filters.ChoiceFilter(choices=OfferKind.choices, help_text="the chosen option's kind")
    agent = django_filters.CharFilter(
        field_name="agent__username", max_length=150, help_text="the username of the agent who made the set"
    )

    class Meta(ReportFilter.Meta):
        fields = [*ReportFilter.Meta.fields, "choice", "kind", "agent"]
