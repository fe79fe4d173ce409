"""The outcome list (README, "Reports and the outcome list": ``GET /api/v1/outcomes/``): rows, order, filters,
pagination,
the CSV export of every row of the filter, and its agreement with the summary report.

Data goes through the real API as in test_reports_api.py, whose helpers and policies this reuses:
Alpha (a 10.00 credit) and Beta (25.00 of free shipping, a coupon) answer late deliveries and damaged
items; Gamma (a 5.00 credit) answers lost parcels.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compensation.models import Coupon, Customer, Outcome
from policies.choices import OfferKind
from reporting.reports import CSV_HEADER
from reporting.serializers import OutcomeRowSerializer
from tests.factories import OfferTemplateFactory, PolicyFactory
from tests.reporting.catalog import Catalog
from tests.reporting.test_reports_api import (
    INVALID,
    PERIOD,
    SUMMARY,
    Capture,
    case,
    get_ok,
    utc,
)

pytestmark = pytest.mark.django_db

LIST = "/api/v1/outcomes/"
ROW_KEYS = set(OutcomeRowSerializer().fields)


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def rows(catalog: Catalog, agent1: Any, agent2: Any, django_capture_on_commit_callbacks: Capture) -> dict[str, Any]:
    """Five recorded outcomes (made R1..R5, recorded R2, R3, R4, R1, then R5 a year earlier) and a pending one:

    R1  agent-1  C-1  standard  late     Alpha      sat 5  60.5 s   recorded 2025-03-02
    R2  agent-1  C-2  gold      late     Beta       sat 3  120 s    recorded 2025-03-05
    R3  agent-2  C-3  standard  damaged  declined   sat 1  30 s     recorded 2025-03-04
    R4  agent-2  C-4  silver    lost     Gamma      -      90 s     recorded 2025-03-03
    R5  agent-1  C-5  standard  late     Alpha      -      10 s     recorded 2024-01-15
    P   agent-1  C-6  standard  late     pending
    """
    c = catalog
    capture = django_capture_on_commit_callbacks
    made = {
        "R1": case(
            agent1, capture, customer="C-1", category=c.late, choose=c.alpha, satisfaction=5,
            created=utc("2025-03-02T10:00:00"), seconds=60.5,
        ),
        "R2": case(
            agent1, capture, customer="C-2", tier="gold", category=c.late, choose=c.beta, satisfaction=3,
            created=utc("2025-03-05T09:00:00"), seconds=120,
        ),
        "R3": case(
            agent2, capture, customer="C-3", category=c.damaged, choose="declined", satisfaction=1,
            created=utc("2025-03-04T11:00:00"), seconds=30,
        ),
        "R4": case(
            agent2, capture, customer="C-4", tier="silver", category=c.lost, choose=c.gamma,
            created=utc("2025-03-03T08:00:00"), seconds=90,
        ),
        "R5": case(
            agent1, capture, customer="C-5", category=c.late, choose=c.alpha,
            created=utc("2024-01-15T12:00:00"), seconds=10,
        ),
        "P": case(
            agent1, capture, customer="C-6", category=c.late, choose=c.alpha, pending=True,
            created=utc("2025-03-06T12:00:00"),
        ),
    }  # fmt: skip
    return {name: Outcome.objects.filter(offer_set_id=s["id"]).first() for name, s in made.items()}


def names(rows: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    by_id = {outcome.pk: name for name, outcome in rows.items() if outcome is not None}
    return [by_id[row["id"]] for row in results]


def listed(client: Any, **params: Any) -> dict[str, Any]:
    return get_ok(client, LIST, params)


@pytest.fixture
def many(catalog: Catalog, agent1: Any, django_capture_on_commit_callbacks: Capture) -> int:
    """28 outcomes, more than one page: 27 late deliveries (Alpha, Beta or declined in turn), 1 damaged item."""
    choices = [catalog.alpha, catalog.beta, "declined"]
    for n in range(28):
        case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"C-{n}",
            category=catalog.damaged if n == 0 else catalog.late,
            choose=choices[n % 3],
            satisfaction=n % 5 + 1 if n % 4 else None,
            created=utc("2025-03-01T00:00:00") + timedelta(hours=n),
            seconds=n + 0.25,
        )
    return 28


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


# --- Rows ----------------------------------------------------------------------------------------


def test_the_list_is_paginated_newest_first_by_recorded_at(rows: dict, analyst: Any) -> None:
    data = listed(analyst)

    assert set(data) == {"count", "next", "previous", "results"}
    assert (data["count"], data["next"], data["previous"]) == (5, None, None)
    assert names(rows, data["results"]) == ["R2", "R3", "R4", "R1", "R5"]  # pending P is no outcome
    assert rows["P"] is None


def test_a_row_has_the_schema_keys_and_the_outcome_facts(rows: dict, catalog: Catalog, manager: Any) -> None:
    results = {row["id"]: row for row in listed(manager)["results"]}

    r1 = rows["R1"]
    assert all(set(row) == ROW_KEYS for row in results.values())
    assert results[r1.pk] == {
        "id": r1.pk,
        "offer_set": str(r1.offer_set_id),
        "incident": r1.offer_set.incident_id,
        "customer": "C-1",
        "agent": "agent-1",
        "category": "late_delivery",
        "tier": "standard",
        "choice": r1.choice,
        "accepted": True,
        "kind": "fixed_credit",
        "policy": {"id": catalog.alpha.pk, "name": "Alpha credit"},
        "cost": "10.00",
        "remedy_cost": "0.00",  # the catalog's policies have no remedy
        "currency": "USD",
        "satisfaction": 5,
        "coupon_code": None,  # a credit, not a coupon
        "offer_set_created_at": "2025-03-02T10:00:00Z",
        "submitted_at": "2025-03-02T10:01:00.500000Z",
        "recorded_at": "2025-03-02T10:01:05.500000Z",
        "seconds_to_outcome": 60.5,
    }
    r2 = results[rows["R2"].pk]
    assert (r2["kind"], r2["cost"], r2["tier"]) == ("free_shipping", "25.00", "gold")
    assert r2["coupon_code"] == Coupon.objects.get(outcome=rows["R2"]).code


def test_a_declined_row_has_no_kind_policy_or_coupon_and_costs_nothing(rows: dict, manager: Any) -> None:
    row = next(r for r in listed(manager)["results"] if r["id"] == rows["R3"].pk)

    assert (row["choice"], row["accepted"], row["kind"], row["policy"]) == ("declined", False, None, None)
    assert (row["cost"], row["coupon_code"], row["satisfaction"]) == ("0.00", None, 1)
    assert (row["category"], row["agent"], row["seconds_to_outcome"]) == ("damaged_item", "agent-2", 30.0)


def test_the_row_keeps_the_tier_when_recorded(rows: dict, manager: Any) -> None:
    Customer.objects.filter(external_id="C-1").update(tier="platinum")

    assert names(rows, listed(manager, tier="standard")["results"]) == ["R3", "R1", "R5"]
    assert listed(manager, tier="platinum")["count"] == 0


# --- Filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["R2", "R3", "R4", "R1", "R5"]),  # no default period
        (PERIOD, ["R2", "R3", "R4", "R1"]),
        ({"since": "2025-03-03"}, ["R2", "R3", "R4"]),
        ({"until": "2025-03-03"}, ["R4", "R1", "R5"]),
        ({"since": "2025-03-04", "until": "2025-03-04"}, ["R3"]),
        ({"category": "late_delivery"}, ["R2", "R1", "R5"]),
        ({"category": "unused"}, []),
        ({"tier": "gold"}, ["R2"]),
        ({"tier": "standard"}, ["R3", "R1", "R5"]),
        ({"policy": "alpha"}, ["R3", "R1", "R5"]),  # chose Alpha, or declined a set showing it
        ({"policy": "gamma"}, ["R4"]),
        ({"policy": "zulu"}, []),
        ({"choice": "declined"}, ["R3"]),
        ({"kind": "fixed_credit"}, ["R4", "R1", "R5"]),
        ({"kind": "free_shipping"}, ["R2"]),
        ({"kind": "gift"}, []),
        ({"agent": "agent-2"}, ["R3", "R4"]),
        ({"agent": "nobody"}, []),
        ({"agent": "agent-1", "kind": "fixed_credit", "since": "2025-01-01"}, ["R1"]),
        ({"policy": "beta", "choice": "declined"}, ["R3"]),
        ({"policy": "gamma", "choice": "declined"}, []),
    ],
)
def test_list_filters(rows: dict, catalog: Catalog, manager: Any, params: dict, expected: list[str]) -> None:
    if "policy" in params:
        params = {**params, "policy": getattr(catalog, params["policy"]).pk}

    data = listed(manager, **params)

    assert names(rows, data["results"]) == expected
    assert data["count"] == len(expected)


def test_the_choice_filter_takes_labels(rows: dict, manager: Any) -> None:
    for label in ("a", "b", "c"):
        expected = [name for name in ("R2", "R4", "R1", "R5") if rows[name].choice == label]
        assert names(rows, listed(manager, choice=label)["results"]) == expected


LIST_INVALID = [
    *INVALID,
    ({"choice": "d"}, "choice"),
    ({"choice": "DECLINED"}, "choice"),
    ({"kind": "voucher"}, "kind"),
    ({"agent": "x" * 151}, "agent"),
]


@pytest.mark.parametrize(("params", "field"), LIST_INVALID)
@pytest.mark.parametrize("csv_format", [False, True])
def test_an_invalid_filter_is_a_json_400_under_its_field(
    catalog: Catalog, manager: Any, params: dict, field: str, csv_format: bool
) -> None:
    query = {**params, "format": "csv"} if csv_format else params

    response = manager.get(LIST, query)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {field}
    assert body[field]
    assert all(isinstance(message, str) and message for message in body[field])


def test_an_invalid_filter_with_accept_text_csv_is_a_json_400(catalog: Catalog, manager: Any) -> None:
    response = manager.get(LIST, {"tier": "diamond"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"tier"}


# --- Permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"format": "csv"}])
def test_who_may_list_outcomes(catalog: Catalog, client_for: Any, api_client: Any, params: dict) -> None:
    assert client_for("manager", "m").get(LIST, params).status_code == 200
    assert client_for("analyst", "a").get(LIST, params).status_code == 200
    forbidden = client_for("agent", "g").get(LIST, params)
    assert forbidden.status_code == 403
    assert forbidden["Content-Type"] == "application/json"
    assert forbidden.json()["code"] == "permission_denied"
    unauthenticated = api_client.get(LIST, params)
    assert unauthenticated.status_code == 401
    assert unauthenticated["Content-Type"] == "application/json"


# --- Pagination and CSV ----------------------------------------------------------------------


def test_pages_hold_25_rows_and_page_size_is_honoured(many: int, manager: Any) -> None:
    first = listed(manager)
    second = listed(manager, page=2)
    small = listed(manager, page_size=5)

    assert (first["count"], len(first["results"]), len(second["results"])) == (many, 25, many - 25)
    assert first["next"] is not None
    assert second["next"] is None
    assert second["previous"] is not None
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})
    assert (small["count"], len(small["results"])) == (many, 5)
    assert len(listed(manager, page_size=1000)["results"]) == many  # within the cap of 100


def test_csv_has_the_header_and_every_row_of_the_filter_not_one_page(many: int, manager: Any) -> None:
    response = manager.get(LIST, {"format": "csv"})

    table = csv_rows(response)
    assert 'filename="outcomes.csv"' in response["Content-Disposition"]
    assert response["Content-Disposition"].startswith("attachment")
    assert table[0] == list(CSV_HEADER)
    assert len(table) == 1 + many
    late = csv_rows(manager.get(LIST, {"format": "csv", "category": "late_delivery"}))
    assert len(late) == 1 + many - 1 > 1 + 25
    assert {row[CSV_HEADER.index("category")] for row in late[1:]} == {"late_delivery"}
    declined = csv_rows(manager.get(LIST, {"format": "csv", "choice": "declined", "page": "2"}))
    assert len(declined) == 1 + 9  # every declined row, whatever page was asked for


def test_accept_text_csv_gives_csv_too(many: int, manager: Any) -> None:
    table = csv_rows(manager.get(LIST, HTTP_ACCEPT="text/csv"))

    assert table[0] == list(CSV_HEADER)
    assert len(table) == 1 + many


def test_csv_cells_are_the_json_rows_in_the_same_order(many: int, manager: Any) -> None:
    results = listed(manager, page_size=100)["results"]
    table = csv_rows(manager.get(LIST, {"format": "csv"}))

    expected = []
    for row in results:
        cells = {
            **row,
            "accepted": "true" if row["accepted"] else "false",
            "policy_id": row["policy"]["id"] if row["policy"] else "",
            "policy_name": row["policy"]["name"] if row["policy"] else "",
        }
        expected.append(["" if cells[column] is None else str(cells[column]) for column in CSV_HEADER])
    assert table[1:] == expected
    declined = next(row for row in table[1:] if row[CSV_HEADER.index("choice")] == "declined")
    assert declined[CSV_HEADER.index("kind")] == ""
    assert declined[CSV_HEADER.index("policy_name")] == ""
    assert declined[CSV_HEADER.index("cost")] == "0.00"


def test_csv_text_cells_that_look_like_formulas_are_quoted(
    catalog: Catalog, client_for: Any, manager: Any, django_capture_on_commit_callbacks: Capture
) -> None:
    evil = PolicyFactory(name='=HYPERLINK("http://evil","x")', categories=[catalog.unused])
    OfferTemplateFactory(policy=evil, kind=OfferKind.GIFT, value=Decimal("3.00"))
    sneaky = client_for("agent", "@sneaky")
    customers = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "safe=1"]
    for n, customer in enumerate(customers):
        case(
            sneaky,
            django_capture_on_commit_callbacks,
            customer=customer,
            category=catalog.unused,
            choose=evil,
            created=utc("2025-03-01T00:00:00") + timedelta(hours=n),
        )

    table = csv_rows(manager.get(LIST, {"format": "csv"}))
    data = listed(manager)["results"]

    cells = [dict(zip(CSV_HEADER, row, strict=True)) for row in table[1:]]
    assert [c["customer"] for c in cells] == ["safe=1", "'@cmd", "'-2+3", "'+SUM(A1)", "'=1+1"]
    assert {c["agent"] for c in cells} == {"'@sneaky"}
    assert {c["policy_name"] for c in cells} == {'\'=HYPERLINK("http://evil","x")'}
    assert {c["cost"] for c in cells} == {"3.00"}
    assert [row["customer"] for row in data] == ["safe=1", "@cmd", "-2+3", "+SUM(A1)", "=1+1"]  # JSON is as stored
    assert {row["policy"]["name"] for row in data} == {evil.name}


# --- Agreement with the summary and query counts -----------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"category": "damaged_item"},
        {"category": "late_delivery", "tier": "standard"},
        {"tier": "gold"},
        {"policy": "alpha"},
        {"policy": "beta"},
        {"policy": "gamma", "category": "lost_parcel"},
        {"since": "2025-03-03", "until": "2025-03-04"},
    ],
)
def test_the_list_count_is_the_summarys_outcomes_under_the_same_filters(
    rows: dict, catalog: Catalog, manager: Any, params: dict
) -> None:
    if "policy" in params:
        params = {**params, "policy": getattr(catalog, params["policy"]).pk}
    params = {**PERIOD, **params}

    total = get_ok(manager, SUMMARY, params)

    assert listed(manager, **params)["count"] == total["outcomes"]
    assert len(csv_rows(manager.get(LIST, {**params, "format": "csv"}))) - 1 == total["outcomes"]


def test_without_a_period_the_list_has_what_the_widest_summary_has(rows: dict, manager: Any) -> None:
    total = get_ok(manager, SUMMARY, {"since": "1900-01-01", "until": "9998-12-31"})

    assert listed(manager)["count"] == total["outcomes"] == 5


# Token, groups, the category and policy lookups of the filters; then the count and the page (JSON)
# or the one streamed query (CSV), which on PostgreSQL runs in report_session (its settings
# statement, and in the test's transaction a savepoint and its release).
LIST_QUERIES = {"json": 6, "csv": 5 + (3 if connection.vendor == "postgresql" else 0)}


def _queries(client: Any, params: dict[str, Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST, params)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def test_list_query_counts_do_not_grow_with_the_rows(
    catalog: Catalog,
    agent1: Any,
    manager: Any,
    django_capture_on_commit_callbacks: Capture,
    django_assert_max_num_queries: Any,
) -> None:
    params = {"category": "late_delivery", "policy": catalog.alpha.pk, "tier": "standard"}
    forms = {"json": params, "csv": {**params, "format": "csv"}}

    def outcomes(first: int, last: int) -> None:
        for n in range(first, last):
            case(
                agent1,
                django_capture_on_commit_callbacks,
                customer=f"C-{n}",
                category=catalog.late,
                choose=catalog.alpha if n % 2 else "declined",
                created=utc("2025-03-01T00:00:00") + timedelta(hours=n),
            )

    outcomes(0, 2)
    few = {name: _queries(manager, query) for name, query in forms.items()}
    outcomes(2, 10)
    many = {name: _queries(manager, query) for name, query in forms.items()}

    assert listed(manager, **params)["count"] == 10
    assert many == few, (few, many)
    for name, query in forms.items():
        with django_assert_max_num_queries(LIST_QUERIES[name]):
            response = manager.get(LIST, query)
            if response.streaming:
                b"".join(response.streaming_content)
