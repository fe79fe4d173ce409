"""Nothing stuck forever (README, "Failed outcome submissions"): a submission whose recording keeps failing is
retried until ``OUTCOME_MAX_ATTEMPTS``, then ``failed`` with its last error, no longer sent again, and the
managers are e-mailed once. A failed one counts as pending (budget, monthly totals, ``outcome_exists``); the
admin's "Retry" records it exactly once once the fault is gone, and "Release" gives its budget back.

The fault is a persistent database error inside the recording transaction, after the outcome rows are
written, so each attempt rolls back; tasks run eagerly (tests/settings.py), retries included.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.core import mail
from django.db import DatabaseError
from django.db.models import Sum
from django.urls import reverse

from compensation.authority import month_chosen_total
from compensation.models import (
    AuthorityLimit,
    BudgetCharge,
    FollowUp,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
)
from compensation.services import outcomes
from compensation.services.outcomes import (
    ERROR_MAX_CHARS,
    error_text,
    outcome_failure_notify,
    outcome_record,
    outcome_submission_release,
    outcome_submission_retry,
    outcome_submissions_requeue,
)
from policies.choices import OfferKind
from policies.models import Policy
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

URL = "/api/v1/offer-sets/"
MID_MONTH = datetime(2031, 5, 14, 15, 0, tzinfo=UTC)
CHANGELIST = "admin:compensation_outcomesubmission_changelist"
FAILED = OutcomeSubmission.Status.FAILED
PENDING = OutcomeSubmission.Status.PENDING
RECORDED = OutcomeSubmission.Status.RECORDED
REJECTED = OutcomeSubmission.Status.REJECTED
FAULT = "could not write block 4711 of relation 16384: No space left on device"


@pytest.fixture
def policy(db: None) -> Policy:
    """A 30.00 credit and a 10.00 gift, under a monthly budget of 500.00."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[category], monthly_cap=Decimal("500.00"))
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("30.00"), order=0)
    OfferTemplateFactory(policy=policy, kind=OfferKind.GIFT, title="A gift", value=Decimal("10.00"), order=1)
    return policy


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    """Two managers with an e-mail, one without, one inactive; the agents' e-mails must not be used."""
    made = {}
    for name, role, email, active in [
        ("manager-1", "manager", "m1@example.com", True),
        ("manager-2", "manager", "m2@example.com", True),
        ("manager-3", "manager", "", True),
        ("manager-4", "manager", "gone@example.com", False),
        ("agent-1", "agent", "agent@example.com", True),
    ]:
        user, key = make_user(name, role)
        user.email, user.is_active = email, active
        user.save()
        made[name] = (user, key)
    return made


@pytest.fixture
def agent(people: dict[str, Any]) -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {people['agent-1'][1]}")
    return client


def created(client: Any, external_id: str = "C-1") -> dict[str, Any]:
    body = {
        "customer": {"external_id": external_id, "name": "Ada Lovelace", "email": "ada@example.com"},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
    }
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def label(offer_set: dict[str, Any], kind: str) -> str:
    return next(o["label"] for o in offer_set["options"] if o["kind"] == kind)


def post_choice(client: Any, offer_set: dict[str, Any], choice: str) -> Any:
    return client.post(f"{URL}{offer_set['id']}/outcome/", {"choice": choice}, format="json")


