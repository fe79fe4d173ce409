"""The demo pack through the API, as a new user tries it: the cases of issue 2's report.

Making it right comes first: a double charge is refunded in full and a severe,
uncorrectable missed delivery is refunded in full, as the set's ``remedy``,
whatever the customer chooses; the a/b/c options beside it are compensation,
never the same refund again. The same mistake twice puts the repeat-mistake
policy's option first, and it says this happened again. Messages speak to the
customer by first name, with money written as "$300.00".
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from policies.choices import OfferKind

pytestmark = pytest.mark.django_db

URL = "/api/v1/offer-sets/"
MARIA = {"external_id": "C-MARIA", "name": "Maria Gonzalez", "email": "maria@example.com"}
COMPENSATION = {
    OfferKind.FIXED_CREDIT,
    OfferKind.PERCENT_DISCOUNT,
    OfferKind.FREE_SHIPPING,
    OfferKind.GIFT,
    OfferKind.PERSONALIZED_PERK,
    OfferKind.ESCALATION,
}
BARE_MONEY = re.compile(r"(?<![$\d,.])\d+(?:,\d{3})*\.\d{2}\b")  # "46.00", not "$46.00"
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


@pytest.fixture
def agent(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


def offer_set(client: Any, customer: dict[str, Any], **incident: Any) -> dict[str, Any]:
    incident.setdefault("severity", 3)
    incident.setdefault("occurred_at", (timezone.now() - timedelta(hours=2)).isoformat())
    response = client.post(URL, {"customer": customer, "incident": incident}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def texts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Every option's and remedy item's title and message, with where it is."""
    out = []
    for item in data["options"] + data["remedy"]:
        where = f"{item.get('label', 'remedy')} {item['kind']} ({item['policy']['name']})"
        out += [(f"{where} title", item["title"]), (f"{where} message", item["message"])]
    return out


def assert_speaks_to(data: dict[str, Any], first_name: str, full_name: str) -> None:
    for where, text in texts(data):
        assert "{" not in text, f"{where}: {text!r}"
        assert "USD" not in text, f"{where} writes money without its sign: {text!r}"
        assert full_name not in text, f"{where} uses the full name: {text!r}"
    for item in data["options"] + data["remedy"]:
        assert item["message"].startswith(f"{first_name}, "), item["message"]


def assert_compensation_beside(data: dict[str, Any], remedy_kind: str) -> None:
    assert len(data["options"]) == 3
    kinds = [option["kind"] for option in data["options"]]
    assert set(kinds) <= COMPENSATION, kinds
    assert remedy_kind not in kinds


# --- (a) A double charge is refunded in full, then compensated ---------------------------------------


@pytest.mark.parametrize(
    ("category", "policy"), [("double_charge", "Double charge refund"), ("billing_error", "Billing error refund")]
)
def test_money_taken_by_mistake_comes_back_in_full_as_the_remedy(
    demo_pack: None, agent: Any, category: str, policy: str
) -> None:
    data = offer_set(agent, MARIA, external_ref="T-300", category=category, severity=3, order_value="300.00")

    [refund] = data["remedy"]
    assert set(refund) == REMEDY_KEYS
    assert (refund["kind"], refund["unit"], Decimal(refund["value"])) == (OfferKind.REFUND, "percent", 100)
    assert (refund["estimated_cost"], refund["currency"]) == ("300.00", "USD")
    assert refund["policy"]["name"] == policy
    assert refund["given_at"] is None  # given with the incident's first recorded outcome
    assert "$300.00" in refund["title"]
    assert "refunding $300.00" in refund["message"]
    assert_compensation_beside(data, OfferKind.REFUND)
    assert any(option["policy"]["name"] == policy for option in data["options"])  # its hassle credit, say
    assert_speaks_to(data, "Maria", "Maria Gonzalez")


# --- (b) A severe, uncorrectable missed delivery: the senior manager's full refund ---------------------


