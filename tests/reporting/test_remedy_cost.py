"""``remedy_cost`` in the reports and the outcome list (API.md, issue 2 of 7: "Remedy first"), against
hand-computed figures.

Everything goes through the real API and services: a pack with ``remedy:`` items is imported, offer
sets and outcomes are posted (recorded eagerly when the test's on_commit callbacks run) and remedy
approvals are decided through the escalations endpoints, each step at a chosen instant on a frozen
clock (``time_machine``), so every timestamp, ``given_at`` included, is where the services put it.

The pack: "Billing refund" answers billing errors with a remedy refunding the whole order (100 %,
at most 800.00) and an option of a 10.00 credit; "Apology gift" answers billing errors and late
deliveries with a remedy gift that costs us 3.00 and an option of 6.00 of free shipping. Agents may
give 100.00 (AGENT_APPROVAL_LIMIT): a billing error on an order above 97.00 needs a manager's
approval for its remedy (the refund plus the gift's 3.00), while the customer's choice is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
import yaml
from django.contrib.auth.models import Group

from compensation.models import Customer, Escalation, Outcome, Remedy
from compensation.roles import Role
from policies.choices import OfferKind
from policies.models import Category, Policy
from policies.packs import pack_import
from reporting.reports import CSV_HEADER
from tests.reporting.test_outcome_list_api import LIST, csv_rows
from tests.reporting.test_reports_api import (
    AGENTS,
    CATEGORIES,
    ESCALATIONS,
    KINDS,
    NO_BUDGET,
    PERIOD,
    POLICIES,
    SETS,
    Capture,
    get_ok,
    group_row,
    local,
    rows_by,
    summary,
    with_outcomes,
)

pytestmark = pytest.mark.django_db

PACK = """
categories:
  - slug: billing_error
    name: Billing error
  - slug: late_delivery
    name: Late delivery
policies:
  - slug: billing-error-refund
    name: Billing refund
    priority: 80
    conditions:
      categories: [billing_error]
    remedy:
      - kind: refund
        title: "Your {money} back"
        message: "{first_name}, I've refunded the full {money} to your card."
        value: "100"
        max_amount: "800.00"
    offers:
      - kind: fixed_credit
        title: "A {amount} {currency} credit"
        value: "10.00"
  - slug: apology-gift
    name: Apology gift
    priority: 40
    conditions:
      categories: [billing_error, late_delivery]
    remedy:
      - kind: gift
        title: "A small gift with our apologies"
        value: "4.00"
        cost: "3.00"
    offers:
      - kind: free_shipping
        title: "Free shipping on your next order"
        value: "6.00"
"""


# --- Building it through the API, on a frozen clock ---------------------------------------------


@dataclass(frozen=True)
class Pack:
    billing: Category
    late: Category
    refund: Policy  # "Billing refund"
    gift: Policy  # "Apology gift"


@pytest.fixture
def pack(db: None) -> Pack:
    pack_import(document=yaml.safe_load(PACK))
    return Pack(
        billing=Category.objects.get(slug="billing_error"),
        late=Category.objects.get(slug="late_delivery"),
        refund=Policy.objects.get(slug="billing-error-refund"),
        gift=Policy.objects.get(slug="apology-gift"),
    )


def remedy_case(
    client: Any,
    capture: Capture,
    *,
    at: datetime,
    customer: str,
    category: Category,
    order_value: str,
    choose: Policy | str,
    tier: str = "standard",
) -> dict[str, Any]:
    """An offer set posted at ``at`` and its outcome posted and recorded a minute later; the set as posted."""
    body = {
        "customer": {"external_id": customer, "name": "Ada Lovelace", "tier": tier},
        "incident": {"category": category.slug, "severity": 3, "order_value": order_value},
    }
    with time_machine.travel(at, tick=False):
        response = client.post(SETS, body, format="json")
    assert response.status_code == 201, response.content
    offer_set = response.json()
    choice = (
        choose
        if isinstance(choose, str)
        else next(o["label"] for o in offer_set["options"] if o["policy"]["id"] == choose.pk)
    )
    with time_machine.travel(at + timedelta(minutes=1), tick=False), capture(execute=True):
        response = client.post(f"{SETS}{offer_set['id']}/outcome/", {"choice": choice}, format="json")
    assert response.status_code == 202, response.content
    assert Outcome.objects.filter(offer_set_id=offer_set["id"]).exists()
    return offer_set


def remedy_approval(offer_set: dict[str, Any]) -> Escalation:
    return Escalation.objects.get(kind=Escalation.Kind.APPROVAL, incident_id=offer_set["incident"]["id"])


def decide(client: Any, offer_set: dict[str, Any], verb: str, *, at: datetime) -> None:
    """A manager approves (or rejects) the set's remedy approval at ``at``."""
    body = {"reason": "Not a billing error after all"} if verb == "reject" else {}
    with time_machine.travel(at, tick=False):
        response = client.post(f"{ESCALATIONS}{remedy_approval(offer_set).pk}/{verb}/", body, format="json")
    assert response.status_code == 200, response.content


