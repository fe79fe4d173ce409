"""The demo history ``load_demo`` loads on the first run: its figures in the reports and the dashboard, once
only, deterministic, quiet (no e-mail then or later for what happened in the past), and ``--no-history`` /
``--no-users``.

The clock is frozen at fixed instants (the history is placed relative to now), so the tests hold on any
day and with the suite's clock moved.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Avg
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from compensation.models import Customer, Escalation, FollowUp, Incident, OfferSet, Outcome, OutcomeSubmission
from compensation.serializers import offer_set_input_validate
from compensation.services.budgets import budget_alerts_send
from compensation.services.demo_history import history_plan, offer_set_request
from compensation.services.escalations import escalations_flag_overdue
from compensation.services.follow_ups import follow_ups_send
from policies.index import policy_index_get

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)
NEW_YEAR = datetime(2025, 1, 1, 0, 30, tzinfo=UTC)  # the history spans a month's and a year's end
# What the plan is meant to produce (compensation/services/demo_history.py), stated here on its own.
CUSTOMERS = 60  # 58, and two phone customers (no e-mail) for the escalations left open
OFFER_SETS = 202  # 200 over the 30 days, and the two recent ones
DEMO_CATEGORIES = {
    "late_delivery",
    "missed_delivery",
    "wrong_item",
    "damaged_item",
    "wrong_shipping_method",
    "double_charge",
    "billing_error",
    "service_outage",
    "missed_appointment",
    "out_of_stock",
    "customer_error",
}
TIERS = {"standard", "silver", "gold", "platinum"}
OPEN = (Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED)
REPORTS = ("summary", "policies", "offer-kinds", "categories", "agents", "learning")


def load_demo(*args: str) -> str:
    """``load_demo`` with these arguments; what it wrote to stderr (its progress lines)."""
    err = io.StringIO()
    call_command("load_demo", *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def token_client(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user__username=username).key}")
    return client


def reports() -> dict[str, Any]:
    """Every report over its default period (the last 30 days), as the demo manager reads it."""
    client = token_client("demo-manager")
    answers = {}
    for name in REPORTS:
        response = client.get(f"/api/v1/reports/{name}/")
        assert response.status_code == 200, (name, response.content)
        answers[name] = response.json()
    return answers


def test_the_first_run_has_30_days_of_history_to_show(frozen: None, client: Any, django_user_model: Any) -> None:
    output = load_demo()

    assert "Demo history: 30 days, 60 customers, 202 offer sets" in output
    assert Customer.objects.filter(external_id__startswith="DEMO-").count() == CUSTOMERS
    assert OfferSet.objects.count() == OFFER_SETS
    assert mail.outbox == []  # nothing told anybody about the past
    first, last = (
        Incident.objects.order_by(f).values_list("created_at", flat=True)[0] for f in ("created_at", "-created_at")
    )
    assert NOW - timedelta(days=30) < first
    assert last < NOW

    figures = reports()
    summary = figures["summary"]
    assert summary["offer_sets"] == OFFER_SETS  # all of it inside the last 30 days
    assert summary["accepted"] > 0
    assert 0.08 <= summary["declined"] / summary["outcomes"] <= 0.25
    assert 3.5 <= summary["average_satisfaction"] <= 4.5
    assert summary["escalations_opened"] > 2
    by_category = {row["category"]["slug"]: row for row in figures["categories"]}
    assert set(by_category) == DEMO_CATEGORIES
    assert all(row["offered"] > 0 and row["outcomes"] > 0 for row in by_category.values())
    assert {row["kind"] for row in figures["offer-kinds"] if row["chosen"]} >= {"fixed_credit", "gift", "free_shipping"}
    assert [row["agent"]["username"] for row in figures["agents"] if row["outcomes"]] == ["demo-agent"]
    assert {row["category"] for row in figures["learning"]} == DEMO_CATEGORIES
    assert sum(row["chosen"] for row in figures["policies"]) > 0

    outcomes = Outcome.objects.all()
    assert set(outcomes.values_list("tier", flat=True)) == TIERS
    chosen = dict.fromkeys("abc", 0)
    for choice in outcomes.filter(accepted=True).values_list("choice", flat=True):
        chosen[choice] += 1
    assert chosen["a"] > chosen["b"] > chosen["c"] > 0
    satisfaction = {
        accepted: outcomes.filter(accepted=accepted).aggregate(mean=Avg("satisfaction"))["mean"]
        for accepted in (True, False)
    }
    assert satisfaction[True] > satisfaction[False] + 1
    assert Incident.objects.filter(same_category_repeat_count__gt=1).exists()  # the same mistake twice

    # Two escalations open: a senior manager's call past its due time, flagged as the periodic task does,
    # and a refund waiting for approval, due later; every other one closed by the demo manager.
    still_open = Escalation.objects.filter(status__in=OPEN)
    assert sorted(still_open.values_list("kind", flat=True)) == ["approval", "senior_manager"]
    overdue = still_open.get(due_at__lt=NOW)
    assert overdue.kind == Escalation.Kind.SENIOR_MANAGER
    assert overdue.created_at < overdue.due_at < overdue.overdue_notified_at < NOW
    waiting = still_open.get(due_at__gt=NOW)
    assert waiting.created_at < NOW
    assert OutcomeSubmission.objects.filter(approval=waiting).exists() or waiting.remedies.exists()
    assert escalations_flag_overdue(now=NOW) == 0  # already flagged: no "OVERDUE" e-mail on the first run
    listed = token_client("demo-manager").get("/api/v1/escalations/", {"overdue": "true"}).json()
    assert [e["id"] for e in listed["results"]] == [overdue.pk]
    closed = Escalation.objects.exclude(status__in=OPEN)
    assert closed.exists()
    assert not closed.filter(resolved_at__gt=NOW).exists()

    # Nothing left to send at once: follow-ups due by now were sent (or skipped: no e-mail address).
    assert follow_ups_send(now=NOW) == 0
    assert budget_alerts_send(now=NOW) == 0
    statuses = set(FollowUp.objects.filter(send_after__lte=NOW).values_list("status", flat=True))
    assert statuses <= {FollowUp.Status.SENT, FollowUp.Status.SKIPPED}
    assert mail.outbox == []

    client.force_login(django_user_model.objects.create_superuser("boss", "boss@localhost", "x"))
    response = client.get("/admin/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    for empty in ("No offers made or accepted", "No outcomes recorded", "No satisfaction ratings", "Nothing learned"):
        assert empty not in page
    assert 'id="escalation-open"><span class="number">2<' in page
    assert 'id="escalation-overdue"><span class="number">1<' in page

    # The second run (every `make run`) finds it and adds nothing.
    again = load_demo()
    assert "Demo history: already loaded (60 demo customers); nothing added." in again
    assert OfferSet.objects.count() == OFFER_SETS
    assert reports() == figures


def test_no_history_and_no_users_load_none(frozen: None) -> None:
    assert "Demo history" not in load_demo("--no-history")
    assert "Demo history" not in load_demo("--no-users")
    assert not Customer.objects.exists()
    assert not OfferSet.objects.exists()

    load_demo()  # a later run without the flag loads it
    assert OfferSet.objects.count() == OFFER_SETS


def test_the_history_asks_for_offer_sets_as_the_api_would_accept_them(demo_pack: None) -> None:
    """Every request the replay makes is valid API input, and what validation makes of it is what the
    replay passes (the serializer's own defaults and clean-ups change nothing)."""
    index = policy_index_get()
    plan = history_plan()
    assert len(plan.customers) == CUSTOMERS
    assert len(plan.incidents) == OFFER_SETS
    with time_machine.travel(NOW, tick=False):
        for incident in plan.incidents:
            request = offer_set_request(incident, plan.customers[incident.customer], when=NOW - incident.ago)
            body = json.loads(json.dumps(request, cls=DjangoJSONEncoder))  # as a client would post it
            validated = offer_set_input_validate(body, index=index)
            assert validated["incident"].pop("category").slug == request["incident"].pop("category")
            assert validated == request


def test_the_plan_is_the_same_on_every_call() -> None:
    assert history_plan() == history_plan()
    assert history_plan(seed=16) != history_plan()


def test_the_history_is_the_same_on_every_fresh_database() -> None:
    """Two loads at the same instant, each in a database of its own (the history's transaction rolled back
    between; the pack and users loaded first, so their ids are the same for both), give the same figures in
    every report."""

    class Rollback(Exception):
        pass

    seen = []
    with time_machine.travel(NEW_YEAR, tick=False):
        load_demo("--no-history")
        for _ in range(2):
            try:
                with transaction.atomic():
                    load_demo()
                    seen.append(reports())
                    assert Escalation.objects.filter(status__in=OPEN).count() == 2
                    raise Rollback
            except Rollback:
                pass
            assert not OfferSet.objects.exists()

    first, second = seen
    assert first["summary"]["offer_sets"] == OFFER_SETS  # the 30 days reach back over the year's end
    assert first["summary"]["since"] == "2024-12-03"
    assert first == second
