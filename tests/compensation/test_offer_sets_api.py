"""The offer-set API's contract (README, "Asking for options"; the OpenAPI schema): the 201 shape, every 400 of the
validation table writing nothing, the customer upsert, incident reuse and repeat counts,
the demo pack's scenarios, ``?explain=true``, budgets, permissions, ``Idempotency-Key``,
the list with its pagination and filters, query counts, and the policy index rebuilt
after an edit.
"""

from __future__ import annotations

import copy
import io
import math
import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compensation.models import (
    Customer,
    Escalation,
    IdempotencyRecord,
    Incident,
    Offer,
    OfferSet,
    PolicyMonthSpend,
)
from compensation.periods import month_start
from compensation.serializers import OptionSerializer
from policies.choices import OfferKind
from policies.models import Category, Perk, Policy
from policies.services import policy_version_record
from tests.factories import CategoryFactory, OfferTemplateFactory, PerkFactory, PolicyFactory
from tests.policies.test_admin import page_form

pytestmark = pytest.mark.django_db

URL = "/api/v1/offer-sets/"
DEMO_PACK = Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"
MONEY = re.compile(r"^\d+\.\d{2}$")
WRITTEN = (Customer, Incident, OfferSet, Offer, Escalation, IdempotencyRecord)

TOP_KEYS = {"id", "created_at", "expires_at", "customer", "incident", "remedy", "options", "escalation", "outcome"}
CUSTOMER_KEYS = {"external_id", "name", "tier", "lifetime_value", "interests"}
INCIDENT_KEYS = {
    "id",
    "external_ref",
    "category",
    "severity",
    "fault",
    "correctable",
    "order_value",
    "currency",
    "repeat_count",
    "same_category_repeat_count",
}
OPTION_KEYS = {
    "label",
    "kind",
    "title",
    "message",
    "value",
    "unit",
    "estimated_cost",
    "currency",
    "requires_approval",
    "policy",
    "score",
    "score_breakdown",
    "reasons",
}
ESCALATION_KEYS = {"id", "kind", "status", "reason", "due_at"}

# Measured with test_post_costs_the_same_few_queries_with_5_or_60_policies, for a post with a ticket:
# the token (with the user and its role), the customer upsert, the ticket lookup, one UNION ALL read of
# repeat counts, budgets, perks and statistics, the incident insert (ON CONFLICT, no savepoint), the offer
# set and its offers in one statement, and the savepoint pair the test's transaction makes of the atomic
# block. On SQLite the count also has a policy revision read, the "did the customer exist" question and a
# second insert.
POST_QUERIES_OBSERVED = {"postgresql": 8, "sqlite": 11}
POST_QUERIES_MAX = POST_QUERIES_OBSERVED[connection.vendor] + 1


# --- Helpers ---------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def example_body() -> dict[str, Any]:
    """The README's example request ("Asking for options") with every field filled in; occurred_at is a
    day ago, so it is neither in the future nor too old whatever today is."""
    return {
        "customer": {
            "external_id": "C-1001",
            "name": "Linda Park",
            "email": "linda@example.com",
            "tier": "gold",
            "lifetime_value": "5400.00",
            "interests": ["sports", "cooking"],
        },
        "incident": {
            "external_ref": "TCK-42",
            "category": "wrong_shipping_method",
            "severity": 3,
            "fault": "company",
            "correctable": True,
            "order_value": "120.00",
            "currency": "USD",
            "description": "Second order shipped collect instead of prepaid",
            "occurred_at": iso(timezone.now() - timedelta(days=1)),
        },
    }


def body(external_id: str = "C-1", *, customer: dict[str, Any] | None = None, **incident: Any) -> dict[str, Any]:
    """A small valid request: a standard customer, a severity-3 late delivery of 80.00."""
    return {
        "customer": {"external_id": external_id, **(customer or {})},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00", **incident},
    }


def post(client: Any, data: Any, *, explain: bool = False, **extra: Any) -> Any:
    return client.post(URL + ("?explain=true" if explain else ""), data, format="json", **extra)