def remedy_statuses(offer_set: dict[str, Any]) -> dict[str, str]:
    return dict(Remedy.objects.filter(incident_id=offer_set["incident"]["id"]).values_list("kind", "status"))


def outcome_of(offer_set: dict[str, Any]) -> Outcome:
    return Outcome.objects.get(offer_set_id=offer_set["id"])


@dataclass
class World:
    pack: Pack
    sets: dict[str, dict[str, Any]]
    approve_r3: Callable[[], None]


@pytest.fixture
def world(pack: Pack, agent1: Any, agent2: Any, manager: Any, django_capture_on_commit_callbacks: Capture) -> World:
    """Six offer sets around the period 2025-03-01..2025-03-10 (days in TIME_ZONE):

    ===  =======  ==============  ======  =======  =====  ==============  ==========================  ======
    set  agent    when            tier    category order  choice (cost)   remedy (cost)               status
    ===  =======  ==============  ======  =======  =====  ==============  ==========================  ======
    R0   agent-2  02-28 23:58:59  std     billing  40     declined        refund 40 + gift 3 = 43     given
    R1   agent-1  03-02 10:00     std     billing  80     Billing 10.00   refund 80 + gift 3 = 83     given
    R2   agent-2  03-03 10:00     gold    late     50     declined        gift 3                      given
    R3   agent-1  03-04 10:00     silver  billing  150    Apology 6.00    refund 150 + gift 3 = 153   approval
    R4   agent-2  03-05 10:00     std     billing  120    Billing 10.00   refund 120 + gift 3 = 123   approval
    R5   agent-1  03-10 23:59     std     late     30     Apology 6.00    gift 3                      given
    ===  =======  ==============  ======  =======  =====  ==============  ==========================  ======

    Each outcome is recorded a minute after its set: R0's at 02-28 23:59:59.999999, R5's at 03-11 00:00,
    both outside the period, with their remedies. R3 and R4 are above the agents' 100.00: their remedies
    wait for a manager. ``approve_r3`` has a manager approve R3's on 03-06 at 10:00; R4's is never decided.
    """
    p = pack
    capture = django_capture_on_commit_callbacks
    sets = {
        "R0": remedy_case(
            agent2, capture, at=local("2025-02-28", "23:58:59.999999"), customer="C-0", category=p.billing,
            order_value="40.00", choose="declined",
        ),
        "R1": remedy_case(
            agent1, capture, at=local("2025-03-02", "10:00"), customer="C-1", category=p.billing,
            order_value="80.00", choose=p.refund,
        ),
        "R2": remedy_case(
            agent2, capture, at=local("2025-03-03", "10:00"), customer="C-2", tier="gold", category=p.late,
            order_value="50.00", choose="declined",
        ),
        "R3": remedy_case(
            agent1, capture, at=local("2025-03-04", "10:00"), customer="C-3", tier="silver", category=p.billing,
            order_value="150.00", choose=p.gift,
        ),
        "R4": remedy_case(
            agent2, capture, at=local("2025-03-05", "10:00"), customer="C-4", category=p.billing,
            order_value="120.00", choose=p.refund,
        ),
        "R5": remedy_case(
            agent1, capture, at=local("2025-03-10", "23:59"), customer="C-5", category=p.late,
            order_value="30.00", choose=p.gift,
        ),
    }  # fmt: skip
    assert outcome_of(sets["R0"]).recorded_at == local("2025-02-28", "23:59:59.999999")
    assert outcome_of(sets["R5"]).recorded_at == local("2025-03-11", "00:00")
    assert [len(sets[s]["options"]) for s in ("R1", "R2", "R3", "R4")] == [2, 1, 2, 2]
    assert {s: remedy_statuses(sets[s]) for s in sets} == {
        "R0": {"refund": "given", "gift": "given"},
        "R1": {"refund": "given", "gift": "given"},
        "R2": {"gift": "given"},
        "R3": {"refund": "awaiting_approval", "gift": "awaiting_approval"},
        "R4": {"refund": "awaiting_approval", "gift": "awaiting_approval"},
        "R5": {"gift": "given"},
    }
    return World(pack, sets, lambda: decide(manager, sets["R3"], "approve", at=local("2025-03-06", "10:00")))


