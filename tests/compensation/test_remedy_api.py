"""Remedy first, then a/b/c (README, "Remedy, lead placement and why not"), through the API.

A policy's remedy is given once per incident, with the incident's first recorded outcome whatever the
customer chose (``declined`` included); never ranked, never limited by budgets. Above the agent's
authority it waits for its own approval while the choice is recorded. Also here: lead placement,
why-not per offer and the placeholders, as an agent sees them in the offer set.

Tasks run eagerly (tests/settings.py): ``django_capture_on_commit_callbacks`` records the outcome.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from compensation.models import BudgetCharge, Customer, Escalation, Outcome, PerkGrant, PolicyMonthSpend, Remedy
from compensation.periods import local_date, month_start
from policies.models import Perk, Policy
from policies.packs import pack_import

pytestmark = pytest.mark.django_db

URL = "/api/v1/offer-sets/"
ESCALATIONS = "/api/v1/escalations/"
REMEDY_KEYS = {
    "kind",
    "title",
    "message",
    "value",
    "unit",
    "estimated_cost",
    "currency",
    "policy",
    "requires_approval",
    "given_at",
}


def billing_pack(*, refund_max: str = "800.00", monthly_cap: str | None = None) -> dict[str, Any]:
    """A billing-error policy that refunds the whole order first, then offers three ways to make up for it."""
    return {
        "categories": [{"slug": "billing_error", "name": "billing error"}],
        "policies": [
            {
                "slug": "billing-error-refund",
                "name": "Billing error refund",
                "priority": 85,
                "conditions": {"categories": ["billing_error"]},
                "budget": {"monthly_cap": monthly_cap},
                "remedy": [
                    {
                        "kind": "refund",
                        "title": "Your {money} back",
                        "message": "{first_name}, I've refunded the full {money} to your card.",
                        "value": "100",
                        "max_amount": refund_max,
                    }
                ],
                "offers": [
                    {"kind": "fixed_credit", "title": "{money} credit for the hassle", "value": "15.00"},
                    {"kind": "free_shipping", "title": "Free shipping next time", "value": "8.00"},
                    {"kind": "gift", "title": "A small gift", "value": "10.00"},
                ],
            }
        ],
    }


def body(external_id: str = "C-1", *, ticket: str | None = None, **incident: Any) -> dict[str, Any]:
    return {
        "customer": {"external_id": external_id, "name": "Maria Gonzalez", "email": "maria@example.com"},
        "incident": {
            "category": "billing_error",
            "severity": 3,
            "order_value": "300.00",
            **({"external_ref": ticket} if ticket else {}),
            **incident,
        },
    }


def created(client: Any, data: dict[str, Any], *, explain: bool = False) -> dict[str, Any]:
    response = client.post(URL + ("?explain=true" if explain else ""), data, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def choose(client: Any, offer_set_id: str, choice: str, capture: Any) -> None:
    with capture(execute=True):
        response = client.post(f"{URL}{offer_set_id}/outcome/", {"choice": choice}, format="json")
    assert response.status_code == 202, response.content


def detail(client: Any, offer_set_id: str) -> dict[str, Any]:
    response = client.get(f"{URL}{offer_set_id}/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def agent(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


# --- The remedy in the offer set --------------------------------------------------------------------


def test_a_double_charge_gets_its_refund_first_and_three_compensation_choices(agent: Any) -> None:
    pack_import(document=billing_pack())
    policy = Policy.objects.get(slug="billing-error-refund")

    data = created(agent, body())

    assert data["remedy"] == [
        {
            "kind": "refund",
            "title": "Your $300.00 back",
            "message": "Maria, I've refunded the full $300.00 to your card.",
            "value": "100.00",
            "unit": "percent",
            "estimated_cost": "300.00",
            "currency": "USD",
            "policy": {"id": policy.pk, "name": "Billing error refund", "version": 1},
            "requires_approval": True,  # 300.00 is above the agents' limit of 100.00
            "given_at": None,
        }
    ]
    assert sorted(o["kind"] for o in data["options"]) == ["fixed_credit", "free_shipping", "gift"]
    assert data["options"][0]["title"].startswith("$15.00 credit")
    assert Remedy.objects.get().status == "pending"


def test_a_remedy_is_capped_by_its_max_amount(agent: Any) -> None:
    pack_import(document=billing_pack(refund_max="250.00"))

    [remedy] = created(agent, body())["remedy"]

    assert (remedy["estimated_cost"], remedy["title"]) == ("250.00", "Your $250.00 back")


def test_a_set_whose_budgets_are_spent_still_carries_its_remedy_and_charges_nothing(manager: Any, capture: Any) -> None:
    pack_import(document=billing_pack(monthly_cap="20.00"))
    policy = Policy.objects.get()
    PolicyMonthSpend.objects.create(policy=policy, month=month_start(timezone.now()), spent=Decimal("20.00"))

    data = created(manager, body())
    choose(manager, data["id"], "declined", capture)

    assert data["options"] == []
    assert [r["estimated_cost"] for r in data["remedy"]] == ["300.00"]
    assert Remedy.objects.get().status == "given"
    assert PolicyMonthSpend.objects.get().spent == Decimal("20.00")  # a remedy is not counted against budgets
    assert not BudgetCharge.objects.exists()


def test_a_v1_policy_without_remedy_gives_an_empty_list(agent: Any) -> None:
    pack = billing_pack()
    del pack["policies"][0]["remedy"]
    pack_import(document=pack)

    data = created(agent, body())

    assert data["remedy"] == []
    assert len(data["options"]) == 3


def test_of_two_remedies_of_one_kind_the_higher_priority_policy_keeps_its_own(agent: Any) -> None:
    pack = billing_pack()
    second = {
        **pack["policies"][0],
        "slug": "goodwill",
        "name": "Goodwill",
        "priority": 90,
        "remedy": [
            {"kind": "refund", "title": "Half back: {money}", "value": "50"},
            {"kind": "gift", "title": "Flowers", "message": "{first_name}, flowers are on their way.", "value": "25"},
        ],
    }
    pack["policies"].append(second)
    pack_import(document=pack)

    remedy = created(agent, body())["remedy"]

    assert [(r["kind"], r["title"], r["policy"]["name"]) for r in remedy] == [
        ("refund", "Half back: $150.00", "Goodwill"),
        ("gift", "Flowers", "Goodwill"),
    ]


# --- Given once per incident ---------------------------------------------------------------------


def test_the_remedy_is_given_when_the_customer_declines(manager: Any, capture: Any) -> None:
    """A manager's set: no approval needed, whatever the remedy costs."""
    pack_import(document=billing_pack())
    data = created(manager, body())

    choose(manager, data["id"], "declined", capture)

    remedy = Remedy.objects.get()
    outcome = Outcome.objects.get()
    assert (remedy.status, remedy.outcome_id, remedy.given_at) == ("given", outcome.pk, outcome.recorded_at)
    assert outcome.remedy_cost == Decimal("300.00")
    assert outcome.cost == Decimal("0.00")  # the options' cost alone
    shown = detail(manager, data["id"])
    assert shown["remedy"][0]["given_at"] is not None
    assert [(r["kind"], r["status"], r["estimated_cost"]) for r in shown["outcome"]["remedy"]] == [
        ("refund", "given", "300.00")
    ]


