"""The ``event`` filter of the reports and the outcome list (API.md, "Proactive recovery": "Reports and the
outcome list filter on `event` (id)"), against hand-computed figures.

Everything goes through the real API, services and job (tasks eager, e-mails in memory) on a frozen clock
(``time_machine``), so every timestamp is where the services put it. The pack: "Credit" gives a 10.00 credit,
"Apology gift" a remedy gift that costs us 3.00 and an option of 6.00 of free shipping; both answer late
deliveries, so every set shows exactly two options, and every incident is owed the gift.

=====  ==========  ===============  ======  ========================================  ==============
who    made by     when (set)       tier    what the customer did (2025-03-05 10:00)  remedy (3.00)
=====  ==========  ===============  ======  ========================================  ==============
E-1    event E1    03-04 10:00      gold    chose the credit (10.00)                  given 03-04
E-2    event E1    03-04 10:00      std     "None of these" (declined)                given 03-04
E-3    event E1    03-04 10:00      std     "Please call me" (an escalation)          given 03-04
F-1    event E2    03-04 10:30      std     chose the credit (10.00)                  given 03-04
F-2    event E2    03-04 10:30      std     nothing                                   given 03-04
S-1    agent-1     03-04 11:00      std     free shipping (6.00), at 03-04 11:01      given 03-04
=====  ==========  ===============  ======  ========================================  ==============

E1 and E2 were posted by manager-1, whose sets they are. Every report runs over 2025-03-01..2025-03-10.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import time_machine
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compensation.models import Escalation, EventCustomer, Offer, Outcome
from compensation.services.events import event_choose, token_of
from policies.models import Category, Policy
from policies.packs import pack_import
from reporting.reports import CSV_HEADER
from tests.reporting.test_outcome_list_api import LIST, csv_rows
from tests.reporting.test_reports_api import (
    AGENTS,
    CATEGORIES,
    KINDS,
    PERIOD,
    POLICIES,
    REPORTS,
    SETS,
    SUMMARY,
    Capture,
    get_ok,
    local,
    rows_by,
)

pytestmark = pytest.mark.django_db

PACK = """
categories:
  - slug: late_delivery
    name: Late delivery
policies:
  - slug: credit
    name: Credit
    priority: 80
    conditions:
      categories: [late_delivery]
    offers:
      - kind: fixed_credit
        title: "A {amount} {currency} credit"
        value: "10.00"
  - slug: apology-gift
    name: Apology gift
    priority: 40
    conditions:
      categories: [late_delivery]
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
EVENTS = "/api/v1/events/"
UNKNOWN = 999_999
ZERO_SUMMARY = {
    "incidents": 0,
    "offer_sets": 0,
    "outcomes": 0,
    "accepted": 0,
    "declined": 0,
    "acceptance_rate": None,
    "total_cost": "0.00",
    "average_cost_per_acceptance": None,
    "remedy_cost": "0.00",
    "average_satisfaction": None,
    "escalations_opened": 0,
    "escalations_resolved": 0,
    "repeat_incident_share": None,
    "median_seconds_to_outcome": None,
}


@dataclass(frozen=True)
class World:
    late: Category
    credit: Policy
    gift: Policy
    e1: int
    e2: int
    sets: dict[str, str]  # customer external_id -> offer set id


def event_post(client: Any, capture: Capture, *, at: datetime, name: str, customers: list[dict[str, Any]]) -> int:
    """An event posted at ``at`` and processed (the job runs eagerly after commit, on the same frozen clock)."""
    body = {"name": name, "category": "late_delivery", "severity": 3, "customers": customers}
    with time_machine.travel(at, tick=False), capture(execute=True):
        response = client.post(EVENTS, body, format="json")
    assert response.status_code == 202, response.content
    event_id = response.json()["id"]
    assert client.get(f"{EVENTS}{event_id}/").json()["status"] == "sent"
    return event_id


def press(capture: Capture, external_id: str, event_id: int, choice: str, *, at: datetime) -> None:
    """The customer presses a button on their page (recorded eagerly, after commit)."""
    row = EventCustomer.objects.get(event_id=event_id, external_id=external_id)
    with time_machine.travel(at, tick=False), capture(execute=True):
        event_choose(token=token_of(row.nonce), choice=choice)


def label_of(offer_set_id: str, policy: Policy) -> str:
    return Offer.objects.get(offer_set_id=offer_set_id, policy=policy).label