@pytest.fixture
def approved(world: World) -> World:
    """The world after a manager approved R3's remedy on 03-06."""
    world.approve_r3()
    assert remedy_statuses(world.sets["R3"]) == {"refund": "given", "gift": "given"}
    return world


# --- The summary --------------------------------------------------------------------------------


def test_summary_counts_the_remedies_given_in_the_period_apart_from_total_cost(approved: World, analyst: Any) -> None:
    data = summary(analyst)

    # R1 83.00 + R2 3.00 (declined, still given) + R3 153.00 (approved 03-06); R4 waits; R0, R5 are outside
    assert data["remedy_cost"] == "239.00"
    # the chosen options alone: R1 10.00 + R3 6.00 + R4 10.00
    assert (data["total_cost"], data["average_cost_per_acceptance"]) == ("26.00", "8.67")
    assert (data["outcomes"], data["accepted"], data["declined"]) == (4, 3, 1)


def test_a_remedy_given_with_a_declined_outcome_counts(approved: World, manager: Any) -> None:
    data = summary(manager, since="2025-03-03", until="2025-03-03")  # R2 alone

    assert (data["outcomes"], data["declined"], data["total_cost"], data["remedy_cost"]) == (1, 1, "0.00", "3.00")


def test_a_remedy_awaiting_approval_counts_only_once_approved_on_the_day_it_was_given(
    world: World, manager: Any
) -> None:
    before = summary(manager)
    recorded_day = summary(manager, since="2025-03-04", until="2025-03-04")  # R3 recorded, its remedy waiting

    world.approve_r3()

    after = summary(manager)
    approval_day = summary(manager, since="2025-03-06", until="2025-03-06")
    assert before["remedy_cost"] == "86.00"  # R1 83.00 + R2 3.00
    assert after["remedy_cost"] == "239.00"  # + R3 153.00
    assert (recorded_day["outcomes"], recorded_day["total_cost"], recorded_day["remedy_cost"]) == (1, "6.00", "0.00")
    assert summary(manager, since="2025-03-04", until="2025-03-04")["remedy_cost"] == "0.00"  # still not that day
    assert (approval_day["outcomes"], approval_day["total_cost"], approval_day["remedy_cost"]) == (0, "0.00", "153.00")
    assert before["total_cost"] == after["total_cost"] == "26.00"


def test_a_rejected_remedy_never_counts(approved: World, manager: Any) -> None:
    decide(manager, approved.sets["R4"], "reject", at=local("2025-03-07", "09:00"))

    assert remedy_statuses(approved.sets["R4"]) == {"refund": "rejected", "gift": "rejected"}
    assert summary(manager)["remedy_cost"] == "239.00"
    assert summary(manager, since="2025-03-05", until="2025-03-07")["remedy_cost"] == "153.00"  # R3's approval
    assert outcome_of(approved.sets["R4"]).remedy_cost == Decimal("0.00")


def test_the_period_ends_count_remedies_by_given_at(approved: World, manager: Any) -> None:
    assert summary(manager, since="2025-02-28", until="2025-02-28")["remedy_cost"] == "43.00"  # R0, at 23:59:59.999999
    assert summary(manager, since="2025-03-11", until="2025-03-11")["remedy_cost"] == "3.00"  # R5, at 00:00
    assert summary(manager, since="2025-02-28", until="2025-03-11")["remedy_cost"] == "285.00"  # 43 + 239 + 3
    assert summary(manager, since="2025-01-01", until="2025-01-31")["remedy_cost"] == "0.00"


