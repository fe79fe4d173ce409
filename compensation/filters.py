"""django-filter FilterSets for list endpoints; a bad value is a 400 that says why."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from compensation.models import OfferSet


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

    def filter_since(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__date__gte=value)

    def filter_until(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(created_at__date__lte=value)
