"""Coupon codes in the outcome list and the CSV export (API.md, v2 "Trust: customers, authority, hardening":
masked coupon codes, the formula guard, exports that finish).

- Analysts see coupon codes as ``****`` and their last 4 characters, in the JSON and the CSV; managers and
  superusers see them whole.
- A text cell a spreadsheet could run as a formula is prefixed with ``'``, also where the trigger follows a
  ``;`` or a tab inside the cell, full-width triggers included; numbers stay numbers.
- On PostgreSQL the CSV is written by ``COPY``: the same bytes as the Python path (kept for SQLite) for the
  same data and filters, and a client that goes away mid-stream leaves the connection clean.

Data goes through the real API as in test_reports_api.py; odd values are then written into the rows.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from psycopg.pq import TransactionStatus
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory

from compensation.models import Coupon, Customer, Outcome
from policies.models import Policy
from reporting import export
from reporting.apis import OutcomeListApi
from reporting.filters import OutcomeFilter
from reporting.reports import CSV_HEADER
from reporting.serializers import coupon_code_shown, csv_cell, seconds_to_outcome
from tests.conftest import postgres_needed
from tests.reporting.catalog import Catalog
from tests.reporting.test_reports_api import Capture, case, utc

pytestmark = pytest.mark.django_db

LIST = "/api/v1/outcomes/"
COLUMN = {name: n for n, name in enumerate(CSV_HEADER)}


def csv_text(response: Any) -> str:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content).decode("utf-8")


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text(response))))


def json_rows(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get(LIST, {"page_size": 100, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def outcomes(
    catalog: Catalog, agent1: Any, agent2: Any, django_capture_on_commit_callbacks: Capture
) -> dict[str, Outcome]:
    """S1 and S2 chose Beta (free shipping: a coupon), C chose Alpha (a credit: no coupon), D declined."""
    capture = django_capture_on_commit_callbacks
    made = {
        "S1": case(agent1, capture, customer="C-1", category=catalog.late, choose=catalog.beta,
                   created=utc("2025-03-01T10:00:00"), satisfaction=4),
        "S2": case(agent2, capture, customer="C-2", category=catalog.damaged, choose=catalog.beta,
                   created=utc("2025-03-02T10:00:00")),
        "C": case(agent1, capture, customer="C-3", category=catalog.late, choose=catalog.alpha,
                  created=utc("2025-03-03T10:00:00")),
        "D": case(agent2, capture, customer="C-4", category=catalog.damaged, choose="declined",
                  created=utc("2025-03-04T10:00:00"), satisfaction=1),
    }  # fmt: skip
    return {name: Outcome.objects.get(offer_set_id=s["id"]) for name, s in made.items()}


def code_of(outcome: Outcome) -> str:
    return Coupon.objects.get(outcome=outcome).code


@pytest.fixture
def superuser(django_user_model: Any) -> APIClient:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- Masked coupon codes -------------------------------------------------------------------------


def test_analysts_see_coupon_codes_masked_to_their_last_4_characters(outcomes: dict, analyst: Any) -> None:
    """The finding: an analyst read live coupon codes in the outcome list and its CSV."""
    codes = {name: code_of(outcomes[name]) for name in ("S1", "S2")}
    assert all(len(code) > 8 for code in codes.values())

    response = analyst.get(LIST)
    rows = {row["id"]: row for row in response.json()["results"]}
    text = csv_text(analyst.get(LIST, {"format": "csv"}))
    cells = {int(row[COLUMN["id"]]): row for row in csv.reader(io.StringIO(text)) if row[0] != "id"}

    for name, code in codes.items():
        masked = rows[outcomes[name].pk]["coupon_code"]
        assert masked == "****" + code[-4:]
        assert re.fullmatch(r"\*\*\*\*[0-9A-Z]{4}", masked)
        assert cells[outcomes[name].pk][COLUMN["coupon_code"]] == masked
        assert code not in response.content.decode()
        assert code not in text
        assert code[:-4].replace("-", "") not in text.replace("-", "")
    for name in ("C", "D"):  # no coupon: null in JSON, an empty cell in the CSV
        assert rows[outcomes[name].pk]["coupon_code"] is None
        assert cells[outcomes[name].pk][COLUMN["coupon_code"]] == ""


@pytest.mark.parametrize("who", ["manager", "superuser"])
def test_managers_and_superusers_see_coupon_codes_whole(
    outcomes: dict, manager: Any, superuser: APIClient, who: str
) -> None:
    client = {"manager": manager, "superuser": superuser}[who]

    rows = {row["id"]: row for row in json_rows(client)}
    cells = {int(row[COLUMN["id"]]): row for row in csv_rows(client.get(LIST, {"format": "csv"}))[1:]}

    for name in ("S1", "S2"):
        code = code_of(outcomes[name])
        assert rows[outcomes[name].pk]["coupon_code"] == code
        assert cells[outcomes[name].pk][COLUMN["coupon_code"]] == code
    assert rows[outcomes["C"].pk]["coupon_code"] is None


def test_a_short_or_empty_code_reveals_nothing_to_analysts(outcomes: dict, analyst: Any, manager: Any) -> None:
    Coupon.objects.filter(outcome=outcomes["S1"]).update(code="7Q2F")
    Coupon.objects.filter(outcome=outcomes["S2"]).update(code="")

    rows = {row["id"]: row["coupon_code"] for row in json_rows(analyst)}
    cells = {int(r[COLUMN["id"]]): r[COLUMN["coupon_code"]] for r in csv_rows(analyst.get(LIST, {"format": "csv"}))[1:]}
    whole = {row["id"]: row["coupon_code"] for row in json_rows(manager)}

    assert (rows[outcomes["S1"].pk], cells[outcomes["S1"].pk]) == ("****", "****")
    assert (rows[outcomes["S2"].pk], cells[outcomes["S2"].pk]) == ("", "")
    assert (whole[outcomes["S1"].pk], whole[outcomes["S2"].pk]) == ("7Q2F", "")


@pytest.mark.parametrize(
    ("code", "whole", "shown"),
    [
        ("RCV-ABCD-EFGH-JKMN-7Q2F", False, "****7Q2F"),
        ("RCV-ABCD-EFGH-JKMN-7Q2F", True, "RCV-ABCD-EFGH-JKMN-7Q2F"),
        ("ABCDE", False, "****BCDE"),
        ("ABCD", False, "****"),
        ("A", False, "****"),
        ("", False, ""),
        (None, False, None),
        (None, True, None),
    ],
)
def test_coupon_code_shown(code: str | None, whole: bool, shown: str | None) -> None:
    assert coupon_code_shown(code, whole=whole) == shown


# --- The formula guard ---------------------------------------------------------------------------

GUARDED = [
    "=1+1",
    "＝1+1",  # full-width =
    "+SUM(A1)",
    "＋1",
    "-1+1",
    "－1",
    "@SUM(1)",
    "＠SUM(1)",
    "\t=1",
    "\rx",
    "\tplain",  # OWASP: a leading tab or carriage return
    " =1+1",  # leading spaces do not hide a formula
    "  ＝1",
    "x;=1+1",  # split on ; by a spreadsheet, the second cell is a formula
    "x;＋1",
    "x; -1",
    "a\t@SUM(1)",  # split on tabs
    "a\t ＠x",
    "x\n=1",  # a line break inside a quoted cell
    "x\r\n+1",
]
UNGUARDED = ["safe=1", "a-b", "1+1", "a@b.example", "x;y", "x; y", "x\ty", "C-1", "'=1", "x,=1", ""]


@pytest.mark.parametrize("text", GUARDED)
def test_csv_cell_prefixes_what_a_spreadsheet_could_run(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", UNGUARDED)
def test_csv_cell_leaves_plain_text_alone(text: str) -> None:
    assert csv_cell(text) == text


def test_csv_cell_of_none_is_empty() -> None:
    assert csv_cell(None) == ""


FORMULA_CUSTOMERS = ["=1+1", "＝1+1", "x;=1+1", "x;＋1", "a\t@SUM(1)", "-1+1", " @x", "x\n=1", "plain;text", "C-9"]


def test_csv_guards_formula_cells_on_this_database_and_json_keeps_them(outcomes: dict, manager: Any) -> None:
    """Whichever path this database takes (COPY on PostgreSQL, Python's csv elsewhere)."""
    first = outcomes["S1"]
    for n, external_id in enumerate(FORMULA_CUSTOMERS):
        Customer.objects.filter(pk=first.customer_id).update(external_id=external_id)
        Policy.objects.filter(pk=first.policy_id).update(name=f"policy;={n}")
        Coupon.objects.filter(outcome=first).update(code=f"RCV;@{n}")
        rows = {int(r[COLUMN["id"]]): r for r in csv_rows(manager.get(LIST, {"format": "csv"}))[1:]}
        row = rows[first.pk]
        expected = external_id if external_id in {"plain;text", "C-9"} else "'" + external_id
        assert row[COLUMN["customer"]] == expected
        assert row[COLUMN["policy_name"]] == f"'policy;={n}"
        assert row[COLUMN["coupon_code"]] == f"'RCV;@{n}"
        json_row = next(r for r in json_rows(manager) if r["id"] == first.pk)
        assert (json_row["customer"], json_row["policy"]["name"]) == (external_id, f"policy;={n}")
    assert rows[outcomes["C"].pk][COLUMN["customer"]] == "C-3"


def test_numbers_stay_numbers_even_negative(outcomes: dict, manager: Any) -> None:
    """Only text columns are guarded: money, ids and seconds are numbers, a minus sign and all."""
    declined = outcomes["D"]
    Outcome.objects.filter(pk=declined.pk).update(
        cost=Decimal("-5.00"),
        remedy_cost=Decimal("-0.50"),
        submitted_at=declined.offer_set_created_at - timedelta(seconds=1, microseconds=500_000),
    )

    row = next(r for r in csv_rows(manager.get(LIST, {"format": "csv"}))[1:] if r[0] == str(declined.pk))

    assert (row[COLUMN["cost"]], row[COLUMN["remedy_cost"]]) == ("-5.00", "-0.50")
    assert row[COLUMN["seconds_to_outcome"]] == "-1.5"


@pytest.mark.parametrize(
    ("micro", "seconds"),
    [
        (60_500_000, 60.5),
        (120_000_000, 120.0),
        (1_000_499, 1.0),
        (1_000_500, 1.001),  # halves away from zero (a float's round() made this 1.0)
        (500, 0.001),
        (62_500, 0.063),  # exactly half in binary too: round() gave 0.062
        (400, 0.0),
        (-400, 0.0),
        (-1_500_000, -1.5),
        (-1_000_500, -1.001),
        (3 * 86_400_000_000 + 1, 259_200.0),
    ],
)
def test_seconds_to_outcome_rounds_the_exact_microseconds_halves_away_from_zero(micro: int, seconds: float) -> None:
    created = utc("2025-03-01T00:00:00")
    assert seconds_to_outcome(created, created + timedelta(microseconds=micro)) == seconds
    assert str(seconds_to_outcome(created, created + timedelta(microseconds=micro))) == str(seconds)


# --- COPY and the Python path: the same bytes --------------------------------------------------

ODD_CUSTOMERS = [
    'say "hi"',
    "comma, inside",
    "line\nbreak",
    "cr\rinside",
    "crlf\r\n=1",
    "ünïcödé ✓",
    "\\.",
    "trailing space ",
    "x;=1+1",
    "＝1",
    "",
]


@pytest.fixture
def odd(outcomes: dict, catalog: Catalog, agent1: Any, django_capture_on_commit_callbacks: Capture) -> list[Outcome]:
    """The four outcomes plus one per odd customer id, with odd times, costs, names and coupon codes."""
    rows = list(outcomes.values())
    base = utc("2025-03-05T00:00:00")
    for n, external_id in enumerate(ODD_CUSTOMERS):
        made = case(
            agent1,
            django_capture_on_commit_callbacks,
            customer=f"odd-{n}",
            category=catalog.late if n % 2 else catalog.damaged,
            choose=catalog.beta if n % 3 == 0 else (catalog.alpha if n % 3 == 1 else "declined"),
            satisfaction=n % 5 + 1 if n % 2 else None,
            created=base + timedelta(hours=n),
        )
        outcome = Outcome.objects.get(offer_set_id=made["id"])
        Customer.objects.filter(pk=outcome.customer_id).update(external_id=external_id)
        rows.append(outcome)
    # Times with and without microseconds; waits on a half millisecond, long and negative ones.
    waits = [1_000_500, 62_500, 500, 0, 3 * 86_400_000_000 + 123_456, -1_500_000, 59_999_999, 1]
    for n, outcome in enumerate(rows):
        created = outcome.offer_set_created_at + timedelta(microseconds=n * 7919 if n % 2 else 0)
        Outcome.objects.filter(pk=outcome.pk).update(
            offer_set_created_at=created,
            submitted_at=created + timedelta(microseconds=waits[n % len(waits)]),
            recorded_at=outcome.recorded_at + timedelta(microseconds=(n % 3) * 250_000),
            cost=[Decimal("0.00"), Decimal("12.50"), Decimal("-5.00"), Decimal("999999999.99")][n % 4],
            remedy_cost=Decimal("1234.05") if n % 5 == 0 else Decimal("0.00"),
        )
    Policy.objects.filter(pk=catalog.alpha.pk).update(name='Alpha, "the first"\n=2')
    Policy.objects.filter(pk=catalog.beta.pk).update(name="@Beta")
    coupons = Coupon.objects.order_by("pk")
    Coupon.objects.filter(pk=coupons[0].pk).update(code="XY")
    Coupon.objects.filter(pk=coupons[1].pk).update(code="AB;=1+2")
    return rows


FILTERS = [
    {},
    {"category": "late_delivery"},
    {"choice": "declined"},
    {"kind": "free_shipping"},
    {"agent": "agent-2"},
    {"tier": "standard"},
    {"since": "2025-03-02", "until": "2025-03-05"},
    {"policy": "alpha"},
    {"agent": "nobody"},
]


def _filtered(catalog: Catalog, params: dict[str, str]) -> Any:
    if "policy" in params:
        params = {**params, "policy": str(getattr(catalog, params["policy"]).pk)}
    filters = OutcomeFilter(data=params, queryset=Outcome.objects.all())
    assert filters.is_valid(), filters.errors
    return filters.qs, params


@pytest.mark.parametrize("whole_coupons", [True, False])
@pytest.mark.parametrize("params", FILTERS)
def test_copy_writes_the_bytes_the_python_path_writes(
    odd: list[Outcome], catalog: Catalog, params: dict, whole_coupons: bool
) -> None:
    postgres_needed("the CSV written by COPY")
    outcomes, _ = _filtered(catalog, params)

    python = "".join(export.outcome_csv_python(outcomes, whole_coupons=whole_coupons)).encode("utf-8")
    copied = b"".join(export.outcome_csv_copy(outcomes, whole_coupons=whole_coupons))

    assert copied == python
    assert python.startswith(",".join(CSV_HEADER).encode() + b"\r\n")
    if not params:
        assert len(list(csv.reader(io.StringIO(python.decode())))) == 1 + len(odd)
        for text in ("'x;=1+1", "'＝1", "'@Beta", '"\'Alpha, ""the first""\n=2"', '"say ""hi"""', "-5.00"):
            assert text.encode() in python
        assert b",1.001\r\n" in python
        assert b",-1.5\r\n" in python


@pytest.mark.parametrize("who", ["manager", "analyst"])
def test_the_view_streams_the_python_paths_bytes(
    odd: list[Outcome], catalog: Catalog, client_for: Any, who: str
) -> None:
    """The view on this database gives the Python path's bytes; on PostgreSQL it ran one COPY."""
    client = client_for(who, f"{who}-x")
    outcomes, _ = _filtered(catalog, {})
    expected = "".join(export.outcome_csv_python(outcomes, whole_coupons=who == "manager")).encode("utf-8")

    with CaptureQueriesContext(connection) as queries:
        body = b"".join(client.get(LIST, {"format": "csv"}).streaming_content)

    assert body == expected
    copies = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY (")]
    assert len(copies) == (1 if connection.vendor == "postgresql" else 0)


def test_an_empty_filter_gives_the_header_alone(outcomes: dict, manager: Any) -> None:
    assert csv_text(manager.get(LIST, {"format": "csv", "agent": "nobody"})) == ",".join(CSV_HEADER) + "\r\n"


def test_copy_of_a_filter_that_can_match_nothing_is_the_header(outcomes: dict) -> None:
    postgres_needed("the CSV written by COPY")
    chunks = list(export.outcome_csv_copy(Outcome.objects.filter(pk__in=[]), whole_coupons=True))
    assert chunks == [(",".join(CSV_HEADER) + "\r\n").encode()]


def test_a_client_gone_mid_stream_leaves_the_connection_clean(
    odd: list[Outcome], make_user: Any, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WSGI server closes the response when the client goes away: that ends the COPY and its transaction,
    and the connection serves the next query and the next export.

    The view is called as a WSGI server would (not through the test client, which wraps the stream),
    and request_finished does not close the connection here: it would (not in autocommit, inside the
    test's transaction), where in production it keeps it.
    """
    postgres_needed("the CSV written by COPY")
    monkeypatch.setattr(export, "CSV_CHUNK_BYTES", 1)  # a chunk per row
    _, key = make_user("manager-wsgi", "manager")
    request = APIRequestFactory().get(LIST, {"format": "csv"}, HTTP_AUTHORIZATION=f"Token {key}")
    savepoints = list(connection.savepoint_ids)

    response = OutcomeListApi.as_view()(request)
    chunks = iter(response)
    first, second = next(chunks), next(chunks)
    assert first.startswith(b"id,offer_set,")
    assert connection.connection.info.transaction_status == TransactionStatus.ACTIVE  # the COPY runs
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)

    assert connection.connection.info.transaction_status == TransactionStatus.INTRANS  # the test's own
    assert connection.savepoint_ids == savepoints
    assert Outcome.objects.count() == len(odd)
    whole = csv_text(manager.get(LIST, {"format": "csv"})).encode()
    assert whole.startswith(first + second)
    assert len(list(csv.reader(io.StringIO(whole.decode())))) == 1 + len(odd)
