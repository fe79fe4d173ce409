"""The customer's page ``/r/{token}/`` over HTTP, in-process (API.md, "Proactive recovery: an operational
event"): opening records nothing, a button does, through the outcome path; a used link keeps its answer, an
unused one closes; bad tokens and bad buttons are pages in words, never a 500; the page's own rate limit.

Events are made as a manager makes them (POST /api/v1/events/, tasks eager) and the links read from the
e-mails, so each test follows the path a customer's click takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from compensation.models import (
    Escalation,
    EventCustomer,
    FollowUp,
    Offer,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
)
from compensation.periods import month_start
from compensation.services.escalations import escalation_reject, escalation_resolve
from compensation.services.follow_ups import feedback_token
from policies.models import OfferTemplate, Policy
from policies.services import policy_revision_bump

pytestmark = pytest.mark.django_db

EVENT_NAME = "North warehouse missed Tuesday's deliveries"
CUSTOMERS = [
    {"external_id": "EV-1", "name": "Maria Lopez", "email": "maria@example.com", "order_value": "120.00"},
    {"external_id": "EV-2", "name": "Sam Okafor", "email": "sam@example.com", "order_value": "40.00"},
    {"external_id": "EV-3", "name": "Ana Silva", "email": "ana@example.com", "interests": ["cooking"]},
]


@dataclass
class Link:
    """One customer's link: the page's path (no ``?option=``), their row, their offers by label."""

    path: str
    row: EventCustomer
    offers: dict[str, Offer]

    @property
    def labels(self) -> list[str]:
        return sorted(self.offers)


@pytest.fixture
def event(demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any) -> Any:
    """Post an event as the manager (processed and e-mailed at once) and answer each customer's link by
    external id."""

    def make(customers: list[dict[str, Any]] = CUSTOMERS, **overrides: Any) -> dict[str, Link]:
        body = {
            "name": EVENT_NAME,
            "category": "missed_delivery",
            "severity": 3,
            "description": "A conveyor failure held back every Tuesday delivery.",
            "customers": customers,
            **overrides,
        }
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            answer = manager.post("/api/v1/events/", body, format="json")
        assert answer.status_code == 202, answer.json()
        links = {}
        for message in mail.outbox:
            match = re.search(r"https?://[^/\s]+(/r/[0-9a-f]{43}/)", message.body)
            assert match, message.body
            row = EventCustomer.objects.select_related("offer_set").get(
                email=message.to[0], event_id=answer.json()["id"]
            )
            offers = {offer.label: offer for offer in Offer.objects.filter(offer_set=row.offer_set)}
            links[row.external_id] = Link(path=match.group(1), row=row, offers=offers)
        assert len(links) == len(customers)
        return links

    return make


@pytest.fixture
def press(django_capture_on_commit_callbacks: Any) -> Any:
    """Press a button on a page (a POST of its form, as a browser sends it), running what the press sends
    after commit (the outcome task, eager here)."""

    def do(path: str, choice: str, client: Client | None = None) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return (client or Client()).post(path, {"choice": choice})

    return do


def text(response: Any) -> str:
    """The page's words, tags dropped and spaces joined, to read as the customer would."""
    html = response.content.decode()
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#x27;", "'").replace("&quot;", '"').split())


def buttons(response: Any) -> list[str]:
    return re.findall(r"<button[^>]*>([^<]+)</button>", response.content.decode())


def nothing_recorded() -> bool:
    return not (
        OutcomeSubmission.objects.exists()
        or Outcome.objects.exists()
        or Escalation.objects.filter(kind=Escalation.Kind.SENIOR_MANAGER).exists()
    )


# --- Opening records nothing ----------------------------------------------------------------------


def test_opening_a_link_records_nothing_whatever_the_method_or_option(event: Any) -> None:
    maria = event()["EV-1"]
    client = Client()

    opened = client.get(maria.path)
    for option in ("a", "b", "none", "call"):
        assert client.get(maria.path, {"option": option}).status_code == 200
    head = client.head(maria.path, {"option": "b"})

    assert opened.status_code == 200
    assert head.status_code == 200
    assert nothing_recorded()
    assert buttons(opened) == ["Choose a", "Choose b", "Choose c", "None of these", "Please call me"]
    words = text(opened)
    assert "Maria, we're sorry" in words
    assert EVENT_NAME in words
    assert "Nothing is recorded until you press a button" in words