class Fault:
    """A persistent database error in the recording transaction, for the offer sets in ``sets``: raised
    while the follow-ups are made, after the outcome rows and the "recorded" mark were written."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sets: set[str] = set()
        self.raised = 0
        self.error: type[Exception] = DatabaseError
        follow_ups = outcomes._follow_ups

        def failing(outcome: Outcome, now: Any) -> list[FollowUp]:
            if str(outcome.offer_set_id) in self.sets:
                self.raised += 1
                raise self.error(FAULT)
            return follow_ups(outcome, now)

        monkeypatch.setattr(outcomes, "_follow_ups", failing)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Fault:
    return Fault(monkeypatch)


def spent() -> Decimal:
    return PolicyMonthSpend.objects.aggregate(total=Sum("spent"))["total"] or Decimal("0")


def sweep(capture: Any, now: Any) -> int:
    """The periodic requeue at ``now``, its tasks run (eagerly: each recording tried once, its failure counted)."""
    with capture(execute=True):
        return outcome_submissions_requeue(now=now)


def poisoned(
    agent: Any, fault: Fault, capture: Any, *, kind: str = "fixed_credit", external_id: str = "C-1"
) -> tuple[dict[str, Any], OutcomeSubmission]:
    """An offer set whose chosen option cannot be recorded, posted through the API, tried by the worker when
    accepted and then by the requeue every OUTCOME_REQUEUE_AFTER_SECONDS until it is failed."""
    offer_set = created(agent, external_id)
    fault.sets.add(offer_set["id"])
    with capture(execute=True):
        response = post_choice(agent, offer_set, label(offer_set, kind))
    assert response.status_code == 202, response.content
    submission = OutcomeSubmission.objects.get(pk=response.json()["submission_id"])
    return offer_set, swept_until_failed(submission, capture, since=submission.submitted_at)


def swept_until_failed(submission: OutcomeSubmission, capture: Any, *, since: Any) -> OutcomeSubmission:
    """Run the requeue every OUTCOME_REQUEUE_AFTER_SECONDS after ``since`` while the submission is retried:
    one attempt already made, each sweep makes one more, until the last allowed one fails it."""
    step = timedelta(seconds=settings.OUTCOME_REQUEUE_AFTER_SECONDS + 1)
    for n in range(1, settings.OUTCOME_MAX_ATTEMPTS):
        assert OutcomeSubmission.objects.get(pk=submission.pk).attempts == n
        assert sweep(capture, since + n * step) == 1
    submission.refresh_from_db()
    return submission


# --- Retried until OUTCOME_MAX_ATTEMPTS, then failed, and the managers told once -----------------------


@pytest.mark.django_db(transaction=True)
def test_a_poison_submission_is_retried_until_the_limit_then_failed_and_the_managers_are_told_once(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings.OUTCOME_MAX_ATTEMPTS == 8  # the default
    offer_set, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)

    assert fault.raised == 8  # when accepted, then at each sweep: each attempt counted
    assert submission.status == FAILED
    assert submission.attempts == 8
    assert submission.last_error == f"django.db.utils.DatabaseError: {FAULT}"
    assert submission.failed_at is not None
    assert submission.recorded_at is None
    assert not Outcome.objects.exists()  # every attempt rolled back
    assert not FollowUp.objects.exists()
    # One e-mail, to the active managers with an address, naming the set and the error.
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["m1@example.com", "m2@example.com"]
    assert offer_set["id"] in message.subject
    assert FAULT in message.body
    assert all(action in message.body for action in ('"Retry"', '"Release"'))
    assert submission.failure_notified_at is not None

    # Not sent again by the periodic sweep, however late, nor recorded by a stray delivery; no second e-mail.
    sent: list[Any] = []
    monkeypatch.setattr(outcomes, "outcome_enqueue", sent.append)
    for hours in (1, 2, 24):
        assert sweep(django_capture_on_commit_callbacks, submission.failed_at + timedelta(hours=hours)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert outcome_record(submission_id=submission.pk) is None
        assert outcome_failure_notify(submission_id=submission.pk) is False
    assert sent == []
    assert fault.raised == 8
    assert len(mail.outbox) == 1

    # The API shows it failed.
    shown = agent.get(f"{URL}{offer_set['id']}/").json()["outcome"]
    assert (shown["status"], shown["recorded_at"], shown["coupon_code"]) == ("failed", None, None)


@pytest.mark.django_db
def test_each_failed_attempt_counts_and_keeps_the_last_error(
    policy: Policy, agent: Any, people: dict[str, Any], fault: Fault, settings: Any
) -> None:
    settings.OUTCOME_MAX_ATTEMPTS = 3
    offer_set = created(agent)
    fault.sets.add(offer_set["id"])
    submission_id = post_choice(agent, offer_set, label(offer_set, "gift")).json()["submission_id"]

    for attempt in (1, 2):
        with pytest.raises(DatabaseError):
            outcome_record(submission_id=submission_id)
        submission = OutcomeSubmission.objects.get(pk=submission_id)
        assert (submission.status, submission.attempts, submission.failed_at) == (PENDING, attempt, None)
        assert submission.last_error == f"django.db.utils.DatabaseError: {FAULT}"

    with pytest.raises(DatabaseError):
        outcome_record(submission_id=submission_id)
    submission = OutcomeSubmission.objects.get(pk=submission_id)
    assert (submission.status, submission.attempts) == (FAILED, 3)
    assert not Outcome.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("error", [DatabaseError, KeyError], ids=["database error", "a bug"])
def test_a_batch_that_fails_is_not_pinned_on_the_others_in_it(
    policy: Policy, agent: Any, people: dict[str, Any], fault: Fault, error: type[Exception]
) -> None:
    fault.error = error
    good_set, bad_set = created(agent, "C-1"), created(agent, "C-2")
    fault.sets.add(bad_set["id"])
    good = post_choice(agent, good_set, "a").json()["submission_id"]
    bad = post_choice(agent, bad_set, "a").json()["submission_id"]

    # The good one's task claims the bad one in its batch: the batch fails, and each is recorded alone at once.
    recorded = outcomes.outcomes_record(submission_id=good, batch=10)
    assert [str(o.submission_id) for o in recorded] == [good]
    assert OutcomeSubmission.objects.get(pk=good).status == RECORDED
    assert OutcomeSubmission.objects.get(pk=good).attempts == 0
    assert OutcomeSubmission.objects.get(pk=bad).attempts == 1  # its own failure, recorded alone
    assert OutcomeSubmission.objects.get(pk=bad).status == PENDING

    # The bad one's own task, batched: the failure is raised for the task's retries, and counted once more.
    with pytest.raises(error):
        outcomes.outcomes_record(submission_id=bad, batch=10)
    assert OutcomeSubmission.objects.get(pk=bad).attempts == 2
    assert OutcomeSubmission.objects.get(pk=bad).last_error.endswith(str(error(FAULT)))


@pytest.mark.django_db(transaction=True)
def test_a_poison_bug_among_pending_outcomes_is_failed_and_the_rest_recorded_by_the_sweep(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The sweep sends batches: a submission that fails with a bug, not a database error (no task retry),
    still has each failure counted, and never holds back the ones pending beside it."""
    settings.OUTCOME_MAX_ATTEMPTS = 3
    fault.error = KeyError
    sent: list[Any] = []
    monkeypatch.setattr(outcomes, "outcome_enqueue", sent.append)  # accepted, not yet tried: all pending
    sets = [created(agent, f"C-{n}") for n in range(3)]
    fault.sets.add(sets[1]["id"])
    ids = [post_choice(agent, s, "a").json()["submission_id"] for s in sets]
    monkeypatch.undo()
    fault = Fault(monkeypatch)
    fault.error, fault.sets = KeyError, {sets[1]["id"]}
    first = OutcomeSubmission.objects.get(pk=ids[0]).submitted_at
    step = timedelta(seconds=settings.OUTCOME_REQUEUE_AFTER_SECONDS + 1)

    for n in range(1, 4):
        sweep(django_capture_on_commit_callbacks, first + n * step)

    statuses = dict(OutcomeSubmission.objects.values_list("pk", "status"))
    assert [statuses[uuid.UUID(i)] for i in ids] == [RECORDED, FAILED, RECORDED]
    assert OutcomeSubmission.objects.get(pk=ids[1]).attempts == 3
    assert Outcome.objects.count() == 2


