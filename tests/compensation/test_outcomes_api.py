"""The outcome endpoint's contract (README, "Recording what the customer chose"; the OpenAPI schema): the 202 body,
identical repeats, conflicts, validation writing nothing, expiry, budgets, permissions,
``Idempotency-Key``, the outcome as ``GET`` shows it, approvals, and the query count.

Tasks run eagerly (tests/settings.py): an outcome is recorded when the transaction's
on_commit callbacks run, which ``django_capture_on_commit_callbacks`` makes happen.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from compensation.models import (
    BudgetCharge,
    Coupon,
    CreditEntry,
    Escalation,
    FollowUp,
    IdempotencyRecord,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
)
from compensation.periods import month_start
from compensation.serializers import OutcomeAcceptedSerializer, OutcomeOutputSerializer
from policies.choices import OfferKind
from policies.models import Policy
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/offer-sets/"
ESCALATIONS = "/api/v1/escalations/"
DEMO_PACK = Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"
COUPON = re.compile(r"^RCV(-[0-9A-HJKMNP-TV-Z]{4}){4}$")
ACCEPTED_KEYS = {"status", "submission_id", "choice"}
OUTCOME_KEYS = {
    "choice",
    "status",
    "submitted_at",
    "recorded_at",
    "offer",
    "coupon_code",
    "satisfaction",
    "follow_up_due_at",
}
WRITTEN = (OutcomeSubmission, Outcome, BudgetCharge, PolicyMonthSpend, Coupon, CreditEntry, FollowUp, Escalation)

# Measured for an option whose policy caps each customer: the token (with the role), the set's offers, the
# policy revision, the customer lock, the customer's 30-day sum, the month upsert, the charge and the
# submission inserts, and the savepoints the test's transaction makes of atomic blocks. PostgreSQL first tries the
# one-statement path, which a per-customer cap turns down (that statement and its savepoint pair).
OUTCOME_QUERIES_OBSERVED = {"postgresql": 14, "sqlite": 12}
OUTCOME_QUERIES_MAX = OUTCOME_QUERIES_OBSERVED[connection.vendor] + 1
# Without a per-customer cap, on PostgreSQL the check, the charge, the charge row and the submission are
# one statement (the token with the role, that statement and two savepoints); SQLite takes the long way.
UNCAPPED_QUERIES_OBSERVED = {"postgresql": 4, "sqlite": 10}


# --- Helpers ---------------------------------------------------------------------------------


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def set_body(external_id: str = "C-1", *, customer: dict[str, Any] | None = None, **incident: Any) -> dict[str, Any]:
    """A severity-3 late delivery of 80.00: the demo pack shows free_shipping, gift and percent_discount."""
    return {
        "customer": {
            "external_id": external_id,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            **(customer or {}),
        },
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00", **incident},
    }


def created(client: Any, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post(URL, data, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def outcome_url(offer_set_id: str) -> str:
    return f"{URL}{offer_set_id}/outcome/"


def post_outcome(client: Any, offer_set_id: str, data: Any, **extra: Any) -> Any:
    return client.post(outcome_url(offer_set_id), data, format="json", **extra)


def accepted(client: Any, offer_set_id: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = post_outcome(client, offer_set_id, data, **extra)
    assert response.status_code == 202, response.content
    return response.json()


def detail(client: Any, offer_set_id: str) -> dict[str, Any]:
    response = client.get(f"{URL}{offer_set_id}/")
    assert response.status_code == 200, response.content
    return response.json()


def label_of(offer_set: dict[str, Any], kind: str) -> str:
    return next(o["label"] for o in offer_set["options"] if o["kind"] == kind)


def option(offer_set: dict[str, Any], label: str) -> dict[str, Any]:
    return next(o for o in offer_set["options"] if o["label"] == label)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


def total_spent() -> Decimal:
    return PolicyMonthSpend.objects.aggregate(total=Sum("spent"))["total"] or Decimal("0")


def expire(offer_set_id: str) -> None:
    OfferSet.objects.filter(pk=offer_set_id).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def demo_pack(db: None) -> None:
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def agent(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


@pytest.fixture
def manager(client_for: Any) -> Any:
    return client_for("manager", "manager-1")


@pytest.fixture
def offer_set(demo_pack: None, agent: Any) -> dict[str, Any]:
    data = created(agent, set_body())
    assert {o["kind"] for o in data["options"]} == {"free_shipping", "gift", "percent_discount"}
    return data


# --- 202 -------------------------------------------------------------------------------------


def test_accepted_outcome_is_202_with_status_submission_id_and_choice(agent: Any, offer_set: dict) -> None:
    response = post_outcome(agent, offer_set["id"], {"choice": "b", "satisfaction": 4, "notes": "Chose the gift"})

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) >= ACCEPTED_KEYS
    assert set(data) <= set(OutcomeAcceptedSerializer().fields), "a key the OpenAPI schema does not describe"
    assert (data["status"], data["choice"]) == ("accepted", "b")
    submission = OutcomeSubmission.objects.get()
    assert data["submission_id"] == str(uuid.UUID(data["submission_id"])) == str(submission.pk)
    assert (submission.choice, submission.satisfaction, submission.notes) == ("b", 4, "Chose the gift")
    assert submission.status == OutcomeSubmission.Status.PENDING


@pytest.mark.parametrize("choice", ["A", " a ", "DECLINED"])
def test_choice_is_read_without_case_or_surrounding_spaces(agent: Any, offer_set: dict, choice: str) -> None:
    data = accepted(agent, offer_set["id"], {"choice": choice})

    assert data["choice"] == choice.strip().lower()


def test_posting_the_outcome_records_it_once_the_transaction_commits(
    agent: Any, offer_set: dict, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        data = accepted(agent, offer_set["id"], {"choice": "a"})

    submission = OutcomeSubmission.objects.get(pk=data["submission_id"])
    assert submission.status == OutcomeSubmission.Status.RECORDED
    assert Outcome.objects.get().submission == submission


# --- The same choice again, another choice -----------------------------------------------------------


def test_the_same_choice_again_is_202_with_the_same_submission_and_nothing_charged_twice(
    agent: Any, offer_set: dict, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = accepted(agent, offer_set["id"], {"choice": "a"})
    spent, before = total_spent(), row_counts()
    assert spent == Decimal(option(offer_set, "a")["estimated_cost"])
    assert before["BudgetCharge"] == before["Outcome"] == 1

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = accepted(agent, offer_set["id"], {"choice": "a"})

    assert again["submission_id"] == first["submission_id"]
    assert again["choice"] == "a"
    assert callbacks == []  # nothing sent to the worker again
    assert total_spent() == spent
    assert row_counts() == before


def test_the_same_choice_while_still_pending_is_the_same_submission(agent: Any, offer_set: dict) -> None:
    first = accepted(agent, offer_set["id"], {"choice": "c"})
    again = accepted(agent, offer_set["id"], {"choice": "c"})

    assert again["submission_id"] == first["submission_id"]
    assert BudgetCharge.objects.count() == OutcomeSubmission.objects.count() == 1


def test_the_same_choice_after_the_set_expired_is_still_202(agent: Any, offer_set: dict) -> None:
    first = accepted(agent, offer_set["id"], {"choice": "b"})
    expire(offer_set["id"])
    spent = total_spent()

    again = accepted(agent, offer_set["id"], {"choice": "b"})

    assert again["submission_id"] == first["submission_id"]
    assert total_spent() == spent
    assert BudgetCharge.objects.count() == 1


@pytest.mark.parametrize(("first", "second"), [("a", "b"), ("a", "declined"), ("declined", "c"), ("c", "a")])
def test_a_different_choice_is_409_outcome_exists_and_changes_nothing(
    agent: Any, offer_set: dict, first: str, second: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        accepted(agent, offer_set["id"], {"choice": first})
    before, spent = row_counts(), total_spent()

    response = post_outcome(agent, offer_set["id"], {"choice": second})

    assert response.status_code == 409
    assert response.json()["code"] == "outcome_exists"
    assert set(response.json()) == {"detail", "code"}
    assert row_counts() == before
    assert total_spent() == spent
    assert detail(agent, offer_set["id"])["outcome"]["choice"] == first


# --- 400: labels and bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["d", "z", "ab", "none"])
def test_a_label_the_set_does_not_have_is_400_naming_the_valid_ones(agent: Any, offer_set: dict, choice: str) -> None:
    before = row_counts()

    response = post_outcome(agent, offer_set["id"], {"choice": choice})

    assert response.status_code == 400
    message = response.json()["choice"][0]
    assert "a, b, c, declined" in message
    assert row_counts() == before


def test_a_label_beyond_the_options_of_a_smaller_set_is_400(db: None, agent: Any) -> None:
    category = CategoryFactory(slug="late_delivery")
    policy = PolicyFactory(categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))
    OfferTemplateFactory(policy=policy, kind=OfferKind.GIFT, value=Decimal("20.00"), cost=Decimal("8.00"))
    offer_set = created(agent, set_body())
    assert [o["label"] for o in offer_set["options"]] == ["a", "b"]

    response = post_outcome(agent, offer_set["id"], {"choice": "c"})

    assert response.status_code == 400
    assert "a, b, declined" in response.json()["choice"][0]
    assert not OutcomeSubmission.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "choice"),
        ({"choice": ""}, "choice"),
        ({"choice": None}, "choice"),
        ({"choice": "a", "satisfaction": 0}, "satisfaction"),
        ({"choice": "a", "satisfaction": 6}, "satisfaction"),
        ({"choice": "a", "satisfaction": -1}, "satisfaction"),
        ({"choice": "a", "satisfaction": "x"}, "satisfaction"),
        ({"choice": "a", "satisfaction": 2.5}, "satisfaction"),
        ({"choice": "a", "notes": "x" * 2001}, "notes"),
        ({"choice": "a", "notes": None}, "notes"),
    ],
)
def test_an_invalid_body_is_400_under_its_field_and_writes_nothing(
    agent: Any, offer_set: dict, data: dict, field: str
) -> None:
    before, spent = row_counts(), total_spent()

    response = post_outcome(agent, offer_set["id"], data)

    assert response.status_code == 400
    assert field in response.json()
    assert row_counts() == before
    assert total_spent() == spent


@pytest.mark.parametrize("payload", [["a"], "a", 1, None])
def test_a_body_that_is_not_an_object_is_400(agent: Any, offer_set: dict, payload: Any) -> None:
    response = post_outcome(agent, offer_set["id"], payload)

    assert response.status_code == 400
    assert isinstance(response.json(), dict)  # DRF's {"field": [...]} shape, never a bare list
    assert not OutcomeSubmission.objects.exists()


@pytest.mark.parametrize(
    "extra",
    [{"satisfaction": 1}, {"satisfaction": 5}, {"satisfaction": None}, {"notes": "x" * 2000}, {"notes": ""}],
)
def test_inputs_at_the_limits_are_accepted(agent: Any, offer_set: dict, extra: dict) -> None:
    accepted(agent, offer_set["id"], {"choice": "a", **extra})

    submission = OutcomeSubmission.objects.get()
    for name, value in extra.items():
        assert getattr(submission, name) == value


# --- 409: expiry and budgets ----------------------------------------------------------------------


def test_an_expired_set_is_409_expired_and_writes_nothing(agent: Any, offer_set: dict) -> None:
    expire(offer_set["id"])
    before = row_counts()

    response = post_outcome(agent, offer_set["id"], {"choice": "a"})

    assert response.status_code == 409
    assert response.json()["code"] == "expired"
    assert row_counts() == before


def _short_of_budget(how: str, policy: Policy, customer_id: int, cost: Decimal, *, spare: Decimal) -> None:
    """Leave ``spare`` less than ``cost`` (negative: more than enough) under the monthly or customer cap."""
    now = timezone.now()
    if how == "monthly":
        PolicyMonthSpend.objects.create(
            policy=policy, month=month_start(now), spent=policy.monthly_cap - cost + spare, cap=policy.monthly_cap
        )
    else:
        BudgetCharge.objects.create(
            policy=policy,
            customer_id=customer_id,
            amount=policy.per_customer_cap_30d - cost + spare,
            created_at=now - timedelta(days=1),
            month=month_start(now),
        )


@pytest.mark.parametrize("how", ["monthly", "customer"])
def test_a_budget_that_cannot_cover_the_option_is_409_budget_exhausted_and_writes_nothing(
    agent: Any, offer_set: dict, how: str
) -> None:
    chosen = option(offer_set, label_of(offer_set, "free_shipping"))
    policy = Policy.objects.get(pk=chosen["policy"]["id"])
    customer_id = OfferSet.objects.get(pk=offer_set["id"]).customer_id
    _short_of_budget(how, policy, customer_id, Decimal(chosen["estimated_cost"]), spare=Decimal("0.01"))
    before, spent = row_counts(), total_spent()

    response = post_outcome(agent, offer_set["id"], {"choice": chosen["label"]})

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "budget_exhausted"
    assert "new options" in body["detail"]
    assert row_counts() == before
    assert total_spent() == spent
    assert detail(agent, offer_set["id"])["outcome"] is None


@pytest.mark.parametrize("how", ["monthly", "customer"])
def test_a_budget_with_exactly_the_cost_left_accepts_it(agent: Any, offer_set: dict, how: str) -> None:
    chosen = option(offer_set, label_of(offer_set, "free_shipping"))
    policy = Policy.objects.get(pk=chosen["policy"]["id"])
    customer_id = OfferSet.objects.get(pk=offer_set["id"]).customer_id
    _short_of_budget(how, policy, customer_id, Decimal(chosen["estimated_cost"]), spare=Decimal("0"))

    accepted(agent, offer_set["id"], {"choice": chosen["label"]})

    if how == "monthly":
        assert PolicyMonthSpend.objects.get(policy=policy).spent == policy.monthly_cap


def test_declined_is_recorded_without_charging_any_budget(
    agent: Any, offer_set: dict, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        accepted(agent, offer_set["id"], {"choice": "declined", "satisfaction": 2})

    outcome = Outcome.objects.get()
    assert (outcome.choice, outcome.accepted, outcome.kind, outcome.cost) == ("declined", False, "", Decimal("0"))
    assert outcome.offer is None
    assert not BudgetCharge.objects.exists()
    assert total_spent() == Decimal("0")
    assert not Coupon.objects.exists()
    assert not CreditEntry.objects.exists()
    shown = detail(agent, offer_set["id"])["outcome"]
    assert (shown["status"], shown["offer"], shown["coupon_code"], shown["satisfaction"]) == (
        "recorded",
        None,
        None,
        2,
    )


# --- Permissions ---------------------------------------------------------------------------------------


def test_another_agents_set_is_404_like_an_unknown_one(offer_set: dict, client_for: Any) -> None:
    other = client_for("agent", "agent-2")

    response = post_outcome(other, offer_set["id"], {"choice": "a"})
    unknown = post_outcome(other, str(uuid.uuid4()), {"choice": "a"})

    assert response.status_code == unknown.status_code == 404
    assert response.json() == unknown.json()
    assert response.json()["code"] == "not_found"
    assert not OutcomeSubmission.objects.exists()


def test_an_analyst_is_403(offer_set: dict, client_for: Any) -> None:
    response = post_outcome(client_for("analyst", "analyst-1"), offer_set["id"], {"choice": "a"})

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not OutcomeSubmission.objects.exists()


@pytest.mark.parametrize("credentials", [{}, {"HTTP_AUTHORIZATION": "Token not-a-real-token"}])
def test_no_or_a_bad_token_is_401(offer_set: dict, api_client: Any, credentials: dict) -> None:
    api_client.credentials(**credentials)

    response = post_outcome(api_client, offer_set["id"], {"choice": "a"})

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    assert not OutcomeSubmission.objects.exists()


def test_a_manager_may_post_the_outcome_of_any_agents_set(
    offer_set: dict, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        data = accepted(manager, offer_set["id"], {"choice": "b"})

    submission = OutcomeSubmission.objects.get(pk=data["submission_id"])
    assert submission.submitted_by.username == "manager-1"
    assert submission.status == OutcomeSubmission.Status.RECORDED
    assert Outcome.objects.get().agent.username == "agent-1"  # the set's agent, for the agents report


# --- Idempotency-Key ---------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_202_and_writes_nothing_more(agent: Any, offer_set: dict) -> None:
    first = post_outcome(agent, offer_set["id"], {"choice": "a", "notes": "n"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202
    before = row_counts()

    again = post_outcome(agent, offer_set["id"], {"notes": "n", "choice": "a"}, HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert row_counts() == before
    assert IdempotencyRecord.objects.count() == 1


def test_the_same_key_with_another_body_is_409(agent: Any, offer_set: dict) -> None:
    accepted(agent, offer_set["id"], {"choice": "a"}, HTTP_IDEMPOTENCY_KEY="k-1")
    before = row_counts()

    response = post_outcome(agent, offer_set["id"], {"choice": "a", "satisfaction": 5}, HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert row_counts() == before


def test_a_rejected_outcome_does_not_use_up_its_key(agent: Any, offer_set: dict) -> None:
    bad = post_outcome(agent, offer_set["id"], {"choice": "a", "satisfaction": 9}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert bad.status_code == 400

    accepted(agent, offer_set["id"], {"choice": "a", "satisfaction": 3}, HTTP_IDEMPOTENCY_KEY="k-1")

    assert OutcomeSubmission.objects.get().satisfaction == 3


# --- GET shows the outcome ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "has_coupon"), [("free_shipping", True), ("percent_discount", True), ("gift", False)])
def test_detail_shows_the_outcome_pending_then_recorded(
    agent: Any, offer_set: dict, kind: str, has_coupon: bool, django_capture_on_commit_callbacks: Any
) -> None:
    label = label_of(offer_set, kind)
    with django_capture_on_commit_callbacks() as callbacks:
        accepted(agent, offer_set["id"], {"choice": label, "satisfaction": 4, "notes": "Happy with it"})

    pending = detail(agent, offer_set["id"])["outcome"]
    assert set(pending) >= OUTCOME_KEYS
    assert set(pending) <= set(OutcomeOutputSerializer().fields)
    assert (pending["choice"], pending["status"], pending["satisfaction"]) == (label, "pending", 4)
    assert (pending["recorded_at"], pending["coupon_code"], pending["follow_up_due_at"]) == (None, None, None)
    assert pending["offer"] == option(offer_set, label)  # the chosen option as shown, with its label
    assert abs(parse(pending["submitted_at"]) - timezone.now()) < timedelta(minutes=1)

    for callback in callbacks:
        callback()

    recorded = detail(agent, offer_set["id"])["outcome"]
    assert (recorded["status"], recorded["satisfaction"]) == ("recorded", 4)
    assert recorded["offer"] == option(offer_set, label)
    assert recorded["submitted_at"] == pending["submitted_at"]
    recorded_at = parse(recorded["recorded_at"])
    assert recorded_at >= parse(recorded["submitted_at"])
    assert timedelta(0) < parse(recorded["follow_up_due_at"]) - recorded_at <= timedelta(hours=24)
    if has_coupon:
        assert COUPON.match(recorded["coupon_code"]), recorded["coupon_code"]
        assert Coupon.objects.get().code == recorded["coupon_code"]
    else:
        assert recorded["coupon_code"] is None
    assert recorded_at.tzinfo == UTC
    assert recorded["recorded_at"].endswith("Z")


def test_the_list_shows_the_same_outcome_as_the_detail(
    agent: Any, offer_set: dict, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        accepted(agent, offer_set["id"], {"choice": "a"})

    listed = agent.get(URL).json()["results"]

    assert [item["outcome"] for item in listed] == [detail(agent, offer_set["id"])["outcome"]]


# --- Approval ----------------------------------------------------------------------------------------


@pytest.fixture
def costly_pack(db: None) -> Policy:
    """One policy, three kinds: a 150.00 credit (above the agents' 100.00 limit), a cheap free shipping,
    and a gift whose template asks for approval whatever it costs."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[category], monthly_cap=Decimal("1000.00"))
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("150.00"), order=0)
    OfferTemplateFactory(
        policy=policy,
        kind=OfferKind.FREE_SHIPPING,
        title="Free shipping",
        value=Decimal("9.00"),
        cost=Decimal("5.00"),
        order=1,
    )
    OfferTemplateFactory(
        policy=policy,
        kind=OfferKind.GIFT,
        title="A gift",
        value=Decimal("20.00"),
        cost=Decimal("8.00"),
        requires_approval=True,
        order=2,
    )
    return policy