def created(client: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
    response = post(client, data, **kwargs)
    assert response.status_code == 201, response.content
    return response.json()


def detail_url(offer_set_id: str) -> str:
    return f"{URL}{offer_set_id}/"


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


def options_by(data: dict[str, Any], *, policy: str) -> list[dict[str, Any]]:
    return [o for o in data["options"] if o["policy"]["name"] == policy]


@pytest.fixture
def agent(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


# --- 201: the documented shape ---------------------------------------------------------------


def test_create_returns_201_with_exactly_the_documented_shape(demo_pack: None, agent: Any) -> None:
    response = post(agent, example_body())

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == TOP_KEYS
    assert str(uuid.UUID(data["id"])) == data["id"]
    assert parse(data["expires_at"]) - parse(data["created_at"]) == timedelta(minutes=60)
    assert abs(parse(data["created_at"]) - timezone.now()) < timedelta(minutes=1)
    assert data["customer"] == {
        "external_id": "C-1001",
        "name": "Linda Park",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "interests": ["sports", "cooking"],
    }
    incident = data["incident"]
    assert set(incident) == INCIDENT_KEYS
    assert isinstance(incident["id"], int)
    assert {k: v for k, v in incident.items() if k != "id"} == {
        "external_ref": "TCK-42",
        "category": "wrong_shipping_method",
        "severity": 3,
        "fault": "company",
        "correctable": True,
        "order_value": "120.00",
        "currency": "USD",
        "repeat_count": 1,
        "same_category_repeat_count": 1,
    }
    assert data["escalation"] is None
    assert data["outcome"] is None


def test_options_are_labelled_in_rank_order_with_money_as_strings(demo_pack: None, agent: Any) -> None:
    options = created(agent, example_body())["options"]

    assert [o["label"] for o in options] == ["a", "b", "c"]
    scores = [o["score"] for o in options]
    assert scores == sorted(scores, reverse=True)
    assert len({o["kind"] for o in options}) == 3  # the pack gives many kinds here: three distinct ones
    schema_fields = set(OptionSerializer().fields)
    for option in options:
        assert set(option) >= OPTION_KEYS, option
        assert set(option) <= schema_fields, "an option key the OpenAPI schema does not describe"
        assert option["kind"] in OfferKind.values
        assert option["title"]
        assert option["message"]
        assert isinstance(option["value"], str)
        assert MONEY.match(option["value"])
        assert option["unit"] in {"percent", "amount"}
        assert MONEY.match(option["estimated_cost"])
        assert option["currency"] == "USD"
        assert option["requires_approval"] is False  # all cost less than AGENT_APPROVAL_LIMIT
        assert set(option["policy"]) == {"id", "name", "version"}
        policy = Policy.objects.get(pk=option["policy"]["id"])
        assert (option["policy"]["name"], option["policy"]["version"]) == (policy.name, policy.version)
        assert isinstance(option["score"], float)
        assert {"propensity", "priority_weight", "value"} <= set(option["score_breakdown"])
        assert math.prod(option["score_breakdown"].values()) == pytest.approx(option["score"], rel=1e-4)
        assert option["reasons"]
        assert all(isinstance(reason, str) and reason for reason in option["reasons"])


def test_defaults_apply_to_fields_left_out(demo_pack: None, agent: Any) -> None:
    data = created(
        agent, {"customer": {"external_id": "C-min"}, "incident": {"category": "late_delivery", "severity": 2}}
    )

    assert data["customer"] == {
        "external_id": "C-min",
        "name": "",
        "tier": "standard",
        "lifetime_value": "0.00",
        "interests": [],
    }
    incident = data["incident"]
    assert (incident["external_ref"], incident["fault"], incident["correctable"]) == (None, "company", True)
    assert (incident["order_value"], incident["currency"]) == ("0.00", settings.DEFAULT_CURRENCY)
    stored = Incident.objects.get(pk=incident["id"])
    assert abs(stored.occurred_at - parse(data["created_at"])) < timedelta(seconds=5)  # occurred_at: now
    assert data["options"]  # the apology policy matches every incident


def test_detail_returns_the_same_body_as_the_post(demo_pack: None, agent: Any) -> None:
    data = created(agent, example_body())

    response = agent.get(detail_url(data["id"]))

    assert response.status_code == 200
    assert response.json() == data


@pytest.mark.parametrize(
    ("change", "section"),
    [
        pytest.param({"external_id": "X" * 64}, "customer", id="external_id-64-chars"),
        pytest.param({"interests": [f"interest-{n}" for n in range(20)]}, "customer", id="20-interests"),
        pytest.param({"lifetime_value": "0"}, "customer", id="lifetime_value-0"),
        pytest.param({"tier": "platinum"}, "customer", id="tier-platinum"),
        pytest.param({"severity": 1}, "incident", id="severity-1"),
        pytest.param({"severity": 5, "correctable": True}, "incident", id="severity-5"),
        pytest.param({"fault": "third_party"}, "incident", id="fault-third_party"),
        pytest.param({"order_value": "0"}, "incident", id="order_value-0"),
        pytest.param({"currency": "usd"}, "incident", id="currency-lowercase"),
        pytest.param({"description": "x" * 2000}, "incident", id="description-2000-chars"),
    ],
)
def test_inputs_at_the_limits_are_accepted(demo_pack: None, agent: Any, change: dict, section: str) -> None:
    data = example_body()
    data[section].update(change)

    assert post(agent, data).status_code == 201


# --- 400: every case of the validation table writes nothing ---------------------------------

DELETE = object()
FUTURE = object()


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        pytest.param("customer", "external_id", DELETE, id="external_id-missing"),
        pytest.param("customer", "external_id", "X" * 65, id="external_id-65-chars"),
        pytest.param("customer", "external_id", "", id="external_id-empty"),
        pytest.param("customer", "tier", "diamond", id="tier-unknown"),
        pytest.param("customer", "lifetime_value", "-0.01", id="lifetime_value-negative"),
        pytest.param("customer", "interests", [f"interest-{n}" for n in range(21)], id="21-interests"),
        pytest.param("customer", "interests", ["sports", "ice hockey!"], id="interest-not-a-slug"),
        pytest.param("incident", "category", DELETE, id="category-missing"),
        pytest.param("incident", "severity", DELETE, id="severity-missing"),
        pytest.param("incident", "severity", 0, id="severity-0"),
        pytest.param("incident", "severity", 6, id="severity-6"),
        pytest.param("incident", "severity", "high", id="severity-high"),
        pytest.param("incident", "fault", "nobody", id="fault-unknown"),
        pytest.param("incident", "correctable", "maybe", id="correctable-maybe"),
        pytest.param("incident", "order_value", "-1.00", id="order_value-negative"),
        pytest.param("incident", "currency", "EUR", id="currency-not-default"),
        pytest.param("incident", "description", "x" * 2001, id="description-2001-chars"),
        pytest.param("incident", "occurred_at", FUTURE, id="occurred_at-in-the-future"),
    ],
)
def test_invalid_field_is_400_under_its_section_and_writes_nothing(
    demo_pack: None, agent: Any, settings: Any, section: str, field: str, value: Any
) -> None:
    settings.DEFAULT_CURRENCY = "USD"
    created(agent, example_body())  # the customer exists: a 400 must not update it either
    before = row_counts()
    data = example_body()
    data["customer"]["name"] = "Someone Else"
    data["incident"]["external_ref"] = "TCK-43"
    if value is DELETE:
        del data[section][field]
    else:
        data[section][field] = iso(timezone.now() + timedelta(hours=1)) if value is FUTURE else value

    response = post(agent, data)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    errors = response.json()
    assert list(errors) == [section], errors
    assert list(errors[section]) == [field], errors
    assert errors[section][field]
    assert row_counts() == before
    assert Customer.objects.get(external_id="C-1001").name == "Linda Park"