def test_the_outcome_shows_the_remedy_pending_until_recorded(agent: Any) -> None:
    pack_import(document=billing_pack())
    data = created(agent, body())

    response = agent.post(f"{URL}{data['id']}/outcome/", {"choice": "a"}, format="json")  # not recorded yet

    assert response.status_code == 202
    assert [r["status"] for r in detail(agent, data["id"])["outcome"]["remedy"]] == ["pending"]


def test_a_second_set_of_the_same_ticket_shows_the_remedy_given_and_gives_it_no_second_time(
    manager: Any, capture: Any
) -> None:
    pack_import(document=billing_pack())
    first = created(manager, body(ticket="TCK-9"))
    choose(manager, first["id"], "a", capture)
    given_at = Remedy.objects.get().given_at

    second = created(manager, body(ticket="TCK-9"))
    choose(manager, second["id"], "b", capture)

    assert second["remedy"][0]["given_at"] == given_at.isoformat().replace("+00:00", "Z")
    assert Remedy.objects.count() == 1
    outcomes = dict(Outcome.objects.values_list("offer_set_id", "remedy_cost"))
    assert {str(k): v for k, v in outcomes.items()} == {first["id"]: Decimal("300.00"), second["id"]: Decimal("0")}


def test_a_new_ticket_is_a_new_incident_with_its_own_remedy(manager: Any, capture: Any) -> None:
    pack_import(document=billing_pack())
    for ticket in ("TCK-1", "TCK-2"):
        choose(manager, created(manager, body(ticket=ticket))["id"], "declined", capture)

    assert list(Remedy.objects.values_list("status", flat=True)) == ["given", "given"]