def test_the_last_error_is_cut_to_a_readable_length() -> None:
    text = error_text(DatabaseError("x" * 10_000))
    assert len(text) == ERROR_MAX_CHARS
    assert text.startswith("django.db.utils.DatabaseError: xxx")
    assert text.endswith("…")
    assert error_text(ValueError("bad value")) == "ValueError: bad value"


# --- A failed submission counts as pending -------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_submission_keeps_its_budget_its_set_and_its_place_in_the_monthly_total(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    django_capture_on_commit_callbacks: Any,
) -> None:
    offer_set, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    assert submission.status == FAILED

    # Its budget stays reserved.
    assert BudgetCharge.objects.get().released_at is None
    assert spent() == Decimal("30.00")
    # Another choice on the set is refused; the same one again is answered as before.
    other = post_choice(agent, offer_set, label(offer_set, "gift"))
    assert other.status_code == 409
    assert other.json()["code"] == "outcome_exists"
    same = post_choice(agent, offer_set, label(offer_set, "fixed_credit"))
    assert same.status_code == 202
    assert (same.json()["submission_id"], same.json()["outcome_status"]) == (str(submission.pk), "failed")
    assert OutcomeSubmission.objects.count() == 1
    assert spent() == Decimal("30.00")
    # It counts in the agent's monthly total.
    agent_user = people["agent-1"][0]
    assert month_chosen_total(user=agent_user, now=submission.submitted_at) == Decimal("30.00")