def test_unknown_category_is_400_listing_the_valid_slugs(demo_pack: None, agent: Any) -> None:
    before = row_counts()

    response = post(agent, body(category="teleport_failure"))

    assert response.status_code == 400
    message = response.json()["incident"]["category"][0]
    assert "teleport_failure" in message
    active = list(Category.objects.filter(active=True).values_list("slug", flat=True))
    assert len(active) == 11
    assert all(slug in message for slug in active), message
    assert row_counts() == before


def test_inactive_category_is_400_and_no_longer_listed(
    demo_pack: None, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    created(agent, body(category="out_of_stock"))  # builds the index while the category is active
    with django_capture_on_commit_callbacks(execute=True):
        category = Category.objects.get(slug="out_of_stock")
        category.active = False
        category.save()
    before = row_counts()

    response = post(agent, body(category="out_of_stock"))

    assert response.status_code == 400
    message = response.json()["incident"]["category"][0]
    assert "late_delivery" in message
    assert "out_of_stock" not in message.split("valid categories:")[1]
    assert row_counts() == before


def test_malformed_json_is_a_400_json_error_and_writes_nothing(demo_pack: None, agent: Any) -> None:
    before = row_counts()

    response = agent.post(URL, '{"customer": {"external_id": "C-1"', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"]
    assert row_counts() == before


@pytest.mark.parametrize("payload", [[body()], "just a string", None], ids=["list", "string", "null"])
def test_body_that_is_not_an_object_is_400_and_writes_nothing(demo_pack: None, agent: Any, payload: Any) -> None:
    before = row_counts()

    response = post(agent, payload)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)
    assert row_counts() == before


def test_section_that_is_not_an_object_is_400_under_its_name(demo_pack: None, agent: Any) -> None:
    response = post(agent, {"customer": ["C-1"], "incident": body()["incident"]})

    assert response.status_code == 400
    assert list(response.json()) == ["customer"]
    assert not Customer.objects.exists()


# --- Customer upsert ----------------------------------------------------------------------


def test_customer_fields_left_out_keep_their_stored_values(demo_pack: None, agent: Any) -> None:
    created(agent, example_body())

    data = created(agent, body("C-1001"))
    assert data["customer"] == {
        "external_id": "C-1001",
        "name": "Linda Park",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "interests": ["sports", "cooking"],
    }
    stored = Customer.objects.get(external_id="C-1001")
    assert stored.email == "linda@example.com"
    assert Customer.objects.count() == 1


def test_customer_fields_given_again_are_updated_and_only_those(demo_pack: None, agent: Any) -> None:
    created(agent, example_body())

    data = created(agent, body("C-1001", customer={"tier": "platinum", "interests": []}))

    assert data["customer"]["tier"] == "platinum"
    assert data["customer"]["interests"] == []
    assert data["customer"]["name"] == "Linda Park"
    assert data["customer"]["lifetime_value"] == "5400.00"


def test_two_posts_for_the_same_new_customer_make_one_customer(demo_pack: None, client_for: Any) -> None:
    first = created(client_for("agent", "agent-a"), body("C-new", customer={"name": "Ada"}))
    second = created(client_for("agent", "agent-b"), body("C-new", customer={"name": "Ada"}))

    assert Customer.objects.filter(external_id="C-new").count() == 1
    assert first["customer"] == second["customer"]
    assert second["incident"]["repeat_count"] == 2


def _post_concurrently(clients: list[Any], bodies: list[dict[str, Any]]) -> list[Any]:
    """Post each body from its own thread (and database connection), released together."""
    barrier = threading.Barrier(len(clients))
    results: list[Any] = [None] * len(clients)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = post(clients[index], bodies[index])
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a request did not finish in 30 seconds"
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_ticket", [False, True], ids=["different-tickets", "same-ticket"])
def test_concurrent_posts_for_the_same_new_customer_both_succeed(
    need_postgres: None, client_for: Any, same_ticket: bool
) -> None:
    # PostgreSQL: SQLite lets one writer in at a time, so the two requests could not overlap and the
    # test would prove nothing.
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO(), stderr=io.StringIO())
    clients = [client_for("agent", "agent-a"), client_for("agent", "agent-b")]

    # One occurred_at for both: with the default (each request's own clock reading) the request that read
    # the clock first may commit second and, counting only incidents up to its own time, miss the other.
    occurred_at = iso(timezone.now() - timedelta(minutes=1))
    for round_ in range(5):  # several rounds, so at least some requests really overlap
        external_id = f"C-race-{round_}"
        refs = ["T-1", "T-1"] if same_ticket else ["T-1", "T-2"]
        bodies = [body(external_id, external_ref=ref, occurred_at=occurred_at) for ref in refs]
        results = _post_concurrently(clients, bodies)

        assert [getattr(r, "status_code", r) for r in results] == [201, 201]
        data = [r.json() for r in results]
        assert Customer.objects.filter(external_id=external_id).count() == 1
        assert data[0]["customer"] == data[1]["customer"]
        incidents = Incident.objects.filter(customer__external_id=external_id)
        if same_ticket:
            assert data[0]["incident"]["id"] == data[1]["incident"]["id"]
            assert incidents.count() == 1
            assert [d["incident"]["repeat_count"] for d in data] == [1, 1]
        else:
            assert incidents.count() == 2
            assert sorted(d["incident"]["repeat_count"] for d in data) == [1, 2]


