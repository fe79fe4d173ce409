"""Follow-ups after an outcome (``follow_ups_send``): each sent once and not early, skipped without an
e-mail address, kept for the next run when SMTP fails; what the e-mails say; and the customer's
feedback link (README, "Recording what the customer chose"): no login, single use, 404 / 409 / 410, validated."""

from __future__ import annotations

import re
import smtplib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core import mail, signing
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from compensation.models import FollowUp, Outcome, Remedy
from compensation.serializers import offer_set_input_validate
from compensation.services.follow_ups import FEEDBACK_SALT, feedback_submit, feedback_token, follow_ups_send
from compensation.services.offer_sets import OfferSetCreated, offer_set_create
from compensation.services.outcomes import outcome_record, outcome_submit
from policies.index import policy_index_get
from policies.models import Policy

pytestmark = pytest.mark.django_db

FEEDBACK_LINK = re.compile(re.escape(settings.PUBLIC_BASE_URL) + r"/api/v1/feedback/(?P<token>[^/\s]+)/")
EXPLANATION_AT = timedelta(minutes=settings.FOLLOW_UP_EXPLANATION_DELAY_MINUTES)
CHECK_AT = timedelta(hours=settings.FOLLOW_UP_SATISFACTION_DELAY_HOURS)


class FailingBackend(BaseEmailBackend):
    """An SMTP server that drops the connection."""

    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


FAILING_BACKEND = f"{__name__}.FailingBackend"


# --- Helpers ---------------------------------------------------------------------------------


@pytest.fixture
def agent(make_user: Any) -> Any:
    user, _ = make_user("agent-1", "agent")
    return user


def offer_set_new(user: Any, *, external_id: str = "C-1", email: str = "ada@example.com") -> OfferSetCreated:
    """A late delivery for Ada Lovelace: the demo pack shows free_shipping, gift and percent_discount."""
    index = policy_index_get()
    data = {
        "customer": {"external_id": external_id, "name": "Ada Lovelace", "email": email},
        "incident": {
            "category": "late_delivery",
            "severity": 3,
            "order_value": "80.00",
            "external_ref": f"T-{external_id}",
            "description": "The parcel arrived three days after the promised date",
        },
    }
    validated = offer_set_input_validate(data, index=index)
    return offer_set_create(user=user, index=index, customer=validated["customer"], incident=validated["incident"])


def recorded(user: Any, now: Any, *, kind: str | None = "free_shipping", **kwargs: Any) -> Outcome:
    """An outcome recorded at ``now``: the option of ``kind``, or declined when ``kind`` is None."""
    email = kwargs.pop("email", "ada@example.com")
    created = offer_set_new(user, external_id=kwargs.pop("external_id", "C-1"), email=email)
    choice = next(o.label for o in created.offers if o.kind == kind) if kind else "declined"
    submitted = outcome_submit(user=user, offer_set_id=created.offer_set.pk, choice=choice, now=now, **kwargs)
    outcome = outcome_record(submission_id=submitted.pk, now=now)
    assert outcome is not None
    return outcome


def follow_up(outcome: Outcome, kind: str) -> FollowUp:
    return FollowUp.objects.get(outcome=outcome, kind=kind)


def check_of(outcome: Outcome) -> FollowUp:
    return follow_up(outcome, FollowUp.Kind.SATISFACTION_CHECK)


def feedback(client: Any, token: str, data: Any) -> Any:
    return client.post(f"/api/v1/feedback/{token}/", data, format="json")