@pytest.mark.parametrize(
    ("params", "remedy_cost", "total_cost"),
    [
        ({"policy": "refund"}, "230.00", "20.00"),  # refunds R1 80 + R3 150; chose Billing: R1, R4
        ({"policy": "gift"}, "9.00", "6.00"),  # gifts R1, R2, R3; chose Apology: R3 (R2 declined a set showing it)
        ({"category": "billing_error"}, "236.00", "26.00"),  # R1 83 + R3 153
        ({"category": "late_delivery"}, "3.00", "0.00"),  # R2
        ({"tier": "standard"}, "83.00", "20.00"),  # R1 (R4's is waiting)
        ({"tier": "gold"}, "3.00", "0.00"),  # R2
        ({"tier": "silver"}, "153.00", "6.00"),  # R3, as recorded (silver), approved later
        ({"tier": "platinum"}, "0.00", "0.00"),
        ({"category": "billing_error", "policy": "gift"}, "6.00", "6.00"),  # gifts of R1 and R3
        ({"category": "late_delivery", "policy": "refund"}, "0.00", "0.00"),
        ({"tier": "silver", "policy": "refund"}, "150.00", "0.00"),  # R3's refund; R3 chose the Apology gift
    ],
)
def test_the_filters_apply_to_the_remedies(
    approved: World, manager: Any, params: dict[str, str], remedy_cost: str, total_cost: str
) -> None:
    if "policy" in params:
        params = {**params, "policy": getattr(approved.pack, params["policy"]).pk}

    data = summary(manager, **params)

    assert (data["remedy_cost"], data["total_cost"]) == (remedy_cost, total_cost)


def test_the_customers_tier_now_does_not_move_a_given_remedy(approved: World, manager: Any) -> None:
    """The tier is the one recorded with the outcome, as for outcomes."""
    Customer.objects.filter(external_id="C-1").update(tier="platinum")

    assert summary(manager, tier="standard")["remedy_cost"] == "83.00"
    assert summary(manager, tier="platinum")["remedy_cost"] == "0.00"


# --- Grouped reports ----------------------------------------------------------------------------


def remedy_costs(rows: list[dict[str, Any]], key: str, field: str | None = None) -> dict[Any, str]:
    return {k: row["remedy_cost"] for k, row in rows_by(rows, key, field).items()}


def test_policies_report_groups_remedies_by_their_own_policy(approved: World, analyst: Any) -> None:
    rows = get_ok(analyst, POLICIES, PERIOD)

    p = approved.pack
    # Both uncapped, and charged in March 2025 (the frozen clock), not this month: NO_BUDGET.
    assert rows == [
        # shown in R1-R4, chosen in R3; gifts of R1, R2, R3
        {
            "policy": {"id": p.gift.pk, "name": "Apology gift"},
            **group_row(4, 1, 0.25, "6.00", None, "9.00"),
            **NO_BUDGET,
        },
        # shown in R1, R3, R4, chosen in R1, R4; refunds of R1 (80) and R3 (150)
        {
            "policy": {"id": p.refund.pk, "name": "Billing refund"},
            **group_row(3, 2, 2 / 3, "20.00", None, "230.00"),
            **NO_BUDGET,
        },
    ]


def test_offer_kinds_report_has_the_remedy_kinds_even_where_no_option_was_of_that_kind(
    approved: World, analyst: Any
) -> None:
    by_kind = rows_by(get_ok(analyst, KINDS, PERIOD), "kind")

    assert {k: row for k, row in by_kind.items() if k in {"refund", "gift", "fixed_credit", "free_shipping"}} == {
        "refund": {"kind": "refund", **group_row(0, 0, None, "0.00", None, "230.00")},
        "gift": {"kind": "gift", **group_row(0, 0, None, "0.00", None, "9.00")},
        "fixed_credit": {"kind": "fixed_credit", **group_row(3, 2, 2 / 3, "20.00", None)},
        "free_shipping": {"kind": "free_shipping", **group_row(4, 1, 0.25, "6.00", None)},
    }
    others = set(OfferKind.values) - {"refund", "gift", "fixed_credit", "free_shipping"}
    assert {by_kind[k]["remedy_cost"] for k in others} == {"0.00"}


def test_categories_report_groups_remedies_by_the_incidents_category(approved: World, analyst: Any) -> None:
    rows = get_ok(analyst, CATEGORIES, PERIOD)

    p = approved.pack
    assert rows == [
        {
            "category": {"id": p.billing.pk, "slug": "billing_error", "name": "Billing error"},
            **with_outcomes(group_row(6, 3, 0.5, "26.00", None, "236.00"), 3, 0, 1.0),  # R1, R3, R4
        },
        {
            "category": {"id": p.late.pk, "slug": "late_delivery", "name": "Late delivery"},
            **with_outcomes(group_row(1, 0, 0.0, "0.00", None, "3.00"), 1, 1, 0.0),  # R2
        },
    ]