# --- Incidents: external_ref and repeat counts ------------------------------------------------


def test_same_customer_and_ticket_reuses_the_incident_without_counting_a_repeat(demo_pack: None, agent: Any) -> None:
    first = created(agent, body(external_ref="TCK-1"))
    second = created(agent, body(external_ref="TCK-1"))

    assert second["incident"]["id"] == first["incident"]["id"]
    assert (second["incident"]["repeat_count"], second["incident"]["same_category_repeat_count"]) == (1, 1)
    assert second["id"] != first["id"]  # a new offer set for the same incident
    assert Incident.objects.count() == 1


def test_the_same_ticket_reference_of_another_customer_is_another_incident(demo_pack: None, agent: Any) -> None:
    first = created(agent, body("C-1", external_ref="TCK-1"))
    second = created(agent, body("C-2", external_ref="TCK-1"))

    assert second["incident"]["id"] != first["incident"]["id"]
    assert second["incident"]["repeat_count"] == 1


def test_new_tickets_count_repeats_overall_and_per_category(demo_pack: None, agent: Any) -> None:
    counts = []
    for ref, category in [("T-1", "late_delivery"), ("T-2", "late_delivery"), ("T-3", "wrong_item")]:
        incident = created(agent, body(external_ref=ref, category=category))["incident"]
        counts.append((incident["repeat_count"], incident["same_category_repeat_count"]))

    assert counts == [(1, 1), (2, 2), (3, 1)]


def test_incidents_without_a_ticket_reference_are_each_new(demo_pack: None, agent: Any) -> None:
    created(agent, body())
    incident = created(agent, body())["incident"]

    assert (incident["repeat_count"], incident["same_category_repeat_count"]) == (2, 2)
    assert Incident.objects.count() == 2


def test_incidents_outside_the_90_day_window_are_not_counted(demo_pack: None, agent: Any) -> None:
    now = timezone.now()
    created(agent, body(external_ref="T-old", occurred_at=iso(now - timedelta(days=91))))
    incident = created(agent, body(external_ref="T-now"))["incident"]
    assert (incident["repeat_count"], incident["same_category_repeat_count"]) == (1, 1)

    created(agent, body(external_ref="T-recent", occurred_at=iso(now - timedelta(days=89))))
    incident = created(agent, body(external_ref="T-later"))["incident"]
    assert (incident["repeat_count"], incident["same_category_repeat_count"]) == (3, 3)


def test_reposting_a_ticket_without_occurred_at_keeps_when_it_happened(demo_pack: None, agent: Any) -> None:
    long_ago = timezone.now() - timedelta(days=120)
    created(agent, body(external_ref="T-old", occurred_at=iso(long_ago)))
    created(agent, body(external_ref="T-old"))  # the agent asks again about the same old ticket

    assert Incident.objects.get(external_ref="T-old").occurred_at == long_ago
    incident = created(agent, body(external_ref="T-new"))["incident"]
    assert incident["repeat_count"] == 1  # the 120-day-old incident is outside the window


# --- The demo pack's scenarios ------------------------------------------------------------------


def test_the_same_mistake_twice_ranks_a_more_generous_option_first(demo_pack: None, agent: Any) -> None:
    first = created(agent, body(external_ref="T-1"))
    second = created(agent, body(external_ref="T-2"))

    assert second["incident"]["same_category_repeat_count"] == 2
    assert first["options"][0]["policy"]["name"] != "Repeat mistake"
    assert second["options"][0]["policy"]["name"] == "Repeat mistake"
    assert Decimal(second["options"][0]["estimated_cost"]) > Decimal(first["options"][0]["estimated_cost"])
    assert any("same mistake twice" in reason for reason in second["options"][0]["reasons"])


def test_a_sports_fan_is_offered_the_sports_perk(demo_pack: None, agent: Any) -> None:
    data = created(agent, body(customer={"interests": ["sports"]}))

    perks = [o for o in data["options"] if o["kind"] == OfferKind.PERSONALIZED_PERK]
    assert len(perks) == 1
    assert perks[0]["title"] == "On us: a month of Premium Sports Pass"
    assert perks[0]["estimated_cost"] == "12.00"
    assert perks[0]["policy"]["name"] == "Personalized perk"
    assert any("sports" in reason for reason in perks[0]["reasons"])


def test_a_customer_without_interests_gets_no_perk(demo_pack: None, agent: Any) -> None:
    data = created(agent, body())

    assert OfferKind.PERSONALIZED_PERK not in {o["kind"] for o in data["options"]}


def test_a_customer_fault_incident_still_gets_options_including_goodwill(demo_pack: None, agent: Any) -> None:
    data = created(agent, body(category="customer_error", fault="customer"))

    assert len(data["options"]) == 3
    assert options_by(data, policy="Goodwill when the customer erred")


