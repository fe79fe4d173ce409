"""The integration's customer endpoints (README, "Customer data"): ``GET`` and ``PUT
/api/v1/customers/{external_id}/``, ``POST /api/v1/customers/bulk/``; the change rows every customer write
leaves (who, when, field, old, new), in the API and the admin; the integration role."""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape as html_unescape
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compensation.models import Customer, CustomerChange
from compensation.services.customers import CustomerWrite, customers_upsert

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/customers/"
BULK = "/api/v1/customers/bulk/"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def integration(client_for: Any) -> Any:
    return client_for("integration", "crm-sync")


def put(client: Any, external_id: str, body: Any) -> Any:
    return client.put(f"{CUSTOMERS}{external_id}/", body, format="json")


def bulk(client: Any, customers: Any) -> Any:
    return client.post(BULK, {"customers": customers}, format="json")


def snapshot() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Everything stored about customers, to show a refused request wrote nothing."""
    return list(Customer.objects.order_by("pk").values()), list(CustomerChange.objects.order_by("pk").values())


# --- GET -------------------------------------------------------------------------------------------


def test_get_shows_the_customer_with_its_changes_newest_first(integration: Any, manager: Any) -> None:
    with time_machine.travel(T0, tick=False):
        assert put(integration, "C-1", {"name": "Ada", "tier": "silver", "lifetime_value": "120"}).status_code == 201
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        put(integration, "C-1", {"tier": "gold", "lifetime_value": "250.50", "interests": ["sports"]})
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        put(integration, "C-1", {"email": "ada@example.com", "tier": "gold"})

    response = manager.get(f"{CUSTOMERS}C-1/")

    assert response.status_code == 200
    assert response.json() == {
        "external_id": "C-1",
        "name": "Ada",
        "email": "ada@example.com",
        "tier": "gold",
        "lifetime_value": "250.50",
        "interests": ["sports"],
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T11:00:00Z",
        "changes": [
            {"at": "2026-03-02T11:00:00Z", "by": "crm-sync", "field": "email", "old": "", "new": "ada@example.com"},
            {"at": "2026-03-02T10:00:00Z", "by": "crm-sync", "field": "interests", "old": [], "new": ["sports"]},
            {
                "at": "2026-03-02T10:00:00Z",
                "by": "crm-sync",
                "field": "lifetime_value",
                "old": "120.00",
                "new": "250.50",
            },
            {"at": "2026-03-02T10:00:00Z", "by": "crm-sync", "field": "tier", "old": "silver", "new": "gold"},
        ],
    }
    assert integration.get(f"{CUSTOMERS}C-1/").json() == response.json()


@pytest.mark.parametrize("external_id", ["C-nobody", "a%00b", "x" * 65], ids=["unknown", "a NUL", "too long"])
def test_get_of_an_unknown_customer_is_a_json_404(manager: Any, external_id: str) -> None:
    response = manager.get(f"{CUSTOMERS}{external_id}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer has this external_id.", "code": "not_found"}


def test_an_external_id_may_hold_a_slash(integration: Any) -> None:
    assert put(integration, "ACME/42", {"name": "Acme"}).status_code == 201

    assert integration.get(f"{CUSTOMERS}ACME/42/").json()["name"] == "Acme"
    assert Customer.objects.get().external_id == "ACME/42"


# --- PUT -------------------------------------------------------------------------------------------


def test_put_creates_with_201_then_updates_only_the_given_fields_with_200(integration: Any) -> None:
    created = put(integration, "C-1", {"name": "Ada", "email": "ada@example.com", "interests": ["Sports", "cooking"]})

    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["tier"], body["lifetime_value"], body["interests"]) == ("standard", "0.00", ["sports", "cooking"])
    assert body["changes"] == []  # a new customer: its first values are no change

    updated = put(integration, "C-1", {"lifetime_value": "99.90"})

    assert updated.status_code == 200, updated.content
    body = updated.json()
    assert (body["name"], body["email"], body["tier"]) == ("Ada", "ada@example.com", "standard")
    assert body["interests"] == ["sports", "cooking"]
    assert body["lifetime_value"] == "99.90"
    assert [(c["field"], c["old"], c["new"]) for c in body["changes"]] == [("lifetime_value", "0.00", "99.90")]
    assert Customer.objects.count() == 1


def test_put_of_unchanged_values_writes_no_change_and_keeps_updated_at(integration: Any) -> None:
    with time_machine.travel(T0, tick=False):
        put(integration, "C-1", {"name": "Ada", "tier": "gold", "lifetime_value": "10"})
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        response = put(integration, "C-1", {"name": "Ada", "tier": "gold", "lifetime_value": "10.00"})

    assert response.status_code == 200
    assert response.json()["changes"] == []
    assert response.json()["updated_at"] == "2026-03-02T09:00:00Z"


def test_put_body_may_repeat_the_external_id_but_not_name_another(integration: Any) -> None:
    assert put(integration, "C-1", {"external_id": "C-1", "tier": "gold"}).status_code == 201

    response = put(integration, "C-1", {"external_id": "C-2", "tier": "silver"})

    assert response.status_code == 400
    assert list(response.json()) == ["external_id"]
    assert Customer.objects.get().tier == "gold"


INVALID = [
    ({"tier": "diamond"}, "tier"),
    ({"lifetime_value": "-1"}, "lifetime_value"),
    ({"lifetime_value": "12.345"}, "lifetime_value"),
    ({"lifetime_value": "lots"}, "lifetime_value"),
    ({"email": "not-an-address"}, "email"),
    ({"name": "x" * 201}, "name"),
    ({"interests": ["Not a slug!"]}, "interests"),
    ({"interests": [f"i{n}" for n in range(21)]}, "interests"),
    ({"interests": "sports"}, "interests"),
]


@pytest.mark.parametrize(("fields", "field"), INVALID, ids=[f"{f}={next(iter(v.values()))!s:.12}" for v, f in INVALID])
def test_put_validates_as_the_offer_set_post_does_and_writes_nothing(
    integration: Any, agent1: Any, demo_pack: None, fields: dict[str, Any], field: str
) -> None:
    put(integration, "C-1", {"name": "Ada"})
    before = snapshot()

    response = put(integration, "C-1", fields)

    offer_set = agent1.post(
        "/api/v1/offer-sets/",
        {"customer": {"external_id": "C-1", **fields}, "incident": {"category": "late_delivery", "severity": 3}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {field: offer_set.json()["customer"][field]}
    assert snapshot() == before


@pytest.mark.parametrize(("external_id", "status"), [("x" * 64, 201), ("x" * 65, 400)])
def test_put_validates_the_external_id_of_the_url_as_the_offer_set_post_does(
    integration: Any, external_id: str, status: int
) -> None:
    response = put(integration, external_id, {"tier": "gold"})

    assert response.status_code == status
    if status == 400:
        assert response.json() == {"external_id": ["Ensure this field has no more than 64 characters."]}
        assert not Customer.objects.exists()


def test_put_of_a_body_that_is_not_an_object_is_400(integration: Any) -> None:
    response = put(integration, "C-1", ["gold"])

    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not Customer.objects.exists()


# --- Change rows: one statement path for every write ------------------------------------------------


def test_offer_set_posts_in_agent_mode_leave_change_rows_naming_the_agent(demo_pack: None, agent1: Any) -> None:
    body = {"incident": {"category": "late_delivery", "severity": 3, "external_ref": "T-1"}}
    first = {"external_id": "C-1", "name": "Ada", "tier": "silver", "lifetime_value": "120.00", "interests": ["a"]}
    agent1.post("/api/v1/offer-sets/", {**body, "customer": first}, format="json")
    assert not CustomerChange.objects.exists()  # a new customer: no change

    second = {**first, "tier": "gold", "lifetime_value": "130", "interests": ["a", "b"], "email": "ada@example.com"}
    response = agent1.post("/api/v1/offer-sets/", {**body, "customer": second}, format="json")
    assert response.status_code == 201

    changes = CustomerChange.objects.filter(customer__external_id="C-1")
    assert [(c.by, c.field, c.old, c.new) for c in changes.order_by("pk")] == [
        ("agent-1", "email", "", "ada@example.com"),
        ("agent-1", "tier", "silver", "gold"),
        ("agent-1", "lifetime_value", "120.00", "130.00"),
        ("agent-1", "interests", ["a"], ["a", "b"]),
    ]
    created_at = datetime.fromisoformat(response.json()["created_at"].replace("Z", "+00:00"))
    assert {c.at for c in changes} == {created_at}


def test_customers_upsert_writes_what_changed_of_many_customers_in_one_statement(
    db: None, django_assert_max_num_queries: Any
) -> None:
    customers_upsert(
        writes=[CustomerWrite(external_id=f"C-{n}", fields={"tier": "silver"}) for n in range(50)], by="a", now=T0
    )
    writes = [
        CustomerWrite(external_id=f"C-{n}", fields={"tier": "gold" if n % 2 else "silver", "name": f"N{n}"})
        for n in range(60)
    ]

    with CaptureQueriesContext(connection) as queries:
        written = customers_upsert(writes=writes, by="b", now=T0 + timedelta(minutes=1))

    if connection.vendor == "postgresql":
        assert len(queries) == 1, [q["sql"][:80] for q in queries]
    assert [w.customer.external_id for w in written] == [f"C-{n}" for n in range(60)]
    assert [w.created for w in written] == [False] * 50 + [True] * 10
    assert [w.customer.tier for w in written] == ["gold" if n % 2 else "silver" for n in range(60)]
    changes = CustomerChange.objects.filter(by="b")
    assert changes.filter(field="name").count() == 50  # "" -> N<n> for the 50 that existed
    assert sorted(changes.filter(field="tier").values_list("customer__external_id", flat=True)) == sorted(
        f"C-{n}" for n in range(50) if n % 2
    )
    assert set(changes.filter(field="tier").values_list("old", "new")) == {("silver", "gold")}


@pytest.mark.django_db(transaction=True)
def test_a_write_that_meets_a_concurrent_insert_of_the_same_new_customer_updates_it_with_its_changes(
    need_postgres: None,
) -> None:
    """The other transaction inserts C-race first and commits while this write waits on it: this write's
    statement inserts nothing (ON CONFLICT DO NOTHING) and reads nothing (its snapshot is older), so it is
    made again, and updates the row it now sees, recording the change against the committed values."""
    inserted, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with transaction.atomic():
                customers_upsert(
                    writes=[CustomerWrite(external_id="C-race", fields={"tier": "silver"})], by="other", now=T0
                )
                inserted.set()
                deadline = time.monotonic() + 10
                with connection.cursor() as cursor:  # hold the insert until this test's write waits on it
                    while time.monotonic() < deadline:
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.01)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert inserted.wait(10)
    with transaction.atomic():
        (written,) = customers_upsert(
            writes=[CustomerWrite(external_id="C-race", fields={"tier": "gold"})], by="this", now=T0
        )
    thread.join(10)

    assert not errors, errors
    assert done.is_set()
    assert (written.created, written.customer.tier) == (False, "gold")
    assert Customer.objects.get(external_id="C-race").tier == "gold"
    assert list(CustomerChange.objects.values_list("by", "field", "old", "new")) == [("this", "tier", "silver", "gold")]


def _upsert_concurrently(batches: list[list[CustomerWrite]]) -> list[Any]:
    """Write each batch from its own thread (and database connection), in a transaction of its own, the
    statements released together."""
    barrier = threading.Barrier(len(batches))
    results: list[Any] = [None] * len(batches)

    def run(index: int) -> None:
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                results[index] = customers_upsert(writes=batches[index], by=f"writer-{index}", now=T0)
        except Exception as exc:  # reported by the caller's assertion, not lost in the thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_of_the_same_customers_in_other_orders_all_succeed(need_postgres: None) -> None:
    """New customers are inserted in external_id order, whatever order the writes give: two writes creating the
    same customers in opposite orders (inserted in those orders, they deadlock) wait for each other; the one
    that comes second updates what the first created."""
    for round_ in range(10):
        stored = [CustomerWrite(external_id=f"C-{round_}-old-{n:03}") for n in range(150)]
        with transaction.atomic():
            customers_upsert(writes=stored, by="seed", now=T0)
        # Each writes half the stored customers (its own) and the same new ones, in opposite orders.
        new = [f"C-{round_}-new-{n:03}" for n in range(150)]
        batches = [
            [CustomerWrite(external_id=i, fields={"tier": "gold"}) for i in [w.external_id for w in stored[::2]] + new],
            [
                CustomerWrite(external_id=i, fields={"tier": "silver"})
                for i in [w.external_id for w in stored[1::2]] + new[::-1]
            ],
        ]

        results = _upsert_concurrently(batches)

        assert all(isinstance(result, list) for result in results), results
        assert sum(w.created for result in results for w in result) == 150
        customers = Customer.objects.filter(external_id__startswith=f"C-{round_}-")
        assert customers.count() == 300
        tiers = set(customers.filter(external_id__contains="-new-").values_list("tier", flat=True))
        assert len(tiers) == 1  # one of the two writes came last, whole


def test_the_admin_shows_a_customers_changes_newest_first(integration: Any, admin_client: Any) -> None:
    with time_machine.travel(T0, tick=False):
        put(integration, "C-1", {"tier": "silver"})
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        put(integration, "C-1", {"tier": "gold"})
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        put(integration, "C-1", {"tier": "platinum", "email": "first-change@example.com"})

    page = admin_client.get(reverse("admin:compensation_customer_change", args=[Customer.objects.get().pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Changes (newest first)" in html
    cells = re.findall(r'<td class="field-(by|field|old|new)">\s*<p>(.*?)</p>', html, re.S)
    rows = [tuple(html_unescape(value) for _, value in cells[i : i + 4]) for i in range(0, len(cells), 4)]
    assert rows == [
        ("crm-sync", "tier", '"gold"', '"platinum"'),
        ("crm-sync", "email", "-", '"first-change@example.com"'),  # the admin shows "" as -
        ("crm-sync", "tier", '"silver"', '"gold"'),
    ]
    assert 'name="changes-0-field"' not in html  # read-only: no form fields


# --- Bulk ------------------------------------------------------------------------------------------


def test_bulk_creates_then_updates_1000_customers(integration: Any) -> None:
    new = [{"external_id": f"C-{n:04}", "name": f"Customer {n}", "tier": "silver"} for n in range(1000)]

    response = bulk(integration, new)

    assert response.status_code == 200, response.content
    assert response.json() == {"created": 1000, "updated": 0}
    assert Customer.objects.filter(tier="silver").count() == 1000
    assert not CustomerChange.objects.exists()

    changed = [{"external_id": f"C-{n:04}", "lifetime_value": f"{n}.50", "interests": ["books"]} for n in range(1000)]
    response = bulk(integration, changed)

    assert response.json() == {"created": 0, "updated": 1000}
    stored = Customer.objects.get(external_id="C-0017")
    assert (stored.name, stored.tier, stored.lifetime_value, stored.interests) == (
        "Customer 17",
        "silver",
        Decimal("17.50"),
        ["books"],
    )
    assert CustomerChange.objects.filter(field="lifetime_value").count() == 1000
    assert CustomerChange.objects.filter(field="interests", by="crm-sync").count() == 1000
    assert not CustomerChange.objects.filter(field__in=["name", "tier", "email"]).exists()


def test_bulk_mixes_new_and_existing_customers_and_keeps_fields_left_out(integration: Any) -> None:
    put(integration, "C-1", {"name": "Ada", "email": "ada@example.com", "tier": "gold"})

    response = bulk(integration, [{"external_id": "C-1", "tier": "silver"}, {"external_id": "C-2"}])

    assert response.json() == {"created": 1, "updated": 1}
    ada = Customer.objects.get(external_id="C-1")
    assert (ada.name, ada.email, ada.tier) == ("Ada", "ada@example.com", "silver")
    assert Customer.objects.get(external_id="C-2").tier == "standard"


def test_bulk_is_all_or_nothing_and_names_the_bad_row_by_index(integration: Any) -> None:
    put(integration, "C-0003", {"tier": "gold"})
    before = snapshot()
    rows: list[dict[str, Any]] = [{"external_id": f"C-{n:04}", "tier": "silver"} for n in range(30)]
    rows[17]["tier"] = "diamond"

    response = bulk(integration, rows)

    assert response.status_code == 400
    assert response.json() == {"customers[17].tier": ['"diamond" is not a valid choice.']}
    assert snapshot() == before


def test_bulk_names_each_bad_field_of_each_row_with_a_flat_path(integration: Any) -> None:
    rows: list[Any] = [
        {"external_id": "C-0"},
        {"external_id": "C-1", "interests": ["ok", "Not a slug"], "lifetime_value": "-1"},
        "not an object",
        {"tier": "gold"},
    ]

    response = bulk(integration, rows)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {
        "customers[1].interests[1]",
        "customers[1].lifetime_value",
        "customers[2]",
        "customers[3].external_id",
    }
    assert body["customers[3].external_id"] == ["This field is required."]
    assert not Customer.objects.exists()


def test_bulk_refuses_an_external_id_given_twice(integration: Any) -> None:
    rows = [{"external_id": "C-1"}, {"external_id": "C-2"}, {"external_id": "C-1", "tier": "gold"}]

    response = bulk(integration, rows)

    assert response.status_code == 400
    assert list(response.json()) == ["customers[2].external_id"]
    assert "customers[0]" in response.json()["customers[2].external_id"][0]
    assert not Customer.objects.exists()


def test_bulk_refuses_more_than_1000_customers_and_writes_nothing(integration: Any) -> None:
    response = bulk(integration, [{"external_id": f"C-{n}"} for n in range(1001)])

    assert response.status_code == 400
    assert response.json() == {"customers": ["at most 1000 customers in one request, got 1001"]}
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"customers": ["This field is required."]}),
        ({"customers": "C-1"}, {"customers": ['Expected a list of items but got type "str".']}),
        ({"customers": None}, {"customers": ["This field may not be null."]}),
    ],
)
def test_bulk_body_must_hold_a_list_of_customers(integration: Any, body: Any, errors: dict[str, Any]) -> None:
    response = integration.post(BULK, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors


def test_bulk_of_an_empty_list_writes_nothing_and_says_so(integration: Any) -> None:
    response = bulk(integration, [])

    assert response.status_code == 200
    assert response.json() == {"created": 0, "updated": 0}


def test_bulk_takes_one_statement_for_the_customers_on_postgresql(
    need_postgres: None, integration: Any, django_assert_max_num_queries: Any
) -> None:
    counts = []
    for size in (10, 1000):
        rows = [{"external_id": f"C-{size}-{n}", "tier": "gold"} for n in range(size)]
        with CaptureQueriesContext(connection) as queries:
            assert bulk(integration, rows).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    with django_assert_max_num_queries(4):  # the token, the statement, and the transaction's savepoint pair
        bulk(integration, [{"external_id": "C-x", "tier": "silver"}])


# --- Who may call what ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_agents_and_analysts_may_not_read_or_write_customers(client_for: Any, integration: Any, role: str) -> None:
    put(integration, "C-1", {"tier": "gold"})
    before = snapshot()
    client = client_for(role, f"{role}-x")

    answers = [
        client.get(f"{CUSTOMERS}C-1/"),
        put(client, "C-1", {"tier": "platinum"}),
        put(client, "C-2", {"tier": "platinum"}),
        bulk(client, [{"external_id": "C-1", "tier": "platinum"}]),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert all(a.json()["code"] == "permission_denied" for a in answers)
    assert snapshot() == before


def test_managers_read_customers_but_do_not_write_them(manager: Any, integration: Any) -> None:
    put(integration, "C-1", {"tier": "gold"})

    assert manager.get(f"{CUSTOMERS}C-1/").status_code == 200
    assert put(manager, "C-1", {"tier": "platinum"}).status_code == 403
    assert bulk(manager, [{"external_id": "C-1", "tier": "platinum"}]).status_code == 403
    assert Customer.objects.get().tier == "gold"


def test_issue_token_makes_an_integration_whose_token_reaches_me_and_customers_only(api_client: Any) -> None:
    out = io.StringIO()
    call_command("issue_token", "crm", "--role", "integration", stdout=out, stderr=io.StringIO())
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")

    assert api_client.get("/api/v1/me/").json() == {"username": "crm", "role": "integration"}
    assert put(api_client, "C-1", {"tier": "gold"}).status_code == 201
    assert api_client.get("/api/v1/offer-sets/").status_code == 403
    assert api_client.get("/api/v1/reports/summary/").status_code == 403
    assert api_client.get("/api/v1/escalations/").status_code == 403


def test_a_user_in_the_integration_group_and_another_roles_has_that_role_and_not_the_integrations(
    client_for: Any,
) -> None:
    """The integration is the least capable role: an agent added to its group by mistake stays an agent
    and cannot set customer facts (which CUSTOMER_FACTS=trusted keeps from agents)."""
    client = client_for("agent", "dana")
    get_user_model().objects.get(username="dana").groups.add(Group.objects.get(name="integration"))

    assert client.get("/api/v1/me/").json()["role"] == "agent"
    assert client.get("/api/v1/offer-sets/").status_code == 200
    assert put(client, "C-1", {"tier": "platinum"}).status_code == 403
    assert client.get(f"{CUSTOMERS}C-1/").status_code == 403
    assert not Customer.objects.exists()


def test_a_superuser_may_write_customers(admin_client: Any) -> None:
    response = admin_client.put(f"{CUSTOMERS}C-1/", {"tier": "gold"}, content_type="application/json")

    assert response.status_code == 201
    assert admin_client.get(f"{CUSTOMERS}C-1/").json()["tier"] == "gold"


# --- The schema ------------------------------------------------------------------------------------


def test_the_customer_endpoints_are_in_the_schema_with_their_shapes(api_client: Any) -> None:
    schema = api_client.get("/api/schema/?format=json").json()

    detail = schema["paths"]["/api/v1/customers/{external_id}/"]
    assert {"get", "put"} <= set(detail)
    assert {"200", "201", "400", "403"} <= set(detail["put"]["responses"])
    bulk_op = schema["paths"]["/api/v1/customers/bulk/"]["post"]
    assert {"200", "400", "403"} <= set(bulk_op["responses"])
    components = schema["components"]["schemas"]
    assert set(components["CustomerDetail"]["properties"]) == {
        "external_id",
        "name",
        "email",
        "tier",
        "lifetime_value",
        "interests",
        "created_at",
        "updated_at",
        "changes",
    }
    assert set(components["CustomersBulkResult"]["properties"]) == {"created", "updated"}
    assert components["CustomersBulkInputRequest"]["properties"]["customers"]["maxItems"] == 1000