class PastSigner(signing.TimestampSigner):
    """Signs as if it were ``days`` days ago."""

    def __init__(self, *, days: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.days = days

    def timestamp(self) -> str:
        return signing.b62_encode(int(timezone.now().timestamp() - self.days * 86400))


# --- follow_ups_send ---------------------------------------------------------------------------


def test_each_follow_up_is_sent_once_when_its_time_comes(demo_pack: None, agent: Any, now: Any) -> None:
    outcome = recorded(agent, now)

    assert follow_ups_send(now=now + EXPLANATION_AT - timedelta(seconds=1)) == 0
    assert mail.outbox == []

    assert follow_ups_send(now=now + EXPLANATION_AT) == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert follow_ups_send(now=now + EXPLANATION_AT + timedelta(minutes=5)) == 0  # a second run sends nothing

    assert follow_ups_send(now=now + CHECK_AT) == 1
    assert follow_ups_send(now=now + CHECK_AT + timedelta(days=1)) == 0
    assert len(mail.outbox) == 2

    explanation, check = follow_up(outcome, "explanation"), check_of(outcome)
    assert (explanation.status, explanation.sent_at, explanation.attempts) == ("sent", now + EXPLANATION_AT, 1)
    assert (check.status, check.sent_at, check.attempts) == ("sent", now + CHECK_AT, 1)
    assert explanation.sent_at <= outcome.follow_up_due_at  # the explanation within its 24 hours


def test_one_run_sends_every_due_follow_up_of_every_outcome(demo_pack: None, agent: Any, now: Any) -> None:
    for n in range(3):
        recorded(agent, now, external_id=f"C-{n}", email=f"c{n}@example.com")

    assert follow_ups_send(now=now + CHECK_AT) == 6

    assert sorted(m.to[0] for m in mail.outbox) == sorted([f"c{n}@example.com" for n in range(3)] * 2)
    assert not FollowUp.objects.filter(status="scheduled").exists()


def test_a_run_sends_at_most_its_limit_and_the_next_run_the_rest(demo_pack: None, agent: Any, now: Any) -> None:
    for n in range(3):
        recorded(agent, now, external_id=f"C-{n}")

    assert follow_ups_send(now=now + CHECK_AT, limit=4) == 4
    assert follow_ups_send(now=now + CHECK_AT, limit=4) == 2
    assert len(mail.outbox) == 6


def test_a_customer_without_an_email_is_skipped(demo_pack: None, agent: Any, now: Any) -> None:
    outcome = recorded(agent, now, email="")

    assert follow_ups_send(now=now + CHECK_AT) == 0

    assert mail.outbox == []
    for kind in ("explanation", "satisfaction_check"):
        skipped = follow_up(outcome, kind)
        assert (skipped.status, skipped.sent_at) == ("skipped", None)
        assert "no e-mail" in skipped.last_error
    assert follow_ups_send(now=now + CHECK_AT + timedelta(days=1)) == 0


def test_an_smtp_failure_keeps_it_scheduled_and_a_later_run_sends_it(
    demo_pack: None, agent: Any, now: Any, settings: Any
) -> None:
    outcome = recorded(agent, now)
    settings.EMAIL_BACKEND = FAILING_BACKEND

    assert follow_ups_send(now=now + EXPLANATION_AT) == 0
    assert follow_ups_send(now=now + EXPLANATION_AT + timedelta(minutes=1)) == 0

    failed = follow_up(outcome, "explanation")
    assert (failed.status, failed.sent_at, failed.attempts) == ("scheduled", None, 2)
    assert "SMTPServerDisconnected" in failed.last_error
    assert "Connection unexpectedly closed" in failed.last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert follow_ups_send(now=now + EXPLANATION_AT + timedelta(minutes=2)) == 1

    sent = follow_up(outcome, "explanation")
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, "")
    assert len(mail.outbox) == 1


# --- What the e-mails say ---------------------------------------------------------------------------


def test_the_explanation_says_what_happened_what_was_done_and_the_agents_notes(
    demo_pack: None, agent: Any, now: Any
) -> None:
    outcome = recorded(agent, now, notes="I asked the warehouse to check the courier's route.")
    coupon = outcome.coupon

    follow_ups_send(now=now + EXPLANATION_AT)

    message = mail.outbox[0]
    assert message.subject == "About your late delivery: what happened and what we did"
    assert "Dear Ada Lovelace" in message.body
    assert "late delivery" in message.body
    assert "The parcel arrived three days after the promised date" in message.body
    assert "T-C-1" in message.body
    assert outcome.offer.title in message.body
    assert coupon.code in message.body
    assert "I asked the warehouse to check the courier's route." in message.body
    assert "&#x27;" not in message.body  # plain text: not HTML-escaped


