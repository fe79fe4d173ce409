"""django-filter FilterSets for list endpoints; a bad value is a 400 that says why."""

from __future__ import annotations

from datetime import date

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from compensation.models import Escalation, OfferSet
from compensation.periods import days_between


class OfferSetFilter(django_filters.FilterSet):
    customer = django_filters.CharFilter(
        field_name="customer__external_id", help_text="the customer's external_id", max_length=64
    )
    category = django_filters.CharFilter(field_name="incident__category__slug", help_text="category slug")
    since = django_filters.DateFilter(
        field_name="created_at",
        method="filter_since",
        help_text="created on or after this day (YYYY-MM-DD, TIME_ZONE)",
    )
    until = django_filters.DateFilter(
        field_name="created_at",
        method="filter_until",
        help_text="created on or before this day (YYYY-MM-DD, TIME_ZONE)",
    )

    class Meta:
        model = OfferSet
        fields = ["customer", "category", "since", "until"]

    def filter_since(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(days_between("created_at", since=value))

    def filter_until(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(days_between("created_at", until=value))


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


@extend_schema_field(OpenApiTypes.BOOL)
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