def test_a_severe_uncorrectable_incident_opens_an_escalation_reused_for_the_same_ticket(
    demo_pack: None, agent: Any
) -> None:
    first = created(agent, body(external_ref="T-5", severity=5, correctable=False))

    escalation = first["escalation"]
    assert set(escalation) == ESCALATION_KEYS
    assert isinstance(escalation["id"], int)
    assert (escalation["kind"], escalation["status"]) == ("senior_manager", "open")
    assert "Senior manager escalation" in escalation["reason"]
    due = parse(escalation["due_at"]) - parse(first["created_at"])
    assert due == timedelta(hours=settings.ESCALATION_SLA_HOURS)
    assert first["options"][0]["kind"] == OfferKind.ESCALATION

    second = created(agent, body(external_ref="T-5", severity=5, correctable=False))

    assert second["escalation"] == escalation
    assert Escalation.objects.count() == 1


def test_a_correctable_or_less_severe_incident_opens_no_escalation(demo_pack: None, agent: Any) -> None:
    assert created(agent, body("C-1", severity=5, correctable=True))["escalation"] is None
    assert created(agent, body("C-2", severity=4, correctable=False))["escalation"] is None
    assert not Escalation.objects.exists()


# --- ?explain=true, budgets ---------------------------------------------------------------------


def test_explain_names_the_first_failed_condition(demo_pack: None, agent: Any) -> None:
    data = created(agent, body(), explain=True)

    # Entries about a policy as a whole (v1), and entries about one offer of a policy that applied.
    entries = [entry for entry in data["not_offered"] if "offer" not in entry]
    per_offer = [entry for entry in data["not_offered"] if "offer" in entry]
    assert all(set(entry) == {"policy", "reason"} and set(entry["policy"]) == {"id", "name"} for entry in entries)
    assert all(set(e) == {"policy", "offer", "reason"} and set(e["offer"]) == {"kind", "title"} for e in per_offer)
    reasons = {entry["policy"]["name"]: entry["reason"] for entry in entries}
    assert reasons["Senior manager escalation"] == "severity 3 is below severity_min 5"
    assert reasons["Repeat mistake"] == "same_category_repeat_count 1 is below min_same_category_repeat_count 2"
    shown = {o["policy"]["id"] for o in data["options"]}
    assert not shown & {entry["policy"]["id"] for entry in entries}


@pytest.mark.parametrize("query", ["", "?explain=false", "?explain=0"])
def test_without_explain_there_is_no_not_offered(demo_pack: None, agent: Any, query: str) -> None:
    response = agent.post(URL + query, body(), format="json")

    assert response.status_code == 201
    assert "not_offered" not in response.json()


def test_explain_accounts_for_every_active_policy(demo_pack: None, agent: Any) -> None:
    data = created(agent, body(), explain=True)

    accounted = {o["policy"]["id"] for o in data["options"]} | {e["policy"]["id"] for e in data["not_offered"]}
    assert accounted == set(Policy.objects.filter(active=True).values_list("id", flat=True))
    reasons = {entry["policy"]["name"]: entry["reason"] for entry in data["not_offered"]}
    assert reasons["Billing error refund"] == "category 'late delivery' is not covered"


def test_explain_names_the_monthly_budget_that_excluded_a_policy(demo_pack: None, agent: Any) -> None:
    policy = Policy.objects.get(slug="wrong-shipping-method-fix")
    assert policy.monthly_cap == Decimal("2500.00")
    PolicyMonthSpend.objects.create(policy=policy, month=month_start(timezone.now()), spent=Decimal("2495.00"))

    data = created(agent, body(category="wrong_shipping_method"), explain=True)

    assert not options_by(data, policy="Wrong shipping method")
    reasons = {entry["policy"]["name"]: entry["reason"] for entry in data["not_offered"]}
    assert reasons["Wrong shipping method"].startswith("monthly budget has 5.00 left")


def test_last_months_spending_does_not_exclude_a_policy(demo_pack: None, agent: Any) -> None:
    policy = Policy.objects.get(slug="wrong-shipping-method-fix")
    last_month = (month_start(timezone.now()) - timedelta(days=1)).replace(day=1)
    PolicyMonthSpend.objects.create(policy=policy, month=last_month, spent=Decimal("2500.00"))

    data = created(agent, body(category="wrong_shipping_method"))

    assert options_by(data, policy="Wrong shipping method")


def test_options_are_empty_but_201_when_every_budget_is_spent(db: None, agent: Any) -> None:
    category = CategoryFactory(slug="late_delivery")
    policy = PolicyFactory(categories=[category], monthly_cap=Decimal("100.00"))
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))
    PolicyMonthSpend.objects.create(policy=policy, month=month_start(timezone.now()), spent=Decimal("100.00"))

    response = post(agent, body(), explain=True)

    assert response.status_code == 201
    data = response.json()
    assert data["options"] == []
    assert data["escalation"] is None
    assert data["not_offered"] == [
        {
            "policy": {"id": policy.pk, "name": policy.name},
            "offer": {"kind": "fixed_credit", "title": "10.00 USD credit"},  # as it would have read
            "reason": "monthly budget has 0.00 left, fixed_credit costs 10.00",
        },
        {
            "policy": {"id": policy.pk, "name": policy.name},
            "reason": "monthly budget has 0.00 left, fixed_credit costs 10.00",
        },
    ]
    assert OfferSet.objects.count() == 1
    assert not Offer.objects.exists()


# --- Permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "list", "detail"])
def test_anonymous_and_bad_tokens_are_401(demo_pack: None, api_client: Any, method: str) -> None:
    target = detail_url(str(uuid.uuid4())) if method == "detail" else URL
    for credentials in ({}, {"HTTP_AUTHORIZATION": "Token not-a-real-token"}):
        api_client.credentials(**credentials)
        response = api_client.post(target, body(), format="json") if method == "post" else api_client.get(target)

        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert set(response.json()) == {"detail", "code"}
    assert not Customer.objects.exists()