def test_the_explanation_of_a_declined_outcome_says_no_option_was_wanted(demo_pack: None, agent: Any, now: Any) -> None:
    recorded(agent, now, kind=None)

    follow_ups_send(now=now + EXPLANATION_AT)

    assert "did not want any of the options" in mail.outbox[0].body


def test_the_satisfaction_check_carries_a_working_feedback_link(
    demo_pack: None, agent: Any, now: Any, api_client: Any
) -> None:
    outcome = recorded(agent, now, kind="gift")

    follow_ups_send(now=now + CHECK_AT)

    explanation, message = mail.outbox  # the explanation was due first
    assert FEEDBACK_LINK.search(explanation.body) is None
    assert message.subject == "Did we make it right?"
    assert f"; you chose: {outcome.offer.title}." in message.body  # the title starts a clause, capital and all
    link = FEEDBACK_LINK.search(message.body)
    assert link is not None, message.body
    assert f"{settings.FEEDBACK_LINK_MAX_AGE_DAYS} days" in message.body
    response = feedback(api_client, link["token"], {"satisfaction": 5, "comment": "Lovely gift"})
    assert response.status_code == 200
    assert Outcome.objects.get().satisfaction == 5


# --- POST /api/v1/feedback/{token}/ -------------------------------------------------------------------


@pytest.fixture
def check(demo_pack: None, agent: Any, now: Any) -> FollowUp:
    return check_of(recorded(agent, now, satisfaction=3))


@pytest.mark.parametrize("credentials", [{}, {"HTTP_AUTHORIZATION": "Token not-a-real-token"}])
def test_feedback_needs_no_login_and_lands_on_the_outcome(
    check: FollowUp, api_client: Any, credentials: dict, client_for: Any
) -> None:
    api_client.credentials(**credentials)

    response = feedback(api_client, feedback_token(check), {"satisfaction": 5, "comment": "Sorted, thanks"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    check.refresh_from_db()
    assert (check.feedback_satisfaction, check.feedback_comment) == (5, "Sorted, thanks")
    assert abs(check.responded_at - timezone.now()) < timedelta(minutes=1)
    outcome = Outcome.objects.get()
    assert outcome.satisfaction == 5  # the customer's own word replaces the agent's 3
    shown = client_for("agent", "agent-1").get(f"/api/v1/offer-sets/{outcome.offer_set_id}/").json()
    assert shown["outcome"]["satisfaction"] == 5


def test_feedback_without_a_comment_is_fine(check: FollowUp, api_client: Any) -> None:
    assert feedback(api_client, feedback_token(check), {"satisfaction": 1}).status_code == 200

    check.refresh_from_db()
    assert (check.feedback_satisfaction, check.feedback_comment) == (1, "")


def test_a_used_link_is_409_and_keeps_the_first_answer(check: FollowUp, api_client: Any) -> None:
    token = feedback_token(check)
    assert feedback(api_client, token, {"satisfaction": 4}).status_code == 200

    response = feedback(api_client, token, {"satisfaction": 1, "comment": "changed my mind"})

    assert response.status_code == 409
    assert response.json()["code"] == "feedback_used"
    assert Outcome.objects.get().satisfaction == 4
    check.refresh_from_db()
    assert (check.feedback_satisfaction, check.feedback_comment) == (4, "")


def _tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda check: _tampered(feedback_token(check)), id="signature-changed"),
        pytest.param(lambda check: feedback_token(check).replace(str(check.pk), str(check.pk + 1), 1), id="id-changed"),
        pytest.param(lambda check: "not-a-token", id="garbage"),
        pytest.param(lambda check: signing.TimestampSigner(salt="other").sign(str(check.pk)), id="other-salt"),
        pytest.param(lambda check: signing.TimestampSigner(salt=FEEDBACK_SALT).sign("abc"), id="not-an-id"),
        pytest.param(lambda check: signing.TimestampSigner(salt=FEEDBACK_SALT).sign("999999"), id="unknown-id"),
        pytest.param(
            lambda check: feedback_token(FollowUp.objects.get(outcome=check.outcome, kind="explanation")),
            id="explanation-not-a-check",
        ),
    ],
)
def test_a_bad_token_is_404_and_changes_nothing(check: FollowUp, api_client: Any, make: Any) -> None:
    response = feedback(api_client, make(check), {"satisfaction": 5})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Outcome.objects.get().satisfaction == 3
    assert not FollowUp.objects.exclude(responded_at=None).exists()


