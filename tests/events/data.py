"""The events' test bodies, shared: three customers of a missed delivery, and rows made up by number."""

from __future__ import annotations

from typing import Any

EVENTS = "/api/v1/events/"
CUSTOMERS = [
    {
        "external_id": "EV-1",
        "name": "Maria Lopez",
        "email": "maria@example.com",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "order_value": "120.00",
    },
    {"external_id": "EV-2", "name": "Sam Okafor", "email": "sam@example.com", "order_value": "40.00"},
    {"external_id": "EV-3", "name": "Ana Silva", "email": "ana@example.com", "interests": ["cooking"]},
]


def event_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "North warehouse missed Tuesday's deliveries",
        "category": "missed_delivery",
        "severity": 3,
        "description": "A conveyor failure held back every Tuesday delivery.",
        "customers": CUSTOMERS,
        **overrides,
    }


def rows(prefix: str, count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` customers ``{prefix}-0``, … with an e-mail each and ``fields``."""
    return [
        {"external_id": f"{prefix}-{n}", "email": f"{prefix.lower()}{n}@example.com", **fields} for n in range(count)
    ]
