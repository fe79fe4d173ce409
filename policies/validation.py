"""Every rule a policy, offer, perk or category must satisfy, in one place.

The models' ``clean()`` methods and field validators call these functions, and
the admin (through model forms) and the pack importer (through ``full_clean``)
both go through the models, so a rule is written once. Messages name what is
allowed; the caller adds the field name or the pack's field path.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError

from policies.choices import (
    AMOUNT_KINDS,
    PERCENT_KINDS,
    REMEDY_KINDS,
    TEMPLATE_PLACEHOLDERS,
    VALUELESS_KINDS,
    Fault,
    OfferKind,
    Tier,
)

Errors = dict[str, list[str]]

HUNDRED = Decimal("100")
ZERO = Decimal("0")


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


# --- Field validators (used on model fields) ------------------------------------


def validate_non_negative(value: Decimal | int | None) -> None:
    if value is not None and value < 0:
        raise ValidationError("must be 0 or more, got %(value)s", params={"value": value}, code="min_value")


def validate_priority(value: int | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise ValidationError("must be between 0 and 100, got %(value)s", params={"value": value}, code="range")


def validate_severity(value: int | None) -> None:
    if value is not None and not 1 <= value <= 5:
        raise ValidationError("must be between 1 and 5, got %(value)s", params={"value": value}, code="range")


def validate_multiplier(value: Decimal | None) -> None:
    if value is not None and not 1 <= value <= 10:
        raise ValidationError("must be between 1 and 10 (1 = no scaling), got %(value)s", params={"value": value})


def validate_positive_days(value: int | None) -> None:
    if value is not None and value < 1:
        raise ValidationError("must be 1 day or more, got %(value)s", params={"value": value}, code="min_value")


def validate_template(text: str | None) -> None:
    """Only known ``{placeholders}``; literal braces are written ``{{`` and ``}}``."""
    problems = template_problems(text or "")
    if problems:
        raise ValidationError(problems, code="template")


def template_problems(text: str) -> list[str]:
    allowed = ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return [
            "has an unbalanced brace; placeholders look like {customer_name} and a literal brace is written "
            f"{{{{ or }}}} (allowed: {allowed})"
        ]
    problems = []
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_PLACEHOLDERS:
            shown = "{" + field + "}" if field else "{}"
            problems.append(f"unknown placeholder {shown}; allowed: {allowed}")
        elif spec or conversion:
            problems.append(f"placeholder {{{field}}} takes no format or conversion; write it as {{{field}}}")
    return problems


def validate_choices(values: Iterable[str] | None, choices: type, what: str) -> list[str]:
    known = set(choices.values)
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        return [f"must be a list of {what}: {', '.join(choices.values)}"]
    bad = [v for v in values if not isinstance(v, str) or v not in known]
    if bad:
        return [f"unknown {what} {', '.join(map(repr, bad))}; allowed: {', '.join(choices.values)}"]
    return []


def validate_tags(values: object) -> None:
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ValidationError("must be a list of interest tags such as sports, cooking", code="tags")
    bad = [v for v in values if v != v.lower() or any(ch.isspace() for ch in v)]
    if bad:
        raise ValidationError(
            "tags are lowercase words without spaces (use - or _), got %(bad)s",
            params={"bad": ", ".join(bad)},
            code="tags",
        )


# --- Cross-field rules ------------------------------------------------------------


def policy_errors(
    *,
    valid_from: date | None,
    valid_until: date | None,
    severity_min: int | None,
    severity_max: int | None,
    faults: list[str] | None,
    tiers: list[str] | None,
) -> Errors:
    errors: Errors = {}
    if valid_from and valid_until and not valid_from < valid_until:
        _add(errors, "valid_until", f"must be after valid_from ({valid_from}), got {valid_until}")
    if severity_min is not None and severity_max is not None and severity_min > severity_max:
        _add(errors, "severity_max", f"must be at least severity_min ({severity_min}), got {severity_max}")
    for message in validate_choices(faults, Fault, "fault"):
        _add(errors, "faults", message)
    for message in validate_choices(tiers, Tier, "tier"):
        _add(errors, "tiers", message)
    return errors


def offer_errors(
    *,
    kind: str,
    value: Decimal | None,
    max_amount: Decimal | None,
    cost: Decimal | None,
) -> Errors:
    """Rules that depend on the offer's kind (the README's "Offer kinds")."""
    errors: Errors = {}
    if not kind:
        return errors  # the field itself says it is required
    if kind not in OfferKind.values:
        _add(errors, "kind", f"unknown kind {kind!r}; allowed: {', '.join(OfferKind.values)}")
        return errors
    if kind in PERCENT_KINDS:
        if value is None:
            _add(errors, "value", f"is required for {kind}: a percent between 0 and 100")
        elif not ZERO <= value <= HUNDRED:
            _add(errors, "value", f"must be between 0 and 100 for {kind}")
        if kind == OfferKind.PERCENT_DISCOUNT and max_amount is None:
            _add(errors, "max_amount", "is required for percent_discount: the most the discount may be worth")
    elif kind in AMOUNT_KINDS:
        if value is None:
            _add(errors, "value", f"is required for {kind}: the face value, an amount of 0 or more")
        if max_amount is not None:
            _add(errors, "max_amount", f"applies only to percent kinds, not to {kind}; leave it empty")
    elif kind in VALUELESS_KINDS:
        source = "the matched perk" if kind == OfferKind.PERSONALIZED_PERK else "nothing: an escalation has a cost only"
        if value is not None:
            _add(errors, "value", f"must be empty for {kind}; its value comes from {source}")
        if max_amount is not None:
            _add(errors, "max_amount", f"must be empty for {kind}")
        if kind == OfferKind.ESCALATION and cost is None:
            _add(errors, "cost", "is required for escalation: what a senior manager's time is charged to the budget")
        if kind == OfferKind.PERSONALIZED_PERK and cost is not None:
            _add(errors, "cost", "must be empty for personalized_perk; the cost is the matched perk's cost")
    return errors


def remedy_errors(
    *,
    kind: str,
    value: Decimal | None,
    max_amount: Decimal | None,
    cost: Decimal | None,
) -> Errors:
    """A remedy is an offer of one of the kinds that put something right."""
    if kind and kind not in REMEDY_KINDS:
        return {
            "kind": [
                f"{kind!r} cannot be a remedy; a remedy puts right what went wrong: {', '.join(REMEDY_KINDS)} "
                "(discounts, perks and escalations are options)"
            ]
        }
    return offer_errors(kind=kind, value=value, max_amount=max_amount, cost=cost)


def raise_if(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)
