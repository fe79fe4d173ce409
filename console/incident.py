"""The console's incident form and the offer-set API's input: one field per API path, so the console posts
what ``POST /api/v1/offer-sets/`` takes and shows each validation message next to the field it concerns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compensation.serializers import flat_errors
from policies.choices import Fault, Tier


@dataclass(frozen=True)
class FormField:
    name: str  # the HTML form's field name (and id suffix)
    label: str  # exactly as API.md names it
    path: str  # the offer-set input's path


FIELDS = (
    FormField("customer_id", "Customer ID", "customer.external_id"),
    FormField("name", "Name", "customer.name"),
    FormField("email", "E-mail", "customer.email"),
    FormField("tier", "Tier", "customer.tier"),
    FormField("lifetime_value", "Lifetime value", "customer.lifetime_value"),
    FormField("interests", "Interests", "customer.interests"),
    FormField("category", "Category", "incident.category"),
    FormField("severity", "Severity", "incident.severity"),
    FormField("fault", "Fault", "incident.fault"),
    FormField("correctable", "Correctable", "incident.correctable"),
    FormField("order_value", "Order value", "incident.order_value"),
    FormField("ticket", "Ticket", "incident.external_ref"),
    FormField("description", "What happened", "incident.description"),
)
BY_PATH = {field.path: field for field in FIELDS}
BY_NAME = {field.name: field for field in FIELDS}

# Text fields left empty are left out of the input: the API's default (or, for a customer, the stored value)
# applies, and a required one says "This field is required." rather than "may not be blank".
_CUSTOMER_TEXT = ("name", "email", "tier", "lifetime_value")
_INCIDENT_TEXT = ("category", "severity", "fault", "order_value", "ticket", "description")
_TYPED_CHOICES = ("tier", "fault")
_INDEX = re.compile(r"\[(\d+)\]$")

HINTS = {
    "customer_id": "The exact ID fills the form from the stored customer and lists their recent offer sets.",
    "tier": "standard, silver, gold or platinum; empty: as stored (standard for a new customer).",
    "severity": "1 (minor) to 5 (critical).",
    "fault": "company, customer, third_party or unknown.",
    "lifetime_value": "In {currency}, for example 5400.00.",
    "interests": "Separated by commas, for example: sports, cooking.",
    "correctable": "We can still put it right (replace, redeliver, rebook).",
    "order_value": "In {currency}, for example 120.00.",
    "ticket": "Optional; the same ticket again reuses its incident.",
}
TIERS = tuple(Tier.choices)
FAULTS = tuple(Fault.choices)


def form_values(post: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The form's values as posted (strings; ``correctable`` a boolean), or a new form's."""
    if post is None:
        values: dict[str, Any] = {field.name: "" for field in FIELDS}
        values.update(fault=Fault.COMPANY.value, correctable=True)
        return values
    values = {field.name: str(post.get(field.name, "")) for field in FIELDS}
    values["correctable"] = post.get("correctable") in {"on", "true", "1", "yes"}
    return values


def _typed_choice(name: str, value: str) -> str:
    """Tier and fault are typed (with suggestions): "Gold " is the choice ``gold``; other fields go as typed."""
    return value.strip().lower() if name in _TYPED_CHOICES else value


def offer_set_input(values: Mapping[str, Any]) -> dict[str, Any]:
    """The body ``POST /api/v1/offer-sets/`` would get for these form values."""
    customer: dict[str, Any] = {}
    if values["customer_id"].strip():
        customer["external_id"] = values["customer_id"]
    for name in _CUSTOMER_TEXT:
        if values[name].strip():
            customer[name] = _typed_choice(name, values[name])
    interests = [item.strip() for item in values["interests"].split(",") if item.strip()]
    if interests:
        customer["interests"] = interests
    incident: dict[str, Any] = {"correctable": bool(values["correctable"])}
    for name in _INCIDENT_TEXT:
        if values[name].strip():
            incident[BY_NAME[name].path.removeprefix("incident.")] = _typed_choice(name, values[name])
    return {"customer": customer, "incident": incident}


def errors_by_field(detail: Any) -> tuple[dict[str, list[str]], list[str]]:
    """A validation error's messages by form field; those about no field of the form (the whole body, a
    field the form does not have) apart, each with its API path."""
    by_field: dict[str, list[str]] = {}
    other: list[str] = []
    for path, messages in flat_errors(detail).items():
        item = _INDEX.search(path)
        field = BY_PATH.get(_INDEX.sub("", path))
        for message in messages:
            if field is None:
                other.append(f"{path}: {message}" if path else str(message))
            elif item is not None:
                by_field.setdefault(field.name, []).append(f"Interest {int(item.group(1)) + 1}: {message}")
            else:
                by_field.setdefault(field.name, []).append(str(message))
    return by_field, other