def test_a_severe_missed_delivery_that_cannot_be_undone_is_refunded_in_full(demo_pack: None, agent: Any) -> None:
    data = offer_set(
        agent,
        {**MARIA, "interests": ["cooking"]},
        external_ref="T-640",
        category="missed_delivery",
        severity=5,
        correctable=False,
        order_value="640.00",
    )

    [refund] = data["remedy"]
    assert (refund["kind"], refund["estimated_cost"]) == (OfferKind.REFUND, "640.00")
    assert refund["policy"]["name"] == "Senior manager escalation"
    assert "$640.00" in refund["message"]
    assert data["escalation"] is not None  # and a senior manager calls, whatever is chosen
    assert_compensation_beside(data, OfferKind.REFUND)
    perk = next(o for o in data["options"] if o["kind"] == OfferKind.PERSONALIZED_PERK)
    assert "an online cooking masterclass with a professional chef, completely on us" in perk["message"]
    assert_speaks_to(data, "Maria", "Maria Gonzalez")


def test_a_damaged_item_we_can_no_longer_replace_gets_its_money_back_not_a_replacement(
    demo_pack: None, agent: Any
) -> None:
    data = offer_set(agent, MARIA, category="damaged_item", severity=5, correctable=False, order_value="250.00")

    assert [(r["kind"], r["estimated_cost"]) for r in data["remedy"]] == [(OfferKind.REFUND, "250.00")]
    corrected = offer_set(agent, MARIA, category="damaged_item", severity=5, correctable=True, order_value="250.00")
    assert [r["kind"] for r in corrected["remedy"]] == [OfferKind.EXPEDITED_REPLACEMENT]


# --- (c) The same mistake twice: the repeat-mistake policy leads, and says so ----------------------------


def test_a_repeat_late_delivery_puts_the_repeat_mistake_option_first_and_says_it_happened_again(
    demo_pack: None, agent: Any
) -> None:
    gold = {**MARIA, "tier": "gold", "lifetime_value": "2400.00", "interests": ["cooking"]}
    now = timezone.now()
    incident = {"category": "late_delivery", "severity": 3, "order_value": "120.00"}
    first = offer_set(agent, gold, external_ref="T-1", occurred_at=(now - timedelta(days=20)).isoformat(), **incident)
    second = offer_set(agent, gold, external_ref="T-2", occurred_at=(now - timedelta(days=1)).isoformat(), **incident)

    assert first["incident"]["same_category_repeat_count"] == 1
    assert "Repeat mistake" not in {option["policy"]["name"] for option in first["options"]}
    assert second["incident"]["same_category_repeat_count"] == 2
    a = second["options"][0]
    assert (a["label"], a["policy"]["name"]) == ("a", "Repeat mistake")
    assert any(reason.startswith("leads:") for reason in a["reasons"]), a["reasons"]
    assert "again" in a["message"], a["message"]
    assert second["remedy"] == []  # nothing to put right for a late delivery: it arrived
    assert_speaks_to(second, "Maria", "Maria Gonzalez")


# --- (d) First names, and money with its sign ------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "order_value"),
    [("damaged_item", "80.00"), ("wrong_item", "45.00"), ("out_of_stock", "60.00"), ("late_delivery", "0")],
)
def test_messages_use_the_first_name_and_money_with_its_sign(
    demo_pack: None, agent: Any, category: str, order_value: str
) -> None:
    data = offer_set(agent, {"external_id": "C-K", "name": "Kenji"}, category=category, order_value=order_value)

    assert_speaks_to(data, "Kenji", "Kenji ")
    assert any("$" in text for _, text in texts(data)), texts(data)
    for where, text in texts(data):
        assert not BARE_MONEY.search(text), f"{where}: an amount without its sign: {text!r}"


def test_damaged_and_wrong_items_get_the_replacement_and_out_of_stock_an_alternative(
    demo_pack: None, agent: Any
) -> None:
    damaged = offer_set(agent, MARIA, category="damaged_item", order_value="80.00")
    out_of_stock = offer_set(agent, MARIA, category="out_of_stock", order_value="60.00")

    for data, policy in (
        (damaged, "Damaged or wrong item"),
        (out_of_stock, "Out of stock: in-stock alternative, fast"),
    ):
        [replacement] = data["remedy"]
        assert (replacement["kind"], replacement["policy"]["name"]) == (OfferKind.EXPEDITED_REPLACEMENT, policy)
        assert_compensation_beside(data, OfferKind.EXPEDITED_REPLACEMENT)
    assert "in-stock alternative" in out_of_stock["remedy"][0]["title"]