def test_analysts_may_neither_create_nor_read_offer_sets(demo_pack: None, agent: Any, client_for: Any) -> None:
    offer_set = created(agent, body())
    analyst = client_for("analyst", "analyst-1")
    before = row_counts()

    responses = [post(analyst, body("C-2")), analyst.get(URL), analyst.get(detail_url(offer_set["id"]))]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert all(r.json()["code"] == "permission_denied" for r in responses)
    assert row_counts() == before


def test_an_agent_sees_only_their_own_offer_sets(demo_pack: None, client_for: Any) -> None:
    alice, bob = client_for("agent", "alice"), client_for("agent", "bob")
    mine = created(alice, body("C-1"))
    theirs = created(bob, body("C-2"))

    assert alice.get(detail_url(mine["id"])).status_code == 200
    response = alice.get(detail_url(theirs["id"]))
    assert response.status_code == 404
    unknown = alice.get(detail_url(str(uuid.uuid4())))
    assert response.json() == unknown.json()  # the same answer as for an id that does not exist
    listed = alice.get(URL).json()
    assert [item["id"] for item in listed["results"]] == [mine["id"]]
    assert listed["count"] == 1


def test_a_manager_sees_every_offer_set(demo_pack: None, client_for: Any) -> None:
    alice, bob = client_for("agent", "alice"), client_for("agent", "bob")
    manager = client_for("manager", "boss")
    sets = [created(alice, body("C-1")), created(bob, body("C-2")), created(manager, body("C-3"))]

    assert {item["id"] for item in manager.get(URL).json()["results"]} == {s["id"] for s in sets}
    for offer_set in sets:
        assert manager.get(detail_url(offer_set["id"])).json() == offer_set


@pytest.mark.parametrize("offer_set_id", ["0d4f7a52-3b1e-4c8a-9f60-2e5d1c7b8a90", "not-a-uuid", "12345"])
def test_unknown_or_malformed_id_is_a_json_404(demo_pack: None, client_for: Any, offer_set_id: str) -> None:
    response = client_for("manager").get(detail_url(offer_set_id))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail", "code"}


def test_unknown_id_has_the_not_found_code_like_a_malformed_one(demo_pack: None, client_for: Any) -> None:
    manager = client_for("manager")

    unknown = manager.get(detail_url(str(uuid.uuid4())))
    malformed = manager.get(detail_url("not-a-uuid"))

    assert malformed.json()["code"] == "not_found"
    assert unknown.json()["code"] == "not_found"


# --- Idempotency-Key -------------------------------------------------------------------------------