@pytest.mark.parametrize("body", [{"satisfaction": 9}, {}, None])
def test_a_bad_link_says_so_whatever_the_body(check: FollowUp, api_client: Any, body: Any) -> None:
    assert feedback(api_client, _tampered(feedback_token(check)), body).status_code == 404
    assert feedback(api_client, PastSigner(days=99, salt=FEEDBACK_SALT).sign(str(check.pk)), body).status_code == 410
    assert feedback(api_client, feedback_token(check), {"satisfaction": 4}).status_code == 200
    assert feedback(api_client, feedback_token(check), body).status_code == 409


@pytest.mark.parametrize(("days", "status"), [(settings.FEEDBACK_LINK_MAX_AGE_DAYS + 1, 410), (1, 200)])
def test_an_expired_link_is_410(check: FollowUp, api_client: Any, days: int, status: int) -> None:
    token = PastSigner(days=days, salt=FEEDBACK_SALT).sign(str(check.pk))

    response = feedback(api_client, token, {"satisfaction": 5})

    assert response.status_code == status
    if status == 410:
        assert response.json()["code"] == "expired"
        assert Outcome.objects.get().satisfaction == 3


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "satisfaction"),
        ({"satisfaction": 0}, "satisfaction"),
        ({"satisfaction": 6}, "satisfaction"),
        ({"satisfaction": "x"}, "satisfaction"),
        ({"satisfaction": None}, "satisfaction"),
        ({"satisfaction": 3, "comment": "x" * 4001}, "comment"),
    ],
)
def test_feedback_is_validated_and_a_bad_one_does_not_use_up_the_link(
    check: FollowUp, api_client: Any, data: dict, field: str
) -> None:
    token = feedback_token(check)

    response = feedback(api_client, token, data)

    assert response.status_code == 400
    assert field in response.json()
    assert Outcome.objects.get().satisfaction == 3
    assert feedback(api_client, token, {"satisfaction": 2}).status_code == 200


def test_feedback_submit_takes_the_time_it_is_given(check: FollowUp, now: Any) -> None:
    answered = feedback_submit(token=feedback_token(check), satisfaction=4, comment="ok", now=now + timedelta(days=2))

    assert answered.responded_at == now + timedelta(days=2)


def test_the_explanation_says_what_was_put_right_first(demo_pack: None, agent: Any, now: Any) -> None:
    """The remedy given with the outcome is named; one waiting for a manager says so."""
    outcome = recorded(agent, now, kind=None)

    def remedy(kind: str, title: str, cost: str, status: str) -> None:
        Remedy.objects.create(
            incident=outcome.offer_set.incident,
            customer=outcome.customer,
            offer_set=outcome.offer_set,
            kind=kind,
            title=title,
            estimated_cost=Decimal(cost),
            currency="USD",
            policy=Policy.objects.first(),
            policy_name="Any",
            policy_version=1,
            created_at=now,
            category=outcome.category,
            status=status,
            outcome=outcome,
        )

    remedy("refund", "Your $80.00 back", "80.00", Remedy.Status.GIVEN)
    remedy("gift", "Flowers", "30.00", Remedy.Status.AWAITING_APPROVAL)

    follow_ups_send(now=now + EXPLANATION_AT)

    assert "What we put right: Your $80.00 back; Flowers (a manager is confirming it)." in mail.outbox[0].body