@pytest.fixture
def world(db: None, manager: Any, agent1: Any, django_capture_on_commit_callbacks: Capture) -> World:
    capture = django_capture_on_commit_callbacks
    pack_import(document=yaml.safe_load(PACK))
    late = Category.objects.get(slug="late_delivery")
    credit, gift = Policy.objects.get(slug="credit"), Policy.objects.get(slug="apology-gift")
    person = {"name": "Ada Lovelace"}
    e1 = event_post(
        manager,
        capture,
        at=local("2025-03-04", "10:00"),
        name="North warehouse",
        customers=[
            {"external_id": "E-1", "email": "e1@example.com", "tier": "gold", **person},
            {"external_id": "E-2", "email": "e2@example.com", **person},
            {"external_id": "E-3", "email": "e3@example.com", **person},
        ],
    )
    e2 = event_post(
        manager,
        capture,
        at=local("2025-03-04", "10:30"),
        name="South warehouse",
        customers=[
            {"external_id": "F-1", "email": "f1@example.com", **person},
            {"external_id": "F-2", "email": "f2@example.com", **person},
        ],
    )
    sets = {row.external_id: str(row.offer_set_id) for row in EventCustomer.objects.filter(event_id__in=[e1, e2])}
    chosen_at = local("2025-03-05", "10:00")
    press(capture, "E-1", e1, label_of(sets["E-1"], credit), at=chosen_at)
    press(capture, "E-2", e1, "none", at=chosen_at)
    press(capture, "E-3", e1, "call", at=chosen_at)
    press(capture, "F-1", e2, label_of(sets["F-1"], credit), at=chosen_at)

    body = {
        "customer": {"external_id": "S-1", **person},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "50.00"},
    }
    with time_machine.travel(local("2025-03-04", "11:00"), tick=False):
        made = agent1.post(SETS, body, format="json")
    assert made.status_code == 201, made.content
    sets["S-1"] = made.json()["id"]
    with time_machine.travel(local("2025-03-04", "11:01"), tick=False), capture(execute=True):
        chosen = agent1.post(f"{SETS}{sets['S-1']}/outcome/", {"choice": label_of(sets["S-1"], gift)}, format="json")
    assert chosen.status_code == 202, chosen.content

    assert Outcome.objects.count() == 4  # E-1, E-2, F-1, S-1
    assert Escalation.objects.count() == 1  # E-3's call
    return World(late=late, credit=credit, gift=gift, e1=e1, e2=e2, sets=sets)


def summary_of(client: Any, **params: Any) -> dict[str, Any]:
    data = get_ok(client, SUMMARY, {**PERIOD, **params})
    return {key: value for key, value in data.items() if key not in ("since", "until")}


# --- Reports ---------------------------------------------------------------------------------------


def test_the_summary_counts_only_the_events_customers(world: World, analyst: Any) -> None:
    # E1: three incidents and sets; outcomes E-1 (credit 10.00) and E-2 (declined), each chosen a day (86,400 s)
    # after its set was made; three gifts at 3.00; E-3's call.
    assert summary_of(analyst, event=world.e1) == {
        "incidents": 3,
        "offer_sets": 3,
        "outcomes": 2,
        "accepted": 1,
        "declined": 1,
        "acceptance_rate": 0.5,
        "total_cost": "10.00",
        "average_cost_per_acceptance": "10.00",
        "remedy_cost": "9.00",
        "average_satisfaction": None,
        "escalations_opened": 1,
        "escalations_resolved": 0,
        "repeat_incident_share": 0.0,
        "median_seconds_to_outcome": 86400.0,
    }
    # E2: F-1's credit, made at 10:30 and chosen the next day at 10:00 (84,600 s); two gifts.
    assert summary_of(analyst, event=world.e2) == {
        **ZERO_SUMMARY,
        "incidents": 2,
        "offer_sets": 2,
        "outcomes": 1,
        "accepted": 1,
        "acceptance_rate": 1.0,
        "total_cost": "10.00",
        "average_cost_per_acceptance": "10.00",
        "remedy_cost": "6.00",
        "repeat_incident_share": 0.0,
        "median_seconds_to_outcome": 84600.0,
    }
    # Unfiltered, the agent's set counts too: the filter is what left it out.
    everything = summary_of(analyst)
    assert (everything["incidents"], everything["outcomes"], everything["total_cost"]) == (6, 4, "26.00")
    assert everything["remedy_cost"] == "18.00"


@pytest.mark.parametrize("event", [UNKNOWN, 0, -1, 2**63, -(2**63) - 1])
def test_an_id_no_event_has_gives_zeros(world: World, manager: Any, event: int) -> None:
    assert summary_of(manager, event=event) == ZERO_SUMMARY
    for url in (POLICIES, KINDS, CATEGORIES, AGENTS):
        rows = get_ok(manager, url, {**PERIOD, "event": event})
        assert rows, url
        assert all(row["offered"] == row["chosen"] == 0 for row in rows), (url, rows)
        assert all(row["total_cost"] == row["remedy_cost"] == "0.00" for row in rows), (url, rows)
    assert get_ok(manager, LIST, {"event": event})["count"] == 0


def test_the_event_filter_combines_with_the_others(world: World, manager: Any) -> None:
    # Of E1, only E-1 is gold.
    gold = summary_of(manager, event=world.e1, tier="gold")
    assert (gold["incidents"], gold["offer_sets"], gold["outcomes"], gold["accepted"]) == (1, 1, 1, 1)
    assert (gold["remedy_cost"], gold["escalations_opened"]) == ("3.00", 0)
    # Outcomes choosing the gift's option, or declining a set that showed it: E-2's decline.
    by_gift = summary_of(manager, event=world.e1, policy=world.gift.pk)
    assert (by_gift["outcomes"], by_gift["accepted"], by_gift["declined"]) == (1, 0, 1)
    # A period before the events: nothing.
    assert summary_of(manager, event=world.e1, since="2025-03-01", until="2025-03-03") == ZERO_SUMMARY


