"""Request examples for every write of the API, in the demo pack's terms (fixtures/demo_pack.yaml).

The OpenAPI schema carries them (Swagger's "Try it out" starts from the first example of each operation), the
browsable API's raw-data form starts from the same body, and tests/test_schema_examples.py sends each of them
and expects a 2xx. The values are plain data so that the tests can reuse them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample

# --- Offer sets -------------------------------------------------------------------------------

GOLD_CUSTOMER: dict[str, Any] = {
    "external_id": "C-1042",
    "name": "Maria Lopez",
    "email": "maria.lopez@example.com",
    "tier": "gold",
    "lifetime_value": "5400.00",
    "interests": ["cooking", "travel"],
}

OFFER_SET_LATE_DELIVERY_GOLD: dict[str, Any] = {
    "customer": GOLD_CUSTOMER,
    "incident": {
        "external_ref": "ORD-88213",
        "category": "late_delivery",
        "severity": 3,
        "fault": "company",
        "correctable": True,
        "order_value": "120.00",
        "description": "Promised for Tuesday, delivered on Friday.",
    },
}

OFFER_SET_DOUBLE_CHARGE: dict[str, Any] = {
    "customer": {"external_id": "C-2077", "name": "Sam Okafor", "tier": "standard", "interests": ["gaming"]},
    "incident": {
        "external_ref": "INV-55120",
        "category": "double_charge",
        "severity": 2,
        "fault": "company",
        "order_value": "39.90",
        "description": "The March subscription was charged twice; 39.90 is the duplicate.",
    },
}

OFFER_SET_SEVERE_DAMAGE: dict[str, Any] = {
    "customer": {"external_id": "C-3310", "name": "Priya Natarajan", "tier": "platinum", "lifetime_value": "18250.00"},
    "incident": {
        "external_ref": "ORD-90457",
        "category": "damaged_item",
        "severity": 5,
        "fault": "third_party",
        "correctable": False,
        "order_value": "310.00",
        "description": "The wedding cake stand arrived shattered the morning of the wedding.",
    },
}

OFFER_SET_EXAMPLES = [
    OpenApiExample(
        "LateDeliveryGoldCustomer",
        summary="A late delivery for a gold customer",
        value=OFFER_SET_LATE_DELIVERY_GOLD,
        request_only=True,
        description="Three days late, our fault; the customer's interests let the personalized perk apply.",
    ),
    OpenApiExample(
        "DoubleCharge",
        summary="A double charge",
        value=OFFER_SET_DOUBLE_CHARGE,
        request_only=True,
        description="The duplicate payment is refunded as the remedy; the options come on top of it.",
    ),
    OpenApiExample(
        "SevereNothingToCorrect",
        summary="Severity 5, nothing left to correct",
        value=OFFER_SET_SEVERE_DAMAGE,
        request_only=True,
        description="A full refund as the remedy, and a senior-manager escalation opens with the set.",
    ),
]

# --- Outcomes ---------------------------------------------------------------------------------

OUTCOME_CHOICE: dict[str, Any] = {
    "choice": "b",
    "satisfaction": 4,
    "notes": "Read out all three options; the customer took b.",
}
OUTCOME_DECLINED: dict[str, Any] = {
    "choice": "declined",
    "notes": "The customer only wanted the order to arrive; thanked us for the apology.",
}

OUTCOME_EXAMPLES = [
    OpenApiExample("ChoseB", summary="The customer chose b", value=OUTCOME_CHOICE, request_only=True),
    OpenApiExample("Declined", summary="The customer declined", value=OUTCOME_DECLINED, request_only=True),
]

# --- Escalations ------------------------------------------------------------------------------

RESOLUTION: dict[str, Any] = {
    "resolution": "Called the customer the same day: the refund is on its way, and we agreed a $75.00 credit "
    "on top. She is happy to keep ordering with us.",
}
RESOLVE_EXAMPLES = [
    OpenApiExample("SeniorManagerCall", summary="A senior manager's call", value=RESOLUTION, request_only=True),
]

REJECTION: dict[str, Any] = {
    "reason": "This refund is above what the order supports; offer the $15.00 credit for the hassle instead.",
}
REJECT_EXAMPLES = [
    OpenApiExample("TooMuchForThisOrder", summary="Too much for this order", value=REJECTION, request_only=True),
]

# --- Customer feedback ------------------------------------------------------------------------

FEEDBACK: dict[str, Any] = {"satisfaction": 5, "comment": "Sorted out in one call, and the credit was a nice touch."}
FEEDBACK_EXAMPLES = [
    OpenApiExample("SatisfiedCustomer", summary="A satisfied customer", value=FEEDBACK, request_only=True),
]

# --- Customers (the integration's) ------------------------------------------------------------

CUSTOMER_EXTERNAL_ID = GOLD_CUSTOMER["external_id"]
CUSTOMER_FIELDS: dict[str, Any] = {key: value for key, value in GOLD_CUSTOMER.items() if key != "external_id"}
CUSTOMER_TIER_ONLY: dict[str, Any] = {"tier": "platinum"}

CUSTOMER_PUT_EXAMPLES = [
    OpenApiExample(
        "GoldCustomerEveryField", summary="A gold customer, every field", value=CUSTOMER_FIELDS, request_only=True
    ),
    OpenApiExample(
        "OnlyTheTier",
        summary="Only the tier",
        value=CUSTOMER_TIER_ONLY,
        request_only=True,
        description="The fields left out keep their stored values.",
    ),
]
CUSTOMER_EXTERNAL_ID_EXAMPLES = [
    OpenApiExample("C1042", summary="The gold customer of the examples", value=CUSTOMER_EXTERNAL_ID)
]

CUSTOMERS_BULK: dict[str, Any] = {
    "customers": [
        GOLD_CUSTOMER,
        {"external_id": "C-2077", "name": "Sam Okafor", "email": "sam.okafor@example.com", "tier": "standard"},
        {"external_id": "C-3310", "tier": "platinum", "lifetime_value": "18250.00", "interests": ["wellness"]},
    ]
}
CUSTOMERS_BULK_EXAMPLES = [
    OpenApiExample("ThreeCustomers", summary="Three customers", value=CUSTOMERS_BULK, request_only=True),
]

# --- Simulations ------------------------------------------------------------------------------

SIMULATION_MORE_GENEROUS: dict[str, Any] = {
    "pack": {
        "policies": [
            {
                "slug": "late-delivery-next-discount",
                "name": "Late or missed delivery: discount on the next delivery",
                "priority": 45,
                "conditions": {"categories": ["late_delivery", "missed_delivery"]},
                "budget": {"monthly_cap": "3000.00", "per_customer_cap_30d": "50.00"},
                "offers": [
                    {
                        "kind": "percent_discount",
                        "title": "{value}% off your next delivery",
                        "message": "{first_name}, I'm sorry about the {incident}. Your next order is {value}% off, "
                        "for any order in the next 60 days.",
                        "value": "20",
                        "max_amount": "30.00",
                        "expires_in_days": 60,
                    },
                    {
                        "kind": "free_shipping",
                        "title": "Next delivery express, free",
                        "message": "{first_name}, I'm sorry about the {incident}. Your next order ships express at "
                        "no charge (that's {money} you won't pay).",
                        "value": "12.00",
                        "cost": "7.00",
                        "expires_in_days": 90,
                    },
                ],
            }
        ]
    },
    "days": 30,
}
SIMULATION_EXAMPLES = [
    OpenApiExample(
        "MoreGenerousLateDeliveryDiscount",
        summary="A more generous late-delivery discount",
        value=SIMULATION_MORE_GENEROUS,
        request_only=True,
        description="The demo pack's late-delivery policy at 20% (up to 30.00) instead of 15%, replayed over the "
        "last 30 days.",
    ),
]

# --- Operational events -------------------------------------------------------------------------

EVENT_WAREHOUSE_MISSED: dict[str, Any] = {
    "name": "North warehouse missed Tuesday's deliveries",
    "category": "missed_delivery",
    "severity": 3,
    "fault": "company",
    "correctable": True,
    "description": "A conveyor failure at the north warehouse held back every Tuesday delivery by a day.",
    "customers": [
        {**GOLD_CUSTOMER, "order_value": "120.00", "external_ref": "ORD-88213"},
        {
            "external_id": "C-2077",
            "name": "Sam Okafor",
            "email": "sam.okafor@example.com",
            "tier": "standard",
            "order_value": "39.90",
            "external_ref": "ORD-88214",
        },
    ],
}
EVENT_EXAMPLES = [
    OpenApiExample(
        "WarehouseMissedDeliveries",
        summary="A warehouse missed a day's deliveries",
        value=EVENT_WAREHOUSE_MISSED,
        request_only=True,
        description="Each customer gets the remedy and their own a/b/c options by e-mail.",
    ),
]
EVENT_MORE_CUSTOMERS: dict[str, Any] = {
    "customers": [
        {
            "external_id": "C-3310",
            "name": "Priya Natarajan",
            "email": "priya.natarajan@example.com",
            "tier": "platinum",
            "lifetime_value": "18250.00",
            "order_value": "310.00",
        }
    ]
}
EVENT_CUSTOMERS_EXAMPLES = [
    OpenApiExample(
        "OneMoreCustomer", summary="One more affected customer", value=EVENT_MORE_CUSTOMERS, request_only=True
    ),
]