def test_the_option_of_the_link_is_the_one_in_focus(event: Any) -> None:
    maria = event()["EV-1"]

    page = Client().get(maria.path, {"option": "b"}).content.decode()

    focused = re.findall(r'value="(\w+)">\s*<button[^>]*\bautofocus\b', page)
    assert focused == ["b"]
    assert 'To take option b from our e-mail, press "Choose b".' in page
    assert "autofocus" not in Client().get(maria.path).content.decode()
    call = Client().get(maria.path, {"option": "call"}).content.decode()
    assert re.findall(r'value="(\w+)">\s*<button[^>]*\bautofocus\b', call) == ["call"]
    unknown = Client().get(maria.path, {"option": "z" * 500})
    assert unknown.status_code == 200
    assert "autofocus" not in unknown.content.decode()


# --- Choosing ---------------------------------------------------------------------------------------


def test_choose_a_records_the_outcome_through_the_outcome_path(event: Any, press: Any) -> None:
    maria = event()["EV-1"]

    chosen = press(maria.path, "a")

    assert chosen.status_code == 200
    outcome = Outcome.objects.get()
    assert outcome.offer_set_id == maria.row.offer_set_id
    assert outcome.offer == maria.offers["a"]
    assert outcome.choice == "a"
    assert outcome.accepted is True
    assert f"You chose a) {maria.offers['a'].title}" in text(chosen)
    assert "Thank you, Maria" in text(chosen)
    assert buttons(chosen) == []  # the choice is made: no button left to press
    # The policy's budget was charged, as for an agent's choice.
    assert PolicyMonthSpend.objects.get(policy_id=maria.offers["a"].policy_id).spent == maria.offers["a"].estimated_cost