def test_same_key_and_body_returns_the_same_offer_set_and_creates_nothing(demo_pack: None, agent: Any) -> None:
    data = example_body()
    first = post(agent, data, HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 201
    before = row_counts()

    again = post(agent, copy.deepcopy(data), HTTP_IDEMPOTENCY_KEY="key-1")

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()
    assert row_counts() == before


def test_same_key_with_the_body_keys_in_another_order_is_the_same_request(demo_pack: None, agent: Any) -> None:
    data = body(external_ref="T-1", customer={"name": "Ada", "tier": "gold"})
    first = created(agent, data, HTTP_IDEMPOTENCY_KEY="key-1")
    reordered = {
        "incident": dict(reversed(list(data["incident"].items()))),
        "customer": dict(reversed(list(data["customer"].items()))),
    }

    assert created(agent, reordered, HTTP_IDEMPOTENCY_KEY="key-1")["id"] == first["id"]
    assert OfferSet.objects.count() == 1


def test_same_key_with_another_body_is_409(demo_pack: None, agent: Any) -> None:
    created(agent, body(severity=3), HTTP_IDEMPOTENCY_KEY="key-1")
    before = row_counts()

    response = post(agent, body(severity=4), HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["detail"]
    assert row_counts() == before


def test_the_same_key_of_another_user_is_a_separate_offer_set(demo_pack: None, client_for: Any) -> None:
    alice, bob = client_for("agent", "alice"), client_for("agent", "bob")
    mine = created(alice, body(), HTTP_IDEMPOTENCY_KEY="key-1")

    theirs = created(bob, body(), HTTP_IDEMPOTENCY_KEY="key-1")

    assert theirs["id"] != mine["id"]
    assert OfferSet.objects.count() == 2
    assert bob.get(detail_url(theirs["id"])).status_code == 200


def test_a_key_of_256_characters_is_400_and_255_are_fine(demo_pack: None, agent: Any) -> None:
    before = row_counts()

    response = post(agent, body(), HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert row_counts() == before
    assert post(agent, body(), HTTP_IDEMPOTENCY_KEY="k" * 255).status_code == 201


def test_a_rejected_request_does_not_use_up_its_key(demo_pack: None, agent: Any) -> None:
    assert post(agent, body(severity=9), HTTP_IDEMPOTENCY_KEY="key-1").status_code == 400
    assert not IdempotencyRecord.objects.exists()

    assert post(agent, body(severity=3), HTTP_IDEMPOTENCY_KEY="key-1").status_code == 201


# --- GET list: order, pagination, filters ----------------------------------------------------------


def test_list_is_newest_first_and_shows_each_set_as_its_detail(demo_pack: None, agent: Any) -> None:
    sets = [created(agent, body(f"C-{n}")) for n in range(3)]

    data = agent.get(URL).json()

    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 3
    assert data["results"] == list(reversed(sets))


def test_list_is_paginated_by_page_and_page_size(demo_pack: None, agent: Any) -> None:
    ids = [created(agent, body(f"C-{n}"))["id"] for n in range(3)]

    page_one = agent.get(URL, {"page_size": 2}).json()
    assert page_one["count"] == 3
    assert [r["id"] for r in page_one["results"]] == ids[:0:-1]
    assert page_one["previous"] is None
    assert "page=2" in page_one["next"]

    page_two = agent.get(page_one["next"]).json()
    assert [r["id"] for r in page_two["results"]] == ids[:1]
    assert page_two["next"] is None
    assert page_two["previous"] is not None

    assert agent.get(URL, {"page": 9}).status_code == 404


def test_page_size_defaults_to_25_and_stops_at_100(demo_pack: None, agent: Any) -> None:
    template = created(agent, body())
    offer_set = OfferSet.objects.get(pk=template["id"])
    now = timezone.now()
    OfferSet.objects.bulk_create(
        [
            OfferSet(
                created_by=offer_set.created_by,
                customer=offer_set.customer,
                incident=offer_set.incident,
                policy_revision=offer_set.policy_revision,
                created_at=now - timedelta(seconds=n + 1),
                expires_at=now,
            )
            for n in range(110)
        ]
    )

    assert len(agent.get(URL).json()["results"]) == 25
    assert len(agent.get(URL, {"page_size": 100}).json()["results"]) == 100
    capped = agent.get(URL, {"page_size": 1000}).json()
    assert capped["count"] == 111
    assert len(capped["results"]) == 100


def test_list_filters_on_customer_category_since_and_until(demo_pack: None, agent: Any) -> None:
    late = created(agent, body("C-1", category="late_delivery"))
    wrong = created(agent, body("C-1", category="wrong_item"))
    other = created(agent, body("C-2", category="late_delivery"))
    days = {late["id"]: date(2026, 1, 10), wrong["id"]: date(2026, 1, 20), other["id"]: date(2026, 1, 31)}
    for offer_set_id, day in days.items():
        moment = datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)
        OfferSet.objects.filter(pk=offer_set_id).update(created_at=moment)

    def listed(**params: str) -> list[str]:
        response = agent.get(URL, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert listed(customer="C-1") == [wrong["id"], late["id"]]
    assert listed(category="late_delivery") == [other["id"], late["id"]]
    assert listed(customer="C-1", category="late_delivery") == [late["id"]]
    assert listed(since="2026-01-20") == [other["id"], wrong["id"]]  # inclusive
    assert listed(until="2026-01-20") == [wrong["id"], late["id"]]  # inclusive, the whole day
    assert listed(since="2026-01-11", until="2026-01-30") == [wrong["id"]]
    assert listed(customer="C-unknown") == []


@pytest.mark.parametrize("zone", ["Europe/Paris", "Pacific/Kiritimati", "America/New_York", "UTC"])
@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01"},
        {"until": "9999-12-30"},
        {"until": "9999-12-31"},
        {"since": "0001-01-01", "until": "9999-12-31"},
    ],
)
def test_list_from_the_first_day_or_to_the_last_lists_everything(
    demo_pack: None, agent: Any, settings: Any, zone: str, params: dict[str, str]
) -> None:
    """The first midnight of year 1 east of UTC is in year 0, which no datetime can hold: no bound, not a 500."""
    settings.TIME_ZONE = zone
    made = created(agent, body("C-1"))

    response = agent.get(URL, params)

    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [made["id"]]


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"until": "2026-13-01"}])
def test_list_with_a_bad_date_is_400(demo_pack: None, agent: Any, params: dict[str, str]) -> None:
    response = agent.get(URL, params)

    assert response.status_code == 400
    assert list(response.json()) == list(params)


def test_list_costs_the_same_queries_for_3_or_12_offer_sets(demo_pack: None, client_for: Any) -> None:
    manager = client_for("manager", "boss")
    counts = []
    for total in (3, 12):
        while OfferSet.objects.count() < total:
            created(manager, body(f"C-{OfferSet.objects.count()}", severity=5, correctable=False))
        with CaptureQueriesContext(connection) as queries:
            assert manager.get(URL).json()["count"] == total
        counts.append(len(queries))

    assert counts[0] == counts[1], counts


# --- Queries per POST ----------------------------------------------------------------------------


def _policies_in(category: Category, count: int, start: int) -> None:
    """``count`` capped policies for the category, each with a credit and free shipping."""
    for n in range(start, start + count):
        policy = PolicyFactory(
            slug=f"bulk-{n}",
            name=f"Bulk policy {n}",
            priority=n % 100,
            categories=[category],
            monthly_cap=Decimal("5000.00"),
            per_customer_cap_30d=Decimal("200.00"),
        )
        OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal(5 + n % 20), order=0)
        OfferTemplateFactory(policy=policy, kind=OfferKind.FREE_SHIPPING, value=Decimal("9.95"), order=1)


