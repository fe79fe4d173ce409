"""A policy's history in words: the change lines between two snapshots, one field kind at a time, and two
snapshots side by side. Every expected line is written out by hand."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from policies.history import snapshot_changes, snapshots_compare
from policies.models import Policy
from policies.serialization import policy_to_pack
from policies.serialization import snapshot_changes as snapshot_changes_from_serialization

Snapshot = dict[str, Any]


def offer(kind: str, title: str, **fields: Any) -> Snapshot:
    return {
        "kind": kind,
        "title": title,
        "message": "",
        "value": None,
        "max_amount": None,
        "cost": None,
        "expires_in_days": None,
        "requires_approval": False,
        **fields,
    }


CREDIT = offer("fixed_credit", "{money} credit", value="30.00")
DISCOUNT = offer("percent_discount", "{value}% off your next order", value="20.00", max_amount="30.00")
REFUND = offer("refund", "Your {money} back", value="100.00")

BASE: Snapshot = {
    "slug": "late-credit",
    "name": "Late credit",
    "description": "",
    "active": True,
    "priority": 50,
    "placement": "ranked",
    "valid_from": None,
    "valid_until": None,
    "conditions": {
        "categories": ["late_delivery"],
        "severity_min": None,
        "severity_max": None,
        "faults": [],
        "tiers": [],
        "correctable": None,
        "min_repeat_count": None,
        "min_same_category_repeat_count": None,
        "min_lifetime_value": None,
        "min_order_value": None,
    },
    "escalate": False,
    "generosity": {
        "per_severity": "0.00",
        "per_repeat": "0.00",
        "per_1000_lifetime_value": "0.00",
        "max_multiplier": "2.00",
    },
    "budget": {"monthly_cap": None, "per_customer_cap_30d": None},
    "remedy": [],
    "offers": [CREDIT, DISCOUNT],
}

LONG_TEXT = "Covers every parcel that arrives later than the day promised at checkout, whatever the carrier says."
LONG_MESSAGE = "{customer_name}, we are sorry: your parcel was late and we have added credit to your account."


def changed(**edits: Any) -> Callable[[Snapshot], None]:
    """Set keys; a dotted key reaches into a group (``conditions.tiers``), ``offers.0.value`` into an offer."""

    def apply(snapshot: Snapshot) -> None:
        for dotted, value in edits.items():
            *parents, last = dotted.split(".")
            target: Any = snapshot
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if isinstance(target, list):
                target[int(last)] = value
            else:
                target[last] = value

    return apply


def from_(**edits: Any) -> Snapshot:
    snapshot = copy.deepcopy(BASE)
    changed(**edits)(snapshot)
    return snapshot


def test_the_hand_written_snapshot_has_the_shape_policy_to_pack_writes() -> None:
    policy = Policy(slug="late-credit", name="Late credit", generosity_max_multiplier=Decimal("2"))
    policy.generosity_per_severity = policy.generosity_per_repeat = Decimal("0")
    policy.generosity_per_1000_lifetime_value = Decimal("0")
    written = policy_to_pack(policy, categories=["late_delivery"], offers=[], remedies=[])

    assert written == {**BASE, "offers": []}


# (the change applied to BASE, or a (before, after) pair) -> the lines it reads as
CHANGE_LINES: dict[str, tuple[Callable[[Snapshot], None] | tuple[Snapshot, Snapshot], list[str]]] = {
    # basics
    "slug": (changed(slug="late-delivery-credit"), ["Slug: late-credit → late-delivery-credit"]),
    "name": (changed(name="Late delivery credit"), ['Name: "Late credit" → "Late delivery credit"']),
    "description added": (
        changed(description="For late parcels."),
        ['Description added: "For late parcels."'],
    ),
    "description changed, long": (
        (from_(description="For late parcels."), from_(description=LONG_TEXT)),
        ['Description changed to "Covers every parcel that arrives later than the day…"'],
    ),
    "description changed near its end": (
        (from_(description=LONG_TEXT), from_(description=LONG_TEXT.replace("carrier says", "carrier claims"))),
        ['Description changed to "…whatever the carrier claims."'],  # from the word 20 characters before,
    ),
    "description changed past the excerpt, a long way from its end": (
        (
            from_(description=LONG_TEXT + " " + LONG_TEXT),
            from_(description=LONG_TEXT.replace("whatever", "no matter what") + " " + LONG_TEXT),
        ),
        ['Description changed to "…promised at checkout, no matter what the carrier says…"'],
    ),
    "description on several lines": (
        changed(description="First line.\n\nSecond   line."),
        ['Description added: "First line. Second line."'],
    ),
    "description removed": (
        (from_(description=LONG_TEXT), BASE),
        ["Description removed"],
    ),
    "active": (changed(active=False), ["Active: yes → no"]),
    "priority": (changed(priority=70), ["Priority: 50 → 70"]),
    "placement": (changed(placement="lead"), ["Placement: ranked → lead"]),
    "valid from set": (changed(valid_from="2027-01-01"), ["Valid from: none → 2027-01-01"]),
    "valid until removed": ((from_(valid_until="2027-03-01"), BASE), ["Valid until: 2027-03-01 → none"]),
    # conditions
    "categories changed": (
        changed(**{"conditions.categories": ["damaged_item", "late_delivery"]}),
        ["Condition changed: categories late_delivery → damaged_item, late_delivery"],
    ),
    "categories removed": (
        changed(**{"conditions.categories": []}),
        ["Condition removed: categories late_delivery"],
    ),
    "severity minimum added": (
        changed(**{"conditions.severity_min": 3}),
        ["Condition added: severity at least 3"],
    ),
    "severity range added": (
        changed(**{"conditions.severity_min": 2, "conditions.severity_max": 4}),
        ["Condition added: severity 2–4"],
    ),
    "severity range changed": (
        (from_(**{"conditions.severity_min": 3}), from_(**{"conditions.severity_max": 2})),
        ["Condition changed: severity at least 3 → at most 2"],
    ),
    "severity removed": (
        (from_(**{"conditions.severity_min": 4, "conditions.severity_max": 4}), BASE),
        ["Condition removed: severity 4"],
    ),
    "faults added": (
        changed(**{"conditions.faults": ["company", "third_party"]}),
        ["Condition added: fault company, third party"],
    ),
    "tiers added": (
        changed(**{"conditions.tiers": ["gold", "platinum"]}),
        ["Condition added: tiers gold, platinum"],
    ),
    "tiers changed": (
        (from_(**{"conditions.tiers": ["gold", "platinum"]}), from_(**{"conditions.tiers": ["platinum"]})),
        ["Condition changed: tiers gold, platinum → platinum"],
    ),
    "correctable added": (changed(**{"conditions.correctable": False}), ["Condition added: correctable no"]),
    "correctable changed": (
        (from_(**{"conditions.correctable": True}), from_(**{"conditions.correctable": False})),
        ["Condition changed: correctable yes → no"],
    ),
    "correctable removed": (
        (from_(**{"conditions.correctable": True}), BASE),
        ["Condition removed: correctable yes"],
    ),
    "repeat count added": (
        changed(**{"conditions.min_repeat_count": 2}),
        ["Condition added: incidents in the repeat window at least 2"],
    ),
    "same-category repeats changed": (
        (
            from_(**{"conditions.min_same_category_repeat_count": 2}),
            from_(**{"conditions.min_same_category_repeat_count": 3}),
        ),
        ["Condition changed: same-category incidents at least 2 → 3"],
    ),
    "lifetime value added": (
        changed(**{"conditions.min_lifetime_value": "1000.00"}),
        ["Condition added: lifetime value at least 1000.00"],
    ),
    "order value removed": (
        (from_(**{"conditions.min_order_value": "50.00"}), BASE),
        ["Condition removed: order value at least 50.00"],
    ),
    # escalation and generosity
    "escalate": (changed(escalate=True), ["Escalate automatically: no → yes"]),
    "generosity per severity": (
        changed(**{"generosity.per_severity": "0.10"}),
        ["Generosity: extra per severity step 0.00 → 0.10"],
    ),
    "generosity per repeat": (
        changed(**{"generosity.per_repeat": "0.25"}),
        ["Generosity: extra per repeat 0.00 → 0.25"],
    ),
    "generosity per 1000 lifetime value": (
        changed(**{"generosity.per_1000_lifetime_value": "0.05"}),
        ["Generosity: extra per 1,000 lifetime value 0.00 → 0.05"],
    ),
    "generosity multiplier": (
        changed(**{"generosity.max_multiplier": "1.50"}),
        ["Generosity: most generous multiplier 2.00 → 1.50"],
    ),
    # budget caps
    "monthly cap set": (
        changed(**{"budget.monthly_cap": "500.00"}),
        ["Budget: monthly budget set to 500.00"],
    ),
    "monthly cap changed": (
        (from_(**{"budget.monthly_cap": "500.00"}), from_(**{"budget.monthly_cap": "800.00"})),
        ["Budget: monthly budget 500.00 → 800.00"],
    ),
    "per-customer cap removed": (
        (from_(**{"budget.per_customer_cap_30d": "100.00"}), BASE),
        ["Budget: per-customer cap (30 days) removed (was 100.00)"],
    ),
    # offers, by position and kind
    "offer value": (changed(**{"offers.0.value": "35.00"}), ["Offer 1 (fixed credit): value 30.00 → 35.00"]),
    "offer title": (
        changed(**{"offers.1.title": "{value}% off"}),
        ['Offer 2 (percent discount): title "{value}% off your next order" → "{value}% off"'],
    ),
    "offer message added": (
        changed(**{"offers.0.message": LONG_MESSAGE}),
        ['Offer 1 (fixed credit): message added: "{customer_name}, we are sorry: your parcel was late and we…"'],
    ),
    "offer message changed": (
        (from_(**{"offers.0.message": "Sorry."}), from_(**{"offers.0.message": "So sorry."})),
        ['Offer 1 (fixed credit): message changed to "So sorry."'],
    ),
    "offer message removed": (
        (from_(**{"offers.0.message": "Sorry."}), BASE),
        ["Offer 1 (fixed credit): message removed"],
    ),
    "offer maximum amount": (
        changed(**{"offers.1.max_amount": None}),
        ["Offer 2 (percent discount): maximum amount 30.00 → none"],
    ),
    "offer cost": (changed(**{"offers.0.cost": "12.00"}), ["Offer 1 (fixed credit): cost to us none → 12.00"]),
    "offer expiry": (
        changed(**{"offers.0.expires_in_days": 30}),
        ["Offer 1 (fixed credit): expiry none → 30 days"],
    ),
    "offer expiry of one day": (
        (from_(**{"offers.0.expires_in_days": 30}), from_(**{"offers.0.expires_in_days": 1})),
        ["Offer 1 (fixed credit): expiry 30 days → 1 day"],
    ),
    "offer approval": (
        changed(**{"offers.1.requires_approval": True}),
        ["Offer 2 (percent discount): requires approval no → yes"],
    ),
    "offer kind, and its value with it": (
        changed(**{"offers.0": offer("gift", "{money} credit", value="5.00")}),
        ["Offer 1: kind fixed credit → gift", "Offer 1 (gift): value 30.00 → 5.00"],
    ),
    "offer added": (
        changed(
            offers=[
                CREDIT,
                DISCOUNT,
                offer("gift", "A small gift", value="5.00", cost="3.00", expires_in_days=14, requires_approval=True),
            ]
        ),
        ['Offer 3 (gift) added: "A small gift", value 5.00, cost to us 3.00, expires after 14 days, requires approval'],
    ),
    "offer removed": (
        changed(offers=[CREDIT]),
        ['Offer 2 (percent discount) removed: "{value}% off your next order"'],
    ),
    "first offer removed: the second takes its place": (
        changed(offers=[DISCOUNT]),
        [
            "Offer 1: kind fixed credit → percent discount",
            'Offer 1 (percent discount): title "{money} credit" → "{value}% off your next order"',
            "Offer 1 (percent discount): value 30.00 → 20.00",
            "Offer 1 (percent discount): maximum amount none → 30.00",
            'Offer 2 (percent discount) removed: "{value}% off your next order"',
        ],
    ),
    # remedies, by position and kind
    "remedy added": (changed(remedy=[REFUND]), ['Remedy 1 (refund) added: "Your {money} back", value 100.00']),
    "remedy changed": (
        (from_(remedy=[REFUND]), from_(remedy=[{**REFUND, "value": "50.00", "max_amount": "80.00"}])),
        ["Remedy 1 (refund): value 100.00 → 50.00", "Remedy 1 (refund): maximum amount none → 80.00"],
    ),
    "remedy removed": (
        (from_(remedy=[REFUND, offer("free_shipping", "Free shipping on us", value="6.00")]), from_(remedy=[REFUND])),
        ['Remedy 2 (free shipping) removed: "Free shipping on us"'],
    ),
    # nothing, and a field these words do not know yet
    "nothing": (changed(), []),
    "an unknown field": (changed(audience="vip"), ["Audience: none → vip"]),
}


@pytest.mark.parametrize("case", CHANGE_LINES)
def test_change_lines_say_what_changed_in_words(case: str) -> None:
    change, expected = CHANGE_LINES[case]
    if isinstance(change, tuple):
        before, after = change
    else:
        before, after = BASE, copy.deepcopy(BASE)
        change(after)

    assert snapshot_changes(before, after) == expected


def test_a_new_policy_reads_created() -> None:
    assert snapshot_changes(None, BASE) == ["created"]


def test_lines_follow_the_change_form_basics_conditions_escalation_generosity_budget_remedy_offers() -> None:
    after = from_(
        **{
            "offers.0.value": "35.00",
            "budget.monthly_cap": "500.00",
            "remedy": [REFUND],
            "generosity.per_repeat": "0.25",
            "escalate": True,
            "conditions.tiers": ["gold", "platinum"],
            "priority": 60,
            "name": "Late delivery credit",
        }
    )

    assert snapshot_changes(BASE, after) == [
        'Name: "Late credit" → "Late delivery credit"',
        "Priority: 50 → 60",
        "Condition added: tiers gold, platinum",
        "Escalate automatically: no → yes",
        "Generosity: extra per repeat 0.00 → 0.25",
        "Budget: monthly budget set to 500.00",
        'Remedy 1 (refund) added: "Your {money} back", value 100.00',
        "Offer 1 (fixed credit): value 30.00 → 35.00",
    ]


def test_serialization_still_offers_snapshot_changes() -> None:
    assert snapshot_changes_from_serialization is snapshot_changes


def test_a_snapshot_missing_the_newer_keys_still_reads() -> None:
    """Versions saved before remedies and placement existed lack those keys (migration 0003 adds them)."""
    old = {key: value for key, value in BASE.items() if key not in {"placement", "remedy"}}

    assert snapshot_changes(old, BASE) == ["Placement: none → ranked"]


# --- Side by side -------------------------------------------------------------------------------


def rows_of(groups: list) -> dict[str, tuple[str, str, bool]]:
    return {row.label: (row.left, row.right, row.differs) for group in groups for row in group.rows}


def test_side_by_side_groups_as_the_change_form() -> None:
    groups = snapshots_compare(BASE, BASE)

    assert [g.title for g in groups] == [
        "Basics",
        "Conditions",
        "Escalation",
        "Generosity",
        "Budget",
        "Remedy",
        "Offers",
    ]
    assert not any(g.differs for g in groups)
    rows = rows_of(groups)
    assert rows["Name"] == ("Late credit", "Late credit", False)
    assert rows["Description"] == ("none", "none", False)
    assert rows["Valid from"] == ("none", "none", False)
    assert rows["Categories"] == ("late_delivery", "late_delivery", False)
    assert rows["Severity"] == ("any", "any", False)
    assert rows["Correctable"] == ("either", "either", False)
    assert rows["Monthly budget"] == ("unlimited", "unlimited", False)
    assert rows["Remedy"] == ("none", "none", False)
    assert rows["Offer 2: kind"] == ("percent discount", "percent discount", False)
    assert rows["Offer 2: maximum amount"] == ("30.00", "30.00", False)


def test_side_by_side_marks_the_rows_that_differ() -> None:
    right = from_(
        priority=70,
        description=LONG_TEXT,
        **{
            "conditions.tiers": ["gold"],
            "conditions.severity_min": 2,
            "budget.monthly_cap": "500.00",
            "offers.0.expires_in_days": 30,
        },
    )
    right["offers"].append(offer("gift", "A small gift", value="5.00"))
    right["remedy"] = [REFUND]

    groups = snapshots_compare(BASE, right)
    rows = rows_of(groups)

    differing = {label for label, (_, _, differs) in rows.items() if differs}
    assert rows["Priority"] == ("50", "70", True)
    assert rows["Description"] == ("none", LONG_TEXT, True)  # whole, not an excerpt
    assert rows["Tiers"] == ("any", "gold", True)
    assert rows["Severity"] == ("any", "at least 2", True)
    assert rows["Monthly budget"] == ("unlimited", "500.00", True)
    assert rows["Offer 1: expiry"] == ("none", "30 days", True)
    assert rows["Offer 3: kind"] == ("—", "gift", True)
    assert rows["Offer 3: title"] == ("—", "A small gift", True)
    assert rows["Remedy 1: kind"] == ("—", "refund", True)
    assert differing == {
        "Priority",
        "Description",
        "Tiers",
        "Severity",
        "Monthly budget",
        "Offer 1: expiry",
        *(f"Offer 3: {f}" for f in ("kind", "title", "message", "value", "expiry", "requires approval")),
        *(f"Offer 3: {f}" for f in ("maximum amount", "cost to us")),
        *(f"Remedy 1: {f}" for f in ("kind", "title", "message", "value", "maximum amount", "cost to us")),
        *(f"Remedy 1: {f}" for f in ("expiry", "requires approval")),
    }
    assert [g.title for g in groups if g.differs] == ["Basics", "Conditions", "Budget", "Remedy", "Offers"]