def test_agents_report_groups_remedies_by_the_agent_who_made_the_set(approved: World, manager: Any) -> None:
    rows = get_ok(manager, AGENTS, PERIOD)

    assert [row["agent"]["username"] for row in rows] == ["agent-1", "agent-2", "manager-1"]
    assert [{k: v for k, v in row.items() if k != "agent"} for row in rows] == [
        with_outcomes(group_row(4, 2, 0.5, "16.00", None, "236.00"), 2, 0, 1.0),  # R1, R3 (approved by manager-1)
        with_outcomes(group_row(3, 1, 1 / 3, "10.00", None, "3.00"), 2, 1, 0.5),  # R2, R4 (waiting)
        with_outcomes(group_row(0, 0, None, "0.00", None), 0, 0, None),
    ]


def test_on_the_approval_day_every_report_has_only_the_remedy(approved: World, manager: Any) -> None:
    """03-06: no set, no outcome, only R3's remedy given (refund 150.00, gift 3.00, agent-1, billing)."""
    day = {"since": "2025-03-06", "until": "2025-03-06"}
    p = approved.pack

    assert remedy_costs(get_ok(manager, POLICIES, day), "policy", "name") == {
        "Apology gift": "3.00",
        "Billing refund": "150.00",
    }
    kinds = remedy_costs(get_ok(manager, KINDS, day), "kind")
    assert {k: v for k, v in kinds.items() if v != "0.00"} == {"refund": "150.00", "gift": "3.00"}
    categories = get_ok(manager, CATEGORIES, day)
    assert remedy_costs(categories, "category", "slug") == {"billing_error": "153.00", "late_delivery": "0.00"}
    agents = rows_by(get_ok(manager, AGENTS, day), "agent", "username")
    assert {k: v for k, v in agents["agent-1"].items() if k != "agent"} == with_outcomes(
        group_row(0, 0, None, "0.00", None, "153.00"), 0, 0, None
    )
    assert agents["agent-2"]["remedy_cost"] == "0.00"
    only_refund = get_ok(manager, POLICIES, {**day, "policy": p.refund.pk})
    assert [(row["policy"]["name"], row["remedy_cost"]) for row in only_refund] == [("Billing refund", "150.00")]


def test_agents_report_keeps_someone_whose_only_figure_is_a_remedy_given_in_the_period(
    approved: World, manager: Any
) -> None:
    Group.objects.get(name=Role.AGENT).user_set.get(username="agent-1").groups.clear()  # no longer an agent

    on_approval_day = get_ok(manager, AGENTS, {"since": "2025-03-06", "until": "2025-03-06"})
    a_quiet_day = get_ok(manager, AGENTS, {"since": "2025-03-07", "until": "2025-03-07"})

    assert remedy_costs(on_approval_day, "agent", "username") == {
        "agent-1": "153.00",
        "agent-2": "0.00",
        "manager-1": "0.00",
    }
    assert [row["agent"]["username"] for row in a_quiet_day] == ["agent-2", "manager-1"]


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (POLICIES, {"tier": "silver"}, {"Apology gift": "3.00", "Billing refund": "150.00"}),
        (POLICIES, {"category": "late_delivery"}, {"Apology gift": "3.00", "Billing refund": "0.00"}),
        (CATEGORIES, {"tier": "standard"}, {"billing_error": "83.00", "late_delivery": "0.00"}),
        (CATEGORIES, {"category": "late_delivery"}, {"late_delivery": "3.00"}),
        (CATEGORIES, {"policy": "refund"}, {"billing_error": "230.00", "late_delivery": "0.00"}),
        (AGENTS, {"policy": "gift"}, {"agent-1": "6.00", "agent-2": "3.00", "manager-1": "0.00"}),
        (AGENTS, {"category": "billing_error", "tier": "silver"}, {"agent-1": "153.00", "agent-2": "0.00",
                                                                   "manager-1": "0.00"}),
    ],
)  # fmt: skip
def test_grouped_reports_filter_the_remedies(
    approved: World, manager: Any, url: str, params: dict[str, str], expected: dict[str, str]
) -> None:
    if "policy" in params:
        params = {**params, "policy": getattr(approved.pack, params["policy"]).pk}
    key, field = {POLICIES: ("policy", "name"), CATEGORIES: ("category", "slug"), AGENTS: ("agent", "username")}[url]

    assert remedy_costs(get_ok(manager, url, {**PERIOD, **params}), key, field) == expected