def test_post_costs_the_same_few_queries_with_5_or_60_policies(
    db: None, agent: Any, django_assert_max_num_queries: Any
) -> None:
    category = CategoryFactory(slug="late_delivery")
    PerkFactory(tags=["sports"])
    perk_policy = PolicyFactory(slug="perk", categories=[category])
    OfferTemplateFactory(policy=perk_policy, kind=OfferKind.PERSONALIZED_PERK, title="{perk_name}", value=None)
    _policies_in(category, 4, start=0)
    sports_fan = {"interests": ["sports"]}

    counts: dict[int, int] = {}
    for total in (5, 60):
        if total == 60:
            _policies_in(category, 55, start=4)
        assert Policy.objects.count() == total
        created(agent, body("C-q", customer=sports_fan, external_ref=f"warm-{total}"))  # (re)builds the index
        with CaptureQueriesContext(connection) as queries:
            data = created(agent, body("C-q", customer=sports_fan, external_ref=f"T-{total}"))
        assert len(data["options"]) == 3
        counts[total] = len(queries)
        sql = "\n".join(q["sql"][:120] for q in queries.captured_queries)
        assert counts[total] <= POST_QUERIES_MAX, sql

    assert counts[5] == counts[60], counts
    with django_assert_max_num_queries(POST_QUERIES_MAX):
        created(agent, body("C-q", customer=sports_fan, external_ref="T-last"))


# --- The policy index follows edits ----------------------------------------------------------------


@pytest.fixture
def one_policy(db: None) -> Policy:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(slug="late-credit", name="Late credit", categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"), order=0)
    policy_version_record(policy=policy)
    return Policy.objects.get(pk=policy.pk)


def test_an_offer_edited_in_the_admin_applies_to_the_next_request(
    one_policy: Policy, agent: Any, admin_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    before = created(agent, body("C-1"))["options"][0]
    assert (before["value"], before["policy"]["version"]) == ("10.00", 1)

    url = reverse("admin:policies_policy_change", args=[one_policy.pk])
    form = page_form(admin_client.get(url), "policy_form")
    assert form["offers-0-value"] == "10.00"
    form["offers-0-value"] = "12.50"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, form)
    assert response.status_code == 302

    after = created(agent, body("C-2"))["options"][0]
    assert (after["value"], after["estimated_cost"], after["policy"]["version"]) == ("12.50", "12.50", 2)
    assert after["title"] == "12.50 USD credit"


def test_a_category_renamed_applies_to_the_next_request(
    one_policy: Policy, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assert "late delivery" in created(agent, body("C-1"))["options"][0]["message"]

    with django_capture_on_commit_callbacks(execute=True):
        category = Category.objects.get(slug="late_delivery")
        category.name = "delayed parcel"
        category.save()

    assert "delayed parcel" in created(agent, body("C-2"))["options"][0]["message"]


def test_a_pack_import_applies_to_the_next_request(
    demo_pack: None, agent: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    before = options_by(created(agent, body("C-1", customer={"interests": ["sports"]})), policy="Personalized perk")
    assert before[0]["estimated_cost"] == "12.00"
    pack = tmp_path / "perk.yaml"
    pack.write_text('perks:\n  - slug: sports-pass-1m\n    name: Sports Pass\n    tags: [sports]\n    cost: "14.00"\n')

    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_policies", str(pack), stdout=io.StringIO(), stderr=io.StringIO())

    assert Perk.objects.get(slug="sports-pass-1m").cost == Decimal("14.00")
    after = options_by(created(agent, body("C-2", customer={"interests": ["sports"]})), policy="Personalized perk")
    assert (after[0]["estimated_cost"], after[0]["title"]) == ("14.00", "On us: Sports Pass")


@pytest.mark.parametrize("category", [5, 5.5, True, ["late_delivery"], {"slug": "late_delivery"}])
def test_a_category_that_is_not_a_slug_string_is_a_400_not_a_crash(client_for: Any, category: Any) -> None:
    from policies.models import Category

    Category.objects.create(slug="late_delivery", name="late delivery")
    body = {"customer": {"external_id": "C-odd"}, "incident": {"category": category, "severity": 3}}
    response = client_for("agent").post("/api/v1/offer-sets/", body, format="json")
    assert response.status_code == 400
    assert "category" in response.json()["incident"]


def test_a_reposted_ticket_does_not_rewrite_what_an_earlier_set_shows(demo_pack: None, agent: Any) -> None:
    first = created(agent, body(external_ref="T-9", severity=2, order_value="50.00", fault="customer"))
    created(agent, body(external_ref="T-9", severity=5))  # defaults for fault and order_value left out

    again = agent.get(f"/api/v1/offer-sets/{first['id']}/").json()["incident"]
    assert (again["severity"], again["order_value"], again["fault"]) == (2, "50.00", "customer")


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_explain_must_be_a_boolean(demo_pack: None, agent: Any, value: str) -> None:
    response = agent.post(f"/api/v1/offer-sets/?explain={value}", body(), format="json")
    assert response.status_code == 400
    assert "explain" in response.json()


def test_the_same_idempotency_key_with_and_without_explain_is_a_conflict(demo_pack: None, agent: Any) -> None:
    headers = {"HTTP_IDEMPOTENCY_KEY": "explain-or-not"}
    assert agent.post("/api/v1/offer-sets/", body(), format="json", **headers).status_code == 201
    response = agent.post("/api/v1/offer-sets/?explain=true", body(), format="json", **headers)
    assert response.status_code == 409


def test_deeply_nested_json_is_a_400(agent: Any) -> None:
    payload = '{"customer": ' + "[" * 5000 + "]" * 5000 + "}"
    response = agent.post("/api/v1/offer-sets/", payload, content_type="application/json")
    assert response.status_code == 400


def test_an_incident_older_than_the_allowed_age_is_a_400(demo_pack: None, agent: Any) -> None:
    response = agent.post("/api/v1/offer-sets/", body(occurred_at="0001-01-01T00:00:00Z"), format="json")
    assert response.status_code == 400
    assert "occurred_at" in response.json()["incident"]
