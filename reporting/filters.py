"""The reports' and the outcome list's filters; a bad value is a 400 under its own name."""

from __future__ import annotations

from datetime import date
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from compensation.models import AcceptanceStat, Outcome
from policies.choices import OfferKind, Tier
from policies.models import Category, Policy
from reporting.reports import ReportScope, outcomes_in_scope, report_period_default

# --- Reports and the outcome list ------------------------------------------------------------

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)


def _category_filter() -> django_filters.ModelChoiceFilter:
    """``category``: a category's slug (every report, the outcome list and the learning report alike)."""
    return django_filters.ModelChoiceFilter(
        queryset=Category.objects.all(),
        to_field_name="slug",
        method="filter_scope",
        help_text="category slug",
        error_messages={"invalid_choice": "no category has this slug"},
    )


def _policy_filter() -> django_filters.ModelChoiceFilter:
    """``policy``: a policy's id (every report, the outcome list and the learning report alike)."""
    return django_filters.ModelChoiceFilter(
        queryset=Policy.objects.all(),
        method="filter_scope",
        help_text="policy id",
        error_messages={"invalid_choice": "no policy has this id"},
    )


class IdFilter(django_filters.Filter):
    """A row's id: any whole number (anything else is a 400); one that names nothing filters out everything."""

    field_class = forms.IntegerField


def _event_filter() -> IdFilter:
    """``event``: an operational event's id (every report that takes category, tier and policy, and the
    outcome list); an id no event has gives zeros, as a period without data does."""
    return IdFilter(method="filter_scope", help_text="operational event id")


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
    """Period and filters of every report (see the OpenAPI schema); dates are in TIME_ZONE, both inclusive."""

    since = django_filters.DateFilter(method="filter_scope", help_text="from this date (YYYY-MM-DD), inclusive")
    until = django_filters.DateFilter(method="filter_scope", help_text="to this date (YYYY-MM-DD), inclusive")
    category = _category_filter()
    tier = django_filters.ChoiceFilter(choices=Tier.choices, method="filter_scope")
    policy = _policy_filter()
    event = _event_filter()

    class Meta:
        model = Outcome
        fields = ["since", "until", "category", "tier", "policy", "event"]
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
            event=data.get("event"),
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


# --- The learning report ---------------------------------------------------------------------


class LearningFilter(django_filters.FilterSet):
    """``category`` (slug) and ``policy`` (id), validated as every report validates them; the model has no
    period, so other parameters are ignored, as unknown ones are everywhere."""

    category = _category_filter()
    policy = _policy_filter()

    class Meta:
        model = AcceptanceStat
        fields = ["category", "policy"]

    def filter_scope(self, queryset: QuerySet, name: str, value: object) -> QuerySet:
        return queryset  # the selector applies them (reporting.learning.learning_rows)

    def selection(self) -> dict[str, Any]:
        """The validated filters as :func:`reporting.learning.report_learning` takes them."""
        data = self.form.cleaned_data
        return {"category": data.get("category"), "policy": data.get("policy")}