def test_grouped_remedy_costs_add_up_to_the_summarys(approved: World, manager: Any) -> None:
    periods = [{}, {"since": "2025-03-06", "until": "2025-03-06"}, {"tier": "standard"}, {"category": "late_delivery"}]
    for params in ({**PERIOD, **extra} for extra in periods):
        total = Decimal(summary(manager, **params)["remedy_cost"])
        for url in (POLICIES, KINDS, CATEGORIES, AGENTS):
            rows = get_ok(manager, url, params)
            assert sum(Decimal(row["remedy_cost"]) for row in rows) == total, (url, params)


# --- The outcome list and its CSV ---------------------------------------------------------------


def test_outcome_rows_carry_the_cost_of_the_remedies_given_with_them(approved: World, analyst: Any) -> None:
    sets = approved.sets
    names = {outcome_of(s).pk: name for name, s in sets.items()}

    results = get_ok(analyst, LIST, {"page_size": 100})["results"]

    assert [(names[row["id"]], row["cost"], row["remedy_cost"]) for row in results] == [
        ("R5", "6.00", "3.00"),
        ("R4", "10.00", "0.00"),  # waiting for a manager
        ("R3", "6.00", "153.00"),  # approved after it was recorded
        ("R2", "0.00", "3.00"),  # declined, the remedy given all the same
        ("R1", "10.00", "83.00"),
        ("R0", "0.00", "43.00"),
    ]


def test_an_outcome_row_gets_its_remedy_cost_when_the_remedy_is_approved(world: World, manager: Any) -> None:
    r3 = outcome_of(world.sets["R3"]).pk

    def row() -> dict[str, Any]:
        return next(r for r in get_ok(manager, LIST, {"page_size": 100})["results"] if r["id"] == r3)

    assert (row()["cost"], row()["remedy_cost"]) == ("6.00", "0.00")
    world.approve_r3()
    assert (row()["cost"], row()["remedy_cost"]) == ("6.00", "153.00")


def test_csv_has_remedy_cost_right_after_cost(approved: World, manager: Any) -> None:
    table = csv_rows(manager.get(LIST, {"format": "csv", **PERIOD}))

    assert CSV_HEADER.index("remedy_cost") == CSV_HEADER.index("cost") + 1
    assert table[0][table[0].index("cost") : table[0].index("cost") + 3] == ["cost", "remedy_cost", "currency"]
    cells = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert [(c["customer"], c["choice"] == "declined", c["cost"], c["remedy_cost"]) for c in cells] == [
        ("C-4", False, "10.00", "0.00"),
        ("C-3", False, "6.00", "153.00"),
        ("C-2", True, "0.00", "3.00"),
        ("C-1", False, "10.00", "83.00"),
    ]


def test_the_remedy_costs_of_the_listed_outcomes_are_what_the_reports_count_when_given_with_them(
    approved: World, manager: Any
) -> None:
    """Without late approvals, the outcomes' remedy_cost adds up to the summary's over the same days."""
    days = {"since": "2025-03-01", "until": "2025-03-03"}  # R1, R2: their remedies given when recorded

    listed = get_ok(manager, LIST, days)["results"]

    assert sum(Decimal(row["remedy_cost"]) for row in listed) == Decimal(summary(manager, **days)["remedy_cost"])
    assert summary(manager, **days)["remedy_cost"] == "86.00"


# --- Days are in TIME_ZONE ----------------------------------------------------------------------


def test_a_remedy_counts_on_its_given_at_day_in_time_zone(
    settings: Any, pack: Pack, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    """Approved at 03:00Z on 03-07: still 03-06 (22:00 EST) in New York."""
    settings.TIME_ZONE = "America/New_York"
    offer_set = remedy_case(
        agent1, django_capture_on_commit_callbacks, at=local("2025-03-04", "10:00"), customer="C-9",
        category=pack.billing, order_value="100.00", choose=pack.refund,
    )  # fmt: skip
    decide(manager, offer_set, "approve", at=datetime.fromisoformat("2025-03-07T03:00:00+00:00"))

    assert summary(manager, since="2025-03-06", until="2025-03-06")["remedy_cost"] == "103.00"
    assert summary(manager, since="2025-03-07", until="2025-03-07")["remedy_cost"] == "0.00"
    settings.TIME_ZONE = "UTC"
    assert summary(manager, since="2025-03-07", until="2025-03-07")["remedy_cost"] == "103.00"