def _awaiting(
    agent: Any, kind: str, django_capture_on_commit_callbacks: Any
) -> tuple[dict[str, Any], dict[str, Any], Escalation]:
    offer_set = created(agent, set_body())
    with django_capture_on_commit_callbacks(execute=True):
        data = accepted(agent, offer_set["id"], {"choice": label_of(offer_set, kind), "satisfaction": 5})
    return offer_set, data, Escalation.objects.get(kind=Escalation.Kind.APPROVAL)


@pytest.mark.parametrize(
    ("kind", "why"),
    [("fixed_credit", "above agent-1's limit of 100.00 per option"), ("gift", "asks for a manager's approval")],
)
def test_an_agent_choosing_an_option_that_requires_approval_waits_for_a_manager(
    costly_pack: Policy, agent: Any, kind: str, why: str, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set, data, approval = _awaiting(agent, kind, django_capture_on_commit_callbacks)

    assert option(offer_set, label_of(offer_set, kind))["requires_approval"] is True
    assert data["status"] == "accepted"
    assert data["outcome_status"] == "awaiting_approval"
    assert not Outcome.objects.exists()  # the worker was not asked to record it
    shown = detail(agent, offer_set["id"])["outcome"]
    assert (shown["status"], shown["recorded_at"], shown["approval"]) == ("awaiting_approval", None, approval.pk)
    assert (approval.status, str(approval.offer_set_id), approval.policy_id) == (
        "open",
        offer_set["id"],
        costly_pack.pk,
    )
    assert why in approval.reason
    assert "agent-1" in approval.reason
    assert BudgetCharge.objects.get().released_at is None  # held while the manager decides


def test_the_cheap_option_of_the_same_set_needs_no_approval(
    costly_pack: Policy, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set = created(agent, set_body())
    assert option(offer_set, label_of(offer_set, "free_shipping"))["requires_approval"] is False

    with django_capture_on_commit_callbacks(execute=True):
        accepted(agent, offer_set["id"], {"choice": label_of(offer_set, "free_shipping")})

    assert not Escalation.objects.exists()
    assert detail(agent, offer_set["id"])["outcome"]["status"] == "recorded"


def test_a_managers_approval_lets_the_outcome_be_recorded(
    costly_pack: Policy, agent: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set, _, approval = _awaiting(agent, "fixed_credit", django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(f"{ESCALATIONS}{approval.pk}/approve/")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["assigned_to"]) == ("approved", "manager-1")
    assert body["resolved_at"] is not None
    shown = detail(agent, offer_set["id"])["outcome"]
    assert (shown["status"], shown["satisfaction"]) == ("recorded", 5)
    assert CreditEntry.objects.get().amount == Decimal("150.00")
    assert total_spent() == Decimal("150.00")


@pytest.mark.parametrize("kind", ["fixed_credit", "gift"])
def test_a_managers_rejection_releases_the_budget_and_the_agent_may_choose_again(
    costly_pack: Policy, agent: Any, manager: Any, kind: str, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set, _, approval = _awaiting(agent, kind, django_capture_on_commit_callbacks)
    cost = Decimal(option(offer_set, label_of(offer_set, kind))["estimated_cost"])
    assert total_spent() == cost

    response = manager.post(f"{ESCALATIONS}{approval.pk}/reject/", {"reason": "Too generous"}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolution"]) == ("rejected", "Too generous")
    assert total_spent() == Decimal("0")
    assert BudgetCharge.objects.get().released_at is not None
    assert detail(agent, offer_set["id"])["outcome"]["status"] == "rejected"
    assert not Outcome.objects.exists()

    cheap = label_of(offer_set, "free_shipping")
    with django_capture_on_commit_callbacks(execute=True):
        again = accepted(agent, offer_set["id"], {"choice": cheap})

    assert again["submission_id"] != str(OutcomeSubmission.objects.get(status="rejected").pk)
    shown = detail(agent, offer_set["id"])["outcome"]
    assert (shown["choice"], shown["status"]) == (cheap, "recorded")
    assert total_spent() == Decimal("5.00")


def test_after_a_rejection_the_agent_may_choose_again_even_once_the_set_expired(
    costly_pack: Policy, agent: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set, _, approval = _awaiting(agent, "fixed_credit", django_capture_on_commit_callbacks)
    expire(offer_set["id"])  # the manager took longer than the set's hour
    assert manager.post(f"{ESCALATIONS}{approval.pk}/reject/", {"reason": "No"}, format="json").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        accepted(agent, offer_set["id"], {"choice": "declined"})

    assert detail(agent, offer_set["id"])["outcome"]["status"] == "recorded"


def test_an_expired_set_without_a_rejection_stays_closed(
    costly_pack: Policy, agent: Any, django_capture_on_commit_callbacks: Any
) -> None:
    offer_set = created(agent, set_body())
    expire(offer_set["id"])

    response = post_outcome(agent, offer_set["id"], {"choice": "declined"})

    assert (response.status_code, response.json()["code"]) == (409, "expired")


def test_a_rejection_needs_a_reason_and_changes_nothing_without_one(
    costly_pack: Policy, agent: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _, _, approval = _awaiting(agent, "fixed_credit", django_capture_on_commit_callbacks)

    for data in ({}, {"reason": ""}):
        response = manager.post(f"{ESCALATIONS}{approval.pk}/reject/", data, format="json")
        assert response.status_code == 400
        assert "reason" in response.json()

    approval.refresh_from_db()
    assert approval.status == "open"
    assert BudgetCharge.objects.get().released_at is None


@pytest.mark.parametrize("creator", ["agent", "manager"])
@pytest.mark.parametrize("kind", ["fixed_credit", "gift"])
def test_a_manager_choosing_the_same_option_never_needs_approval(
    costly_pack: Policy,
    agent: Any,
    manager: Any,
    creator: str,
    kind: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    offer_set = created(agent if creator == "agent" else manager, set_body())

    with django_capture_on_commit_callbacks(execute=True):
        data = accepted(manager, offer_set["id"], {"choice": label_of(offer_set, kind)})

    assert data["outcome_status"] == "pending"
    assert not Escalation.objects.exists()
    assert detail(manager, offer_set["id"])["outcome"]["status"] == "recorded"


def test_a_set_a_manager_asked_for_shows_the_costly_option_without_approval(costly_pack: Policy, manager: Any) -> None:
    offer_set = created(manager, set_body())

    assert option(offer_set, label_of(offer_set, "fixed_credit"))["requires_approval"] is False
    assert option(offer_set, label_of(offer_set, "gift"))["requires_approval"] is True  # the template says so


@pytest.mark.parametrize(("limit", "needs_approval"), [("149.99", True), ("150.00", False), ("1000.00", False)])
def test_approval_is_needed_only_above_the_agent_approval_limit(
    costly_pack: Policy, agent: Any, settings: Any, limit: str, needs_approval: bool
) -> None:
    settings.AGENT_APPROVAL_LIMIT = Decimal(limit)
    offer_set = created(agent, set_body())
    label = label_of(offer_set, "fixed_credit")

    data = accepted(agent, offer_set["id"], {"choice": label})

    assert option(offer_set, label)["requires_approval"] is needs_approval
    assert (data["outcome_status"] == "awaiting_approval") is needs_approval
    assert Escalation.objects.filter(kind="approval").exists() is needs_approval


# --- Query count --------------------------------------------------------------------------------------


def test_the_outcome_post_costs_a_fixed_few_queries(
    agent: Any, offer_set: dict, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(OUTCOME_QUERIES_MAX):
        accepted(agent, offer_set["id"], {"choice": "a", "satisfaction": 4, "notes": "ok"})


def test_an_outcome_without_a_customer_cap_costs_fewer_queries(
    db: None, agent: Any, django_assert_max_num_queries: Any
) -> None:
    category = CategoryFactory(slug="late_delivery")
    policy = PolicyFactory(categories=[category], monthly_cap=Decimal("1000.00"), per_customer_cap_30d=None)
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))
    offer_set = created(agent, set_body())

    with django_assert_max_num_queries(UNCAPPED_QUERIES_OBSERVED[connection.vendor] + 1):
        accepted(agent, offer_set["id"], {"choice": "a"})

    assert PolicyMonthSpend.objects.get(policy=policy).spent == Decimal("10.00")
    assert OutcomeSubmission.objects.get().charge.amount == Decimal("10.00")