# --- Approval ------------------------------------------------------------------------------------


@pytest.fixture
def awaiting(agent: Any, capture: Any) -> dict[str, Any]:
    """An agent's set whose $300 refund is above the agents' limit of 100.00: the choice is recorded,
    the remedy waits."""
    pack_import(document=billing_pack())
    data = created(agent, body(ticket="TCK-5"))
    choose(agent, data["id"], "c", capture)
    return data


def test_a_remedy_above_the_agents_limit_waits_for_its_own_approval_while_the_choice_is_recorded(
    agent: Any, manager: Any, awaiting: dict[str, Any]
) -> None:
    shown = detail(agent, awaiting["id"])

    assert [r["requires_approval"] for r in shown["remedy"]] == [True]  # for the agent reading it
    assert [r["requires_approval"] for r in detail(manager, awaiting["id"])["remedy"]] == [False]
    assert shown["outcome"]["status"] == "recorded"
    approval = Escalation.objects.get(kind="approval")
    assert [(r["status"], r["approval"]) for r in shown["outcome"]["remedy"]] == [("awaiting_approval", approval.pk)]
    assert "remedy" in approval.reason
    assert "'Your $300.00 back'" in approval.reason
    assert "above agent-1's limit of 100.00 per option" in approval.reason
    assert Outcome.objects.get().remedy_cost == Decimal("0")


