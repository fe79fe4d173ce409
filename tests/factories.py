"""factory_boy factories for the models tests build."""

from __future__ import annotations

from decimal import Decimal

import factory

from policies.choices import OfferKind
from policies.models import Category, OfferTemplate, Perk, Policy


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"category_{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("_", " "))


class PerkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Perk

    slug = factory.Sequence(lambda n: f"perk-{n}")
    name = factory.Sequence(lambda n: f"Perk {n}")
    tags = factory.LazyFunction(lambda: ["sports"])
    cost = Decimal("12.00")


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"policy-{n}")
    name = factory.Sequence(lambda n: f"Policy {n}")
    priority = 50

    @factory.post_generation
    def categories(self, create: bool, extracted: list | None, **kwargs: object) -> None:
        if create and extracted:
            self.categories.set(extracted)


class OfferTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OfferTemplate

    policy = factory.SubFactory(PolicyFactory)
    kind = OfferKind.FIXED_CREDIT
    title = "{amount} {currency} credit"
    message = "{customer_name}, we are sorry about the {incident}."
    value = Decimal("10.00")
    order = factory.Sequence(lambda n: n)