def test_the_grouped_reports_count_only_the_events_sets(world: World, manager: Any) -> None:
    # E1's recorded sets (E-1's, E-2's) showed both options each; E-1 chose the credit; three gifts.
    params = {**PERIOD, "event": world.e1}
    policies = rows_by(get_ok(manager, POLICIES, params), "policy", "name")
    assert set(policies) == {"Credit", "Apology gift"}
    credit, gift = policies["Credit"], policies["Apology gift"]
    assert (credit["offered"], credit["chosen"], credit["total_cost"], credit["remedy_cost"]) == (2, 1, "10.00", "0.00")
    assert (gift["offered"], gift["chosen"], gift["total_cost"], gift["remedy_cost"]) == (2, 0, "0.00", "9.00")

    kinds = rows_by(get_ok(manager, KINDS, params), "kind")
    assert (kinds["fixed_credit"]["offered"], kinds["fixed_credit"]["chosen"]) == (2, 1)
    assert (kinds["free_shipping"]["offered"], kinds["free_shipping"]["chosen"]) == (2, 0)
    assert kinds["gift"]["remedy_cost"] == "9.00"
    assert sum(row["offered"] for row in kinds.values()) == 4

    (late,) = get_ok(manager, CATEGORIES, params)
    assert late["category"]["slug"] == "late_delivery"
    assert (late["offered"], late["chosen"], late["outcomes"], late["declined"]) == (4, 1, 2, 1)
    assert (late["total_cost"], late["remedy_cost"]) == ("10.00", "9.00")

    agents = rows_by(get_ok(manager, AGENTS, params), "agent", "username")
    mine = agents.pop("manager-1")  # the events' sets are the posting manager's
    assert (mine["offered"], mine["chosen"], mine["outcomes"], mine["declined"]) == (4, 1, 2, 1)
    assert (mine["total_cost"], mine["remedy_cost"]) == ("10.00", "9.00")
    assert agents  # agent-1's S-1 is not the event's
    assert all((row["offered"], row["outcomes"], row["remedy_cost"]) == (0, 0, "0.00") for row in agents.values())


def test_every_report_with_category_tier_and_policy_takes_event(world: World, manager: Any) -> None:
    """Each report answers differently for the two events: the filter is applied, not ignored."""
    for url in REPORTS:
        first = get_ok(manager, url, {**PERIOD, "event": world.e1})
        second = get_ok(manager, url, {**PERIOD, "event": world.e2})
        assert first != second, url


def test_the_event_filter_adds_no_query(world: World, manager: Any) -> None:
    """Each table's filter is a subquery of the same statement, not a lookup of its own."""
    for url in (*REPORTS, LIST):
        with CaptureQueriesContext(connection) as plain:
            assert manager.get(url, PERIOD).status_code == 200
        with CaptureQueriesContext(connection) as filtered:
            assert manager.get(url, {**PERIOD, "event": world.e1}).status_code == 200
        assert len(filtered.captured_queries) == len(plain.captured_queries), url


# --- The outcome list and its CSV --------------------------------------------------------------------


def test_the_outcome_list_filters_on_event(world: World, analyst: Any) -> None:
    listed = get_ok(analyst, LIST, {"event": world.e1})
    assert listed["count"] == 2
    assert {row["offer_set"] for row in listed["results"]} == {world.sets["E-1"], world.sets["E-2"]}
    assert {row["customer"] for row in listed["results"]} == {"E-1", "E-2"}

    listed = get_ok(analyst, LIST, {"event": world.e2, "choice": "declined"})
    assert listed["count"] == 0
    listed = get_ok(analyst, LIST, {"event": world.e2})
    assert [row["customer"] for row in listed["results"]] == ["F-1"]
    assert get_ok(analyst, LIST)["count"] == 4


def test_the_outcome_csv_filters_on_event(world: World, manager: Any) -> None:
    rows = csv_rows(manager.get(LIST, {"format": "csv", "event": world.e1}))
    assert rows[0] == list(CSV_HEADER)
    customer = CSV_HEADER.index("customer")
    assert sorted(row[customer] for row in rows[1:]) == ["E-1", "E-2"]
    assert csv_rows(manager.get(LIST, {"format": "csv", "event": UNKNOWN})) == [list(CSV_HEADER)]


def test_an_empty_event_is_no_filter(world: World, manager: Any) -> None:
    """As an empty ``category`` or ``policy`` is."""
    assert summary_of(manager, event="") == summary_of(manager)
    assert get_ok(manager, LIST, {"event": ""})["count"] == 4


# --- Bad values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "1.5", " ", "1e3", "0x10", "9" * 5000])
def test_an_event_that_is_not_a_whole_number_is_a_400_under_its_name(world: World, manager: Any, value: str) -> None:
    for url in (*REPORTS, LIST, f"{LIST}?format=csv"):
        response = manager.get(url, {"event": value})

        assert response.status_code == 400, (url, value[:20], response.content[:300])
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == {"event"}, body
        assert all(isinstance(message, str) and message for message in body["event"])