def test_an_approved_remedy_is_given(agent: Any, manager: Any, awaiting: dict[str, Any]) -> None:
    approval = Escalation.objects.get(kind="approval")

    response = manager.post(f"{ESCALATIONS}{approval.pk}/approve/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert [r["requires_approval"] for r in detail(agent, awaiting["id"])["remedy"]] == [False]  # given now
    remedy = Remedy.objects.get()
    assert remedy.status == "given"
    assert remedy.given_at is not None
    assert Outcome.objects.get().remedy_cost == Decimal("300.00")
    assert manager.post(f"{ESCALATIONS}{approval.pk}/approve/").status_code == 200  # again: nothing changes
    assert Outcome.objects.get().remedy_cost == Decimal("300.00")


def test_a_rejected_remedy_is_not_given_and_is_tried_again_at_the_next_outcome(
    agent: Any, manager: Any, awaiting: dict[str, Any], capture: Any
) -> None:
    first = Escalation.objects.get(kind="approval")

    response = manager.post(f"{ESCALATIONS}{first.pk}/reject/", {"reason": "Refund done by the bank"}, format="json")

    assert response.status_code == 200, response.content
    assert [r["status"] for r in detail(agent, awaiting["id"])["outcome"]["remedy"]] == ["rejected"]
    assert Remedy.objects.get().given_at is None

    again = created(agent, body(ticket="TCK-5"))
    choose(agent, again["id"], "a", capture)

    second = Escalation.objects.filter(kind="approval").exclude(pk=first.pk).get()
    assert Remedy.objects.get().approval_id == second.pk
    assert [r["status"] for r in detail(agent, again["id"])["outcome"]["remedy"]] == ["awaiting_approval"]


def test_a_manager_never_needs_approval_for_a_remedy(manager: Any, capture: Any) -> None:
    pack_import(document=billing_pack())
    data = created(manager, body())

    choose(manager, data["id"], "declined", capture)

    assert Remedy.objects.get().status == "given"
    assert not Escalation.objects.exists()


def test_a_remedy_within_the_agents_limit_needs_no_approval(agent: Any, capture: Any) -> None:
    pack_import(document=billing_pack())
    data = created(agent, body(order_value="60.00"))
    assert [r["requires_approval"] for r in data["remedy"]] == [False]

    choose(agent, data["id"], "a", capture)

    assert (Remedy.objects.get().status, Remedy.objects.get().estimated_cost) == ("given", Decimal("60.00"))
    assert not Escalation.objects.exists()


# --- Lead placement ------------------------------------------------------------------------------


def lead_pack() -> dict[str, Any]:
    """Three policies for late deliveries: two placed lead, with offers that score low, and a generous one."""

    def policy(slug: str, priority: int, placement: str, offers: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "slug": slug,
            "name": slug.replace("-", " ").capitalize(),
            "priority": priority,
            "placement": placement,
            "conditions": {"categories": ["late_delivery"]},
            "offers": [{"kind": kind, "title": f"{slug} {kind}", "value": value} for kind, value in offers],
        }

    return {
        "categories": [{"slug": "late_delivery", "name": "late delivery"}],
        "policies": [
            policy(
                "generous", 100, "ranked", [("fixed_credit", "20.00"), ("gift", "18.00"), ("free_shipping", "15.00")]
            ),
            policy("repeat-mistake", 20, "lead", [("fixed_credit", "1.00"), ("gift", "1.00")]),
            policy("other-lead", 10, "lead", [("expedited_replacement", "1.00")]),
        ],
    }


def test_the_higher_priority_lead_policy_gives_option_a_even_when_it_scores_below_b(agent: Any) -> None:
    pack_import(document=lead_pack())

    data = created(
        agent, {"customer": {"external_id": "C-9"}, "incident": {"category": "late_delivery", "severity": 3}}
    )

    options = data["options"]
    assert (options[0]["label"], options[0]["policy"]["name"]) == ("a", "Repeat mistake")
    a, b, c = options
    assert a["score"] < b["score"]  # the one exception to "score never increases from a to c"
    assert b["score"] >= c["score"]
    assert any("leads" in reason and "written for this case" in reason for reason in a["reasons"])
    assert b["policy"]["name"] == c["policy"]["name"] == "Generous"
    assert a["kind"] not in {b["kind"], c["kind"]}  # kinds still differ where they can
    assert any("after the leading option" in reason for reason in b["reasons"])


def test_a_lead_policy_that_does_not_apply_changes_nothing(agent: Any) -> None:
    pack = lead_pack()
    for policy in pack["policies"][1:]:
        policy["conditions"]["min_repeat_count"] = 2
    pack_import(document=pack)

    options = created(
        agent, {"customer": {"external_id": "C-9"}, "incident": {"category": "late_delivery", "severity": 3}}
    )["options"]

    assert {o["policy"]["name"] for o in options} == {"Generous"}
    assert [o["score"] for o in options] == sorted((o["score"] for o in options), reverse=True)


# --- Why not, per offer --------------------------------------------------------------------------


def test_explain_says_why_each_offer_of_an_applying_policy_was_not_shown(agent: Any) -> None:
    pack = lead_pack()
    pack["policies"][0]["offers"].append({"kind": "gift", "title": "generous second gift", "value": "17.00"})
    pack["policies"].append(
        {
            "slug": "capped",
            "name": "Capped",
            "conditions": {"categories": ["late_delivery"]},
            "budget": {"per_customer_cap_30d": "5.00"},
            "offers": [{"kind": "fixed_credit", "title": "capped credit", "value": "12.00"}],
        }
    )
    pack_import(document=pack)

    data = created(
        agent,
        {"customer": {"external_id": "C-9"}, "incident": {"category": "late_delivery", "severity": 3}},
        explain=True,
    )

    per_offer = {(e["policy"]["name"], e["offer"]["title"]): e["reason"] for e in data["not_offered"] if "offer" in e}
    labels = {o["title"]: o["label"] for o in data["options"]}
    c_score = f"{data['options'][2]['score']:.3g}"
    assert (
        per_offer[("Capped", "capped credit")]
        == "per-customer cap has 5.00 left for this customer, fixed_credit costs 12.00"
    )
    assert per_offer[("Repeat mistake", "repeat-mistake gift")].startswith("same kind as option ")
    gift_label = labels.get("generous gift")
    assert per_offer[("Generous", "generous second gift")] == f"same kind as option {gift_label}, which scored higher"
    assert per_offer[("Other lead", "other-lead expedited_replacement")].startswith(
        "ranked below the options shown (score "
    )
    assert per_offer[("Other lead", "other-lead expedited_replacement")].endswith(f" < {c_score} of option c)")
    shown_titles = set(labels)
    assert not shown_titles & {title for _, title in per_offer}


def test_explain_says_when_the_matching_perk_was_given(agent: Any) -> None:
    pack_import(
        document={
            "categories": [{"slug": "late_delivery", "name": "late delivery"}],
            "perks": [{"slug": "cinema", "name": "two cinema tickets", "tags": ["movies"], "cost": "18.00"}],
            "policies": [
                {
                    "slug": "perks",
                    "name": "Perks",
                    "conditions": {"categories": ["late_delivery"]},
                    "offers": [
                        {"kind": "personalized_perk", "title": "{perk_name} on us"},
                        {"kind": "gift", "title": "A gift", "value": "5.00"},
                    ],
                }
            ],
        }
    )
    data = {
        "customer": {"external_id": "C-7", "interests": ["movies"]},
        "incident": {"category": "late_delivery", "severity": 2},
    }
    created(agent, data)  # the customer exists
    granted = timezone.now() - timedelta(days=10)
    PerkGrant.objects.create(customer=Customer.objects.get(), perk=Perk.objects.get(), granted_at=granted)

    again = created(agent, data, explain=True)

    [entry] = [e for e in again["not_offered"] if "offer" in e]
    assert entry["offer"] == {"kind": "personalized_perk", "title": "{perk_name} on us"}
    assert entry["reason"] == (
        f"the matching perk 'two cinema tickets' was given to this customer on {local_date(granted).isoformat()}"
    )
    other = created(agent, {**data, "customer": {"external_id": "C-8", "interests": ["sports"]}}, explain=True)
    assert [e["reason"] for e in other["not_offered"] if "offer" in e] == [
        "no active perk matches the customer's interests"
    ]


# --- Placeholders -------------------------------------------------------------------------------


PLACEHOLDER_PACK = {
    "categories": [{"slug": "billing_error", "name": "billing error"}],
    "policies": [
        {
            "slug": "words",
            "name": "Words",
            "conditions": {"categories": ["billing_error"]},
            "offers": [
                {
                    "kind": "percent_discount",
                    "title": "{value}% off: {money}",
                    "message": "{first_name}, ticket {ticket}: incident {repeat_count}, same kind "
                    "{same_category_repeat_count}. {customer_name}",
                    "value": "10",
                    "max_amount": "50.00",
                },
                {"kind": "fixed_credit", "title": "{money} credit ({amount} {currency})", "value": "1234.50"},
            ],
        }
    ],
}


def test_placeholders_render_first_name_money_ticket_and_repeat_counts(manager: Any) -> None:
    pack_import(document=PLACEHOLDER_PACK)
    created(manager, body(ticket="TCK-1"))

    data = created(manager, body(ticket="TCK-2"))

    options = {o["kind"]: o for o in data["options"]}
    assert options["percent_discount"]["title"] == "10% off: $30.00"  # the money the percent comes to
    assert options["percent_discount"]["message"] == ("Maria, ticket TCK-2: incident 2, same kind 2. Maria Gonzalez")
    assert options["fixed_credit"]["title"] == "$1,234.50 credit (1234.50 USD)"


@override_settings(MONEY_LOCALE="de_DE")
def test_money_follows_money_locale(manager: Any) -> None:
    pack_import(document=PLACEHOLDER_PACK)

    options = {o["kind"]: o for o in created(manager, body())["options"]}

    assert options["fixed_credit"]["title"] == "1.234,50\xa0$ credit (1234.50 USD)"
    assert options["percent_discount"]["title"] == "10% off: 30,00\xa0$"


def test_an_empty_name_and_no_ticket_leave_no_placeholder_behind(manager: Any) -> None:
    pack_import(document=PLACEHOLDER_PACK)

    data = created(
        manager, {"customer": {"external_id": "C-5"}, "incident": {"category": "billing_error", "severity": 1}}
    )

    message = {o["kind"]: o for o in data["options"]}["percent_discount"]["message"]
    assert message == "there, ticket : incident 1, same kind 1. there"


def test_the_admin_lists_remedies_and_the_outcomes_remedy_cost(manager: Any, capture: Any, admin_client: Any) -> None:
    pack_import(document=billing_pack())
    choose(manager, created(manager, body())["id"], "declined", capture)

    remedies = admin_client.get("/admin/compensation/remedy/")
    outcomes = admin_client.get("/admin/compensation/outcome/")

    assert remedies.status_code == outcomes.status_code == 200
    assert b"Your $300.00 back" in remedies.content
    assert b'<td class="field-status">Given</td>' in remedies.content
    assert b'<td class="field-remedy_cost">300.00</td>' in outcomes.content