def test_the_same_button_again_answers_as_before_and_records_nothing_more(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    first = press(maria.path, "a")

    again = press(maria.path, "a")
    opened = Client().get(maria.path)

    assert (first.status_code, again.status_code, opened.status_code) == (200, 200, 200)
    assert OutcomeSubmission.objects.count() == 1
    assert Outcome.objects.count() == 1
    assert f"You chose a) {maria.offers['a'].title}" in text(again)
    assert f"You chose a) {maria.offers['a'].title}" in text(opened)


@pytest.mark.parametrize("other", ["b", "none", "call"])
def test_another_button_after_a_choice_is_a_409_page_saying_what_was_chosen(event: Any, press: Any, other: str) -> None:
    maria = event()["EV-1"]
    press(maria.path, "a")

    refused = press(maria.path, other)

    assert refused.status_code == 409
    words = text(refused)
    assert "You have already chosen" in words
    assert f"You already chose option a, {maria.offers['a'].title}" in words
    assert Outcome.objects.get().choice == "a"
    assert not Escalation.objects.filter(kind=Escalation.Kind.SENIOR_MANAGER).exists()


def test_none_of_these_records_declined(event: Any, press: Any) -> None:
    sam = event()["EV-2"]

    declined = press(sam.path, "none")

    assert declined.status_code == 200
    outcome = Outcome.objects.get()
    assert (outcome.choice, outcome.accepted, outcome.offer_id) == ("declined", False, None)
    assert "none of these suit you" in text(declined)
    assert press(sam.path, "none").status_code == 200  # the same button again
    assert press(sam.path, "a").status_code == 409


def test_please_call_me_opens_a_senior_manager_escalation_and_leaves_the_choice_open(event: Any, press: Any) -> None:
    links = event()
    ana = links["EV-3"]

    called = press(ana.path, "call")

    assert called.status_code == 200
    escalation = Escalation.objects.get(kind=Escalation.Kind.SENIOR_MANAGER)
    assert EVENT_NAME in escalation.reason
    assert escalation.incident_id == ana.row.offer_set.incident_id
    assert escalation.offer_set_id == ana.row.offer_set_id
    assert not OutcomeSubmission.objects.exists()
    words = text(called)
    assert "We will call you" in words
    assert buttons(called) == ["Choose a", "Choose b", "Choose c", "None of these"]
    # The same button again finds the same request.
    assert press(ana.path, "call").status_code == 200
    assert Escalation.objects.filter(kind=Escalation.Kind.SENIOR_MANAGER).count() == 1
    # The choice is still open.
    chosen = press(ana.path, "b")
    assert chosen.status_code == 200
    assert Outcome.objects.get().offer == ana.offers["b"]


# --- Expiry ------------------------------------------------------------------------------------------


def test_a_used_link_still_shows_the_choice_after_expiry(event: Any, press: Any, time_machine: Any) -> None:
    maria = event()["EV-1"]
    press(maria.path, "b")
    time_machine.move_to(maria.row.offer_set.expires_at + timedelta(days=1), tick=False)

    opened = Client().get(maria.path)
    again = press(maria.path, "b")
    other = press(maria.path, "a")

    assert opened.status_code == 200
    assert f"You chose b) {maria.offers['b'].title}" in text(opened)
    assert again.status_code == 200
    assert other.status_code == 409


def test_an_unused_link_after_expiry_is_410_and_records_nothing(event: Any, press: Any, time_machine: Any) -> None:
    maria = event()["EV-1"]
    expires_at = maria.row.offer_set.expires_at
    assert expires_at == maria.row.offer_set.created_at + timedelta(days=settings.EVENT_CHOICE_DAYS)

    time_machine.move_to(expires_at - timedelta(seconds=1), tick=False)
    assert Client().get(maria.path).status_code == 200
    time_machine.move_to(expires_at, tick=False)
    opened = Client().get(maria.path)
    pressed = press(maria.path, "a")
    called = press(maria.path, "call")

    assert (opened.status_code, pressed.status_code, called.status_code) == (410, 410, 410)
    assert "This choice has closed" in text(opened)
    assert buttons(opened) == []
    assert nothing_recorded()


# --- Bad tokens ----------------------------------------------------------------------------------------


def tampered(path: str) -> list[str]:
    token = path.split("/")[2]
    flipped = token[:10] + ("0" if token[10] != "0" else "1") + token[11:]
    return [
        f"/r/{flipped}/",  # one character changed
        f"/r/{token[:-1]}/",  # one short
        f"/r/{token}0/",  # one long
        f"/r/{token.upper()}/",
        f"/r/{'0123456789abcdef' * 2}{'a' * 11}/",  # made up, the right shape
        "/r/x/",
    ]


def test_a_tampered_or_made_up_token_is_a_404_page(event: Any, press: Any) -> None:
    maria = event()["EV-1"]

    for path in tampered(maria.path):
        opened = Client().get(path)
        pressed = press(path, "a")
        assert (opened.status_code, pressed.status_code) == (404, 404), path
        assert "We could not find this link" in text(opened)
        assert buttons(opened) == []
    assert nothing_recorded()


def test_the_token_of_a_satisfaction_check_is_404_here(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    press(maria.path, "a")
    check = FollowUp.objects.get(outcome__offer_set=maria.row.offer_set, kind=FollowUp.Kind.SATISFACTION_CHECK)
    token = feedback_token(check)

    assert Client().get(f"/r/{token}/").status_code == 404
    assert press(f"/r/{token}/", "a").status_code == 404


# --- Budgets and approval ------------------------------------------------------------------------------


def test_an_option_whose_budget_ran_out_is_no_longer_available_and_the_others_stay(event: Any, press: Any) -> None:
    links = event()
    # A policy that offered an option to two customers; its month allows only the first one's.
    shared = next(
        (first, second, policy)
        for first in links.values()
        for second in links.values()
        if first is not second
        for policy in {o.policy_id for o in first.offers.values()} & {o.policy_id for o in second.offers.values()}
    )
    first, second, policy_id = shared
    first_label = next(label for label, offer in first.offers.items() if offer.policy_id == policy_id)
    second_label = next(label for label, offer in second.offers.items() if offer.policy_id == policy_id)
    Policy.objects.filter(pk=policy_id).update(monthly_cap=first.offers[first_label].estimated_cost)
    assert press(first.path, first_label).status_code == 200

    opened = Client().get(second.path)
    pressed = press(second.path, second_label)

    others = [label for label, offer in second.offers.items() if offer.policy_id != policy_id]
    assert others, "the second customer has options of other policies"
    assert opened.status_code == 200
    assert f"Choose {second_label}" not in buttons(opened)
    assert [f"Choose {label}" for label in others] == [b for b in buttons(opened) if b.startswith("Choose")]
    section = re.search(rf'aria-labelledby="option-{second_label}">(.*?)</section>', opened.content.decode(), re.S)
    assert section is not None
    assert "No longer available" in section.group(1)
    assert pressed.status_code == 409
    assert "This option is no longer available" in text(pressed)
    assert f"Option {second_label} is no longer available" in text(pressed)
    assert [f"Choose {label}" for label in others] == [b for b in buttons(pressed) if b.startswith("Choose")]
    assert "None of these" in buttons(pressed)
    assert "monthly" not in text(pressed).lower()  # the policy's budget is not the customer's to read
    assert OutcomeSubmission.objects.filter(offer_set=second.row.offer_set).count() == 0
    # Another option still goes through.
    assert press(second.path, others[0]).status_code == 200
    assert Outcome.objects.get(offer_set=second.row.offer_set).offer == second.offers[others[0]]


def test_a_spent_month_shows_as_no_longer_available_before_anyone_presses(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    offer = maria.offers["b"]
    Policy.objects.filter(pk=offer.policy_id).update(monthly_cap=Decimal("100.00"))
    now = timezone.now()
    for month in {month_start(now), month_start(now + timedelta(minutes=5))}:  # the page may read the next month
        PolicyMonthSpend.objects.update_or_create(
            policy_id=offer.policy_id,
            month=month,
            defaults={"spent": Decimal("100.00") - offer.estimated_cost + Decimal("0.01"), "cap": Decimal("100.00")},
        )

    opened = Client().get(maria.path, {"option": "b"})

    assert "Choose b" not in buttons(opened)
    assert "Option b from our e-mail is no longer available" in text(opened)
    assert press(maria.path, "b").status_code == 409
    assert not OutcomeSubmission.objects.exists()


def test_approval_only_where_the_offer_requires_it_never_an_agent_limit(event: Any, press: Any, settings: Any) -> None:
    settings.AGENT_APPROVAL_LIMIT = Decimal("1.00")  # every option costs more: no agent limit applies
    for template in OfferTemplate.objects.filter(kind="gift"):
        template.requires_approval = True
        template.save()
    policy_revision_bump()
    links = event()
    asked = [(link, label) for link in links.values() for label, o in link.offers.items() if o.requires_approval]
    not_asked = [
        (link, label) for link in links.values() for label, o in link.offers.items() if not o.requires_approval
    ]
    assert asked
    assert not_asked
    (waiting_link, waiting_label) = asked[0]
    (direct_link, direct_label) = next((link, label) for link, label in not_asked if link is not waiting_link)
    assert direct_link.offers[direct_label].estimated_cost > settings.AGENT_APPROVAL_LIMIT

    waiting = press(waiting_link.path, waiting_label)
    direct = press(direct_link.path, direct_label)

    assert waiting.status_code == 200
    submission = OutcomeSubmission.objects.get(offer_set=waiting_link.row.offer_set)
    assert submission.status == OutcomeSubmission.Status.AWAITING_APPROVAL
    assert not Outcome.objects.filter(offer_set=waiting_link.row.offer_set).exists()
    assert "We need to confirm this one" in text(waiting)
    assert "We need to confirm this one" in text(Client().get(waiting_link.path))
    assert direct.status_code == 200
    assert OutcomeSubmission.objects.get(offer_set=direct_link.row.offer_set).status == "recorded"
    assert Outcome.objects.get(offer_set=direct_link.row.offer_set).offer == direct_link.offers[direct_label]
    assert "It's done" in text(direct)


# --- Rate limit, headers, bad input ------------------------------------------------------------------


@override_settings(THROTTLE_CUSTOMER_PAGE_RATE="3/min", THROTTLE_ANON_RATE="1/min")
def test_the_page_is_rate_limited_per_address_by_its_own_limit(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    client = Client(REMOTE_ADDR="203.0.113.7")

    answers = [client.get(maria.path).status_code for _ in range(3)]  # past the 1/min of the feedback links
    limited = client.get(maria.path)
    pressed = client.post(maria.path, {"choice": "a"})

    assert answers == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Too many requests" in text(limited)
    assert "no-store" in limited["Cache-Control"]
    assert pressed.status_code == 429
    assert nothing_recorded()
    assert Client(REMOTE_ADDR="203.0.113.8").get(maria.path).status_code == 200  # another address
    # The feedback links' limit is another: this address has not used it.
    assert client.get("/api/v1/feedback/nothing/").status_code != 429


def test_every_answer_is_private(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    answers = [
        Client().get(maria.path),
        Client().get("/r/nothing/"),
        press(maria.path, "z"),
        press(maria.path, "a"),
        press(maria.path, "b"),
    ]

    assert [a.status_code for a in answers] == [200, 404, 400, 200, 409]
    for answer in answers:
        assert "no-store" in answer["Cache-Control"]
        assert "private" in answer["Cache-Control"]
        assert answer["Referrer-Policy"] == "no-referrer"
        assert answer["X-Robots-Tag"] == "noindex, nofollow"
        assert answer["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("value", ["", " ", "z", "d", "declined", "A" * 10_000, "a\x00", "<script>", None])
def test_a_value_that_is_no_button_is_a_400_page_and_records_nothing(event: Any, value: str | None) -> None:
    maria = event()["EV-1"]
    body = {} if value is None else {"choice": value}

    answer = Client().post(maria.path, body)

    assert answer.status_code == 400
    assert "Please use one of the buttons" in text(answer)
    assert "Nothing was recorded" in text(answer)
    assert buttons(answer) == ["Choose a", "Choose b", "Choose c", "None of these", "Please call me"]
    assert "<script>" not in answer.content.decode()
    assert nothing_recorded()


def test_a_label_the_customer_was_not_offered_is_a_400_page(event: Any) -> None:
    links = event()
    short = next((link for link in links.values() if len(link.offers) < 3), None)
    if short is None:  # every set has three options: take one away
        short = links["EV-2"]
        Offer.objects.filter(pk=short.offers.pop("c").pk).delete()

    answer = Client().post(short.path, {"choice": "c"})

    assert answer.status_code == 400
    assert not OutcomeSubmission.objects.exists()


def test_other_methods_are_refused_without_a_500(event: Any) -> None:
    maria = event()["EV-1"]

    assert Client().put(maria.path, {"choice": "a"}).status_code == 405
    assert Client().delete(maria.path).status_code == 405
    assert nothing_recorded()


# --- No options ----------------------------------------------------------------------------------------


def test_a_customer_with_no_options_can_still_ask_to_be_called(event: Any, press: Any) -> None:
    Policy.objects.update(active=False)
    policy_revision_bump()
    links = event(customers=CUSTOMERS[:1])
    maria = links["EV-1"]
    assert maria.offers == {}
    assert EventCustomer.objects.get(pk=maria.row.pk).no_options is True
    assert "We could not offer you a choice this time" in mail.outbox[0].body

    opened = Client().get(maria.path)
    called = press(maria.path, "call")

    assert opened.status_code == 200
    assert buttons(opened) == ["Please call me"]
    assert "We could not offer you a choice this time" in text(opened)
    assert called.status_code == 200
    assert "We will call you" in text(called)
    assert buttons(called) == []
    assert EVENT_NAME in Escalation.objects.get(kind=Escalation.Kind.SENIOR_MANAGER).reason
    assert press(maria.path, "none").status_code == 400  # no options: nothing to decline


def test_a_choice_a_manager_refused_opens_the_choice_again_and_says_so(
    event: Any, press: Any, django_user_model: Any
) -> None:
    for template in OfferTemplate.objects.filter(kind="gift"):
        template.requires_approval = True
        template.save()
    policy_revision_bump()
    links = event()
    link, label = next(
        (link, label) for link in links.values() for label, o in link.offers.items() if o.requires_approval
    )
    press(link.path, label)
    approval = Escalation.objects.get(kind=Escalation.Kind.APPROVAL)
    escalation_reject(
        escalation_id=approval.pk, user=django_user_model.objects.get(username="manager-1"), reason="Out of stock"
    )

    opened = Client().get(link.path)

    assert opened.status_code == 200
    assert f"We could not confirm your earlier choice ({label}) {link.offers[label].title})" in text(opened)
    assert "Out of stock" not in text(opened)  # the manager's reason is for staff
    other = next(other for other in link.labels if other != label)
    assert f"Choose {other}" in buttons(opened)
    assert press(link.path, other).status_code == 200


def test_please_call_me_names_the_event_on_an_escalation_already_open_for_the_incident(event: Any, press: Any) -> None:
    maria = event()["EV-1"]
    incident = maria.row.offer_set.incident
    open_already = Escalation.objects.create(
        kind=Escalation.Kind.SENIOR_MANAGER,
        reason="The policy escalates every missed delivery of a gold customer.",
        due_at=timezone.now() + timedelta(hours=4),
        incident=incident,
        customer=incident.customer,
    )

    assert press(maria.path, "call").status_code == 200

    escalation = Escalation.objects.get(kind=Escalation.Kind.SENIOR_MANAGER)
    assert escalation.pk == open_already.pk
    assert escalation.reason.startswith("The policy escalates")
    assert EVENT_NAME in escalation.reason
    assert EventCustomer.objects.get(pk=maria.row.pk).escalation_id == escalation.pk


def test_once_the_call_request_is_closed_the_customer_may_ask_again(
    event: Any, press: Any, django_user_model: Any
) -> None:
    maria = event()["EV-1"]
    press(maria.path, "call")
    first = Escalation.objects.get(kind=Escalation.Kind.SENIOR_MANAGER)
    escalation_resolve(
        escalation_id=first.pk, user=django_user_model.objects.get(username="manager-1"), resolution="Called her."
    )

    opened = Client().get(maria.path)
    assert "We will call you" not in text(opened)
    assert "Please call me" in buttons(opened)
    assert press(maria.path, "call").status_code == 200

    assert (
        Escalation.objects.filter(kind=Escalation.Kind.SENIOR_MANAGER, status="open").exclude(pk=first.pk).count() == 1
    )