@pytest.mark.django_db
def test_a_failed_submission_counts_against_the_monthly_limit(
    policy: Policy, agent: Any, people: dict[str, Any], fault: Fault, django_capture_on_commit_callbacks: Any
) -> None:
    group = Group.objects.create(name="monthly")
    AuthorityLimit.objects.create(group=group, per_month=Decimal("35.00"))
    people["agent-1"][0].groups.add(group)
    with time_machine.travel(MID_MONTH, tick=True):  # both choices in one calendar month, whatever today is
        poisoned(agent, fault, django_capture_on_commit_callbacks)  # 30.00, failed
        assert OutcomeSubmission.objects.get().status == FAILED

        later = created(agent, "C-2")
        response = post_choice(agent, later, label(later, "gift"))  # 30.00 + 10.00 > 35.00

    assert response.json()["outcome_status"] == "awaiting_approval"


# --- Retry and Release, in the admin ------------------------------------------------------------------


@pytest.fixture
def admin_manager(client: Any, people: dict[str, Any]) -> Any:
    user = people["manager-1"][0]
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


def act(client: Any, action: str, *submissions: OutcomeSubmission) -> str:
    response = client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [s.pk for s in submissions]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_retry_records_a_failed_submission_exactly_once_after_the_fault_is_gone(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    admin_manager: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    offer_set, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    fault.sets.clear()  # the fault is fixed

    with django_capture_on_commit_callbacks(execute=True):
        page = act(admin_manager, "retry", submission)

    assert "1 failed submission(s) sent to be recorded again." in page
    submission.refresh_from_db()
    assert (submission.status, submission.attempts, submission.failed_at) == (RECORDED, 0, None)
    outcome = Outcome.objects.get()
    assert outcome.submission_id == submission.pk
    assert FollowUp.objects.filter(outcome=outcome).count() == 2
    assert BudgetCharge.objects.count() == 1
    assert spent() == Decimal("30.00")  # charged once, when it was accepted

    # Retrying again, or another delivery, records nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        page = act(admin_manager, "retry", submission)
        assert outcome_record(submission_id=submission.pk) is None
    assert "1 selected submission(s) had not failed and were left alone." in page
    assert Outcome.objects.count() == 1
    assert agent.get(f"{URL}{offer_set['id']}/").json()["outcome"]["status"] == "recorded"


@pytest.mark.django_db
def test_a_retried_submission_that_fails_again_is_failed_again_and_told_again(
    policy: Policy, agent: Any, people: dict[str, Any], fault: Fault, django_capture_on_commit_callbacks: Any
) -> None:
    _, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    first_failed_at = submission.failed_at
    retried_at = first_failed_at + timedelta(hours=1)

    with django_capture_on_commit_callbacks(execute=True):
        outcome_submission_retry(submission_id=submission.pk, now=retried_at)
    submission = swept_until_failed(submission, django_capture_on_commit_callbacks, since=retried_at)

    assert (submission.status, submission.attempts) == (FAILED, 8)
    assert submission.failed_at > first_failed_at
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_release_marks_a_failed_submission_rejected_and_gives_its_budget_back(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    admin_manager: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    offer_set, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    assert spent() == Decimal("30.00")

    page = act(admin_manager, "release", submission)

    assert "1 failed submission(s) released: marked rejected, their budget given back." in page
    submission.refresh_from_db()
    assert submission.status == REJECTED
    assert BudgetCharge.objects.get().released_at is not None
    assert spent() == Decimal("0.00")
    assert month_chosen_total(user=people["agent-1"][0], now=submission.submitted_at) == Decimal("0.00")
    assert agent.get(f"{URL}{offer_set['id']}/").json()["outcome"]["status"] == "rejected"
    # The agent may choose again, and that choice is recorded.
    fault.sets.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = post_choice(agent, offer_set, label(offer_set, "gift"))
    assert again.status_code == 202
    assert OutcomeSubmission.objects.get(pk=again.json()["submission_id"]).status == RECORDED
    # Releasing twice gives nothing back twice.
    page = act(admin_manager, "release", submission)
    assert "had not failed and were left alone" in page
    assert spent() == Decimal("10.00")


@pytest.mark.django_db
def test_the_actions_leave_submissions_that_have_not_failed_alone(
    policy: Policy, agent: Any, people: dict[str, Any], admin_manager: Any
) -> None:
    offer_set = created(agent)
    submission = OutcomeSubmission.objects.get(pk=post_choice(agent, offer_set, "a").json()["submission_id"])

    for action in ("retry", "release"):
        page = act(admin_manager, action, submission)
        assert "1 selected submission(s) had not failed and were left alone." in page
    submission.refresh_from_db()
    assert submission.status == PENDING
    assert BudgetCharge.objects.get().released_at is None
    with pytest.raises(outcomes.Conflict, match="only failed submissions can be released"):
        outcome_submission_release(submission_id=submission.pk)


@pytest.mark.django_db
def test_only_managers_retry_or_release(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    staff = people["agent-1"][0]
    staff.is_staff = True
    staff.save()
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_outcomesubmission"))
    client.force_login(staff)

    page = act(client, "release", submission)

    assert "Only managers act on failed submissions." in page
    submission.refresh_from_db()
    assert submission.status == FAILED


@pytest.mark.django_db
def test_the_admin_lists_failed_submissions_with_their_error(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    admin_manager: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    created_ok = created(agent, "C-2")
    post_choice(agent, created_ok, "a")

    listed = admin_manager.get(reverse(CHANGELIST), {"status__exact": "failed"}).content.decode()
    detail = admin_manager.get(reverse("admin:compensation_outcomesubmission_change", args=[submission.pk]))

    assert str(submission.pk) in listed
    assert listed.count('name="_selected_action"') == 1  # only the failed one
    assert "Retry failed submissions" in listed
    assert "Release failed submissions" in listed
    assert FAULT in detail.content.decode()


# --- The e-mail, when it could not go at once --------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_sends_the_managers_e_mail_that_could_not_go_and_only_once(
    policy: Policy,
    agent: Any,
    people: dict[str, Any],
    fault: Fault,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def mail_down(*args: Any, **kwargs: Any) -> None:
        raise OSError("Connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(outcomes, "send_mail", mail_down)
        _, submission = poisoned(agent, fault, django_capture_on_commit_callbacks)
    submission.refresh_from_db()
    assert submission.status == FAILED
    assert submission.failure_notified_at is None
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        outcome_submissions_requeue(now=submission.failed_at + timedelta(minutes=5))
        outcome_submissions_requeue(now=submission.failed_at + timedelta(minutes=10))

    assert len(mail.outbox) == 1
    submission.refresh_from_db()
    assert submission.failure_notified_at is not None


@pytest.mark.django_db
def test_with_no_manager_to_tell_the_failure_is_logged(
    policy: Policy, agent: Any, people: dict[str, Any], fault: Fault, django_capture_on_commit_callbacks: Any, caplog
) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(groups__name="manager").update(email="")

    poisoned(agent, fault, django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert "no manager has an e-mail address" in caplog.text
    assert "failed 8 times and is no longer retried" in caplog.text


@pytest.mark.django_db
def test_the_openapi_schema_lists_failed_among_the_outcome_statuses(client: Any) -> None:
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert "failed" in response.json()["components"]["schemas"]["OutcomeStatusEnum"]["enum"]
