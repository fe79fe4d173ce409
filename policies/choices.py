"""Vocabularies shared by policies and the run-time side (compensation imports these)."""

from __future__ import annotations

from django.db import models


class OfferKind(models.TextChoices):
    PERCENT_DISCOUNT = "percent_discount", "Percent discount on the next order"
    REFUND = "refund", "Refund (percent of this order)"
    FIXED_CREDIT = "fixed_credit", "Fixed account credit"
    FREE_SHIPPING = "free_shipping", "Free shipping"
    EXPEDITED_REPLACEMENT = "expedited_replacement", "Expedited replacement"
    GIFT = "gift", "Gift"
    PERSONALIZED_PERK = "personalized_perk", "Personalized perk (matched to interests)"
    ESCALATION = "escalation", "Escalation to a senior manager"


# The kinds in a few words, for history lines ("Offer 1 (fixed credit): value 30.00 → 35.00"); the labels
# above are the admin's sentences.
OFFER_KIND_WORDS: dict[str, str] = {
    OfferKind.PERCENT_DISCOUNT: "percent discount",
    OfferKind.REFUND: "refund",
    OfferKind.FIXED_CREDIT: "fixed credit",
    OfferKind.FREE_SHIPPING: "free shipping",
    OfferKind.EXPEDITED_REPLACEMENT: "expedited replacement",
    OfferKind.GIFT: "gift",
    OfferKind.PERSONALIZED_PERK: "personalized perk",
    OfferKind.ESCALATION: "escalation",
}

PERCENT_KINDS = frozenset({OfferKind.PERCENT_DISCOUNT, OfferKind.REFUND})
AMOUNT_KINDS = frozenset(
    {OfferKind.FIXED_CREDIT, OfferKind.FREE_SHIPPING, OfferKind.EXPEDITED_REPLACEMENT, OfferKind.GIFT}
)
VALUELESS_KINDS = frozenset({OfferKind.PERSONALIZED_PERK, OfferKind.ESCALATION})
# What a remedy may be: putting right what went wrong, never a discount on the future, a perk or a call.
REMEDY_KINDS: tuple[str, ...] = (
    OfferKind.REFUND,
    OfferKind.FIXED_CREDIT,
    OfferKind.FREE_SHIPPING,
    OfferKind.EXPEDITED_REPLACEMENT,
    OfferKind.GIFT,
)
REMEDY_KIND_CHOICES = [(kind.value, kind.label) for kind in OfferKind if kind in REMEDY_KINDS]


class Placement(models.TextChoices):
    RANKED = "ranked", "Ranked with the other options (default)"
    LEAD = "lead", "Leads: its best option is option a"


class Fault(models.TextChoices):
    COMPANY = "company", "The company"
    CUSTOMER = "customer", "The customer"
    THIRD_PARTY = "third_party", "A third party (carrier, partner)"
    UNKNOWN = "unknown", "Unknown"


class Tier(models.TextChoices):
    STANDARD = "standard", "Standard"
    SILVER = "silver", "Silver"
    GOLD = "gold", "Gold"
    PLATINUM = "platinum", "Platinum"


# Placeholders a title or message template may use, and what each renders.
TEMPLATE_PLACEHOLDERS: dict[str, str] = {
    "customer_name": "the customer's name as posted",
    "incident": "the incident category's name",
    "value": "the offer's value without trailing zeros (30)",
    "amount": "the option's money value with two decimals (10.00)",
    "currency": "the deployment currency (USD)",
    "perk_name": "the matched perk's name (personalized perks)",
    "first_name": "the first word of the customer's name (there, without a name)",
    "money": "the option's money value with its currency sign, for MONEY_LOCALE ($46.00)",
    "ticket": "the incident's ticket reference (external_ref), or nothing",
    "repeat_count": "the customer's incidents in the repeat window, this one included",
    "same_category_repeat_count": "the same-category incidents in the repeat window, this one included",
}
